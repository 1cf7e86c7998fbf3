"""Scraping ``/metrics`` as Prometheus does: an HTTP GET, parsed with prometheus_client's own parser."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "scrape", "wait_scrape"]

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    """One scrape: the response's content type, every sample by (name, sorted labels), and the families' types."""

    content_type: str
    samples: dict[tuple[str, Labels], float]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly ``labels``; KeyError (listing what there is) when it is absent."""
        key = (name, tuple(sorted(labels.items())))
        if key not in self.samples:
            near = sorted(str(dict(k[1])) for k in self.samples if k[0] == name)
            raise KeyError(f"no sample {name}{labels}; {name} has: {near or 'nothing'}")
        return self.samples[key]

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        """Like `value`, with ``default`` when absent (a counter whose labels were never used)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= set(ls))

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample ``name``."""
        return [dict(ls) for (n, ls) in self.samples if n == name]


def scrape(url: str, *, accept: str | None = None) -> Scrape:
    """GET ``url`` and parse it (the Prometheus text format; OpenMetrics is not what this parser reads)."""
    headers = {"Accept": accept} if accept else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        assert resp.status == 200, resp.status
        content_type = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    samples: dict[tuple[str, Labels], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"sample {key} appears twice"
            samples[key] = s.value
    return Scrape(content_type=content_type, samples=samples, types=types)


def wait_scrape(url: str, until: Callable[[Scrape], bool], *, timeout: float = 30.0, what: str = "") -> Scrape:
    """Scrape until ``until(scrape)`` holds (a counter moved after the reply that a test waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        last = scrape(url)
        if until(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never showed {what or 'the expected values'} in {timeout} s")
        time.sleep(0.05)
