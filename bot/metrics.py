"""Prometheus metrics for operators: one `Metrics` per app instance, owning its own `CollectorRegistry`.

Every metric is named ``careerbot_…`` and listed in the README ("Metrics"). Labels take values from
small fixed sets (surfaces, outcomes, stages, reasons, Slack method names and error codes): never a
user, channel, question or URL, so the number of series stays bounded. A value outside its set is
recorded as ``other``.

`Metrics` records what happened (counters, histograms) through typed methods; what *is* (inbox depth,
queue lengths, articles served) is read when Prometheus scrapes, from functions given to `sample`. It
imports nothing of Slack: the Slack app calls it. `MetricsServer` serves the registry on a port of its
own (Socket Mode, or HTTP mode with CAREERBOT_METRICS_PORT set).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .answer import Answer
from .errors import ConfigError

__all__ = [
    "FALLBACK_REASONS",
    "OTHER",
    "QUESTION_OUTCOMES",
    "SLACK_RETRY_REASONS",
    "STAGES",
    "SURFACES",
    "Metrics",
    "MetricsServer",
]

log = logging.getLogger(__name__)

OTHER = "other"
#: Where a question came from: an @mention, a DM, a follow-up in a thread without a mention, ``/career``,
#: a career button under an answer.
SURFACES = ("mention", "dm", "follow_up", "slash", "button")
#: How a question ended: answered (with sources), abstained (the bot said it does not know, with
#: suggestions), failed (the pipeline raised; the asker got an apology).
QUESTION_OUTCOMES = ("answered", "abstained", "failed")
#: The pipeline's stages as `Answer.timings_ms` names them (``retrieve`` = ``embed`` + ``search`` and the
#: ranking; ``compose`` includes ``llm``; ``total`` is the whole `Advisor.ask`).
STAGES = ("rewrite", "embed", "search", "retrieve", "compose", "llm", "total")
#: Why an answer came from ``extractive`` instead of the configured backend (``Answer.usage["fallback"]``
#: of the LLM backends; ``backend_error``: the backend raised and the pipeline fell back). Not a fallback:
#: ``low_confidence``, when an LLM backend leaves a question it would abstain on to ``extractive`` without
#: asking the model (counted as ``abstained``).
FALLBACK_REASONS = (
    "no_valid_citation",
    "prompt_echo",
    "degenerate",
    "repetitive",
    "truncated",
    "context_overflow",
    "timeout",
    "connection",
    "rate_limited",
    "server_error",
    "error",
    "backend_error",
)
#: Why slack_sdk retried a Web API call (`bot.slack.retries`).
SLACK_RETRY_REASONS = ("rate_limited", "server_error", "connection")
NOT_A_FALLBACK = "low_confidence"
#: How a reply to Slack ended (the counts `careerbot health` shows, as Prometheus counters).
REPLY_OUTCOMES = ("answered", "apologized", "undelivered")
#: Why a question was not taken: the queue was full, or the user was over the rate limit.
REFUSAL_REASONS = ("busy", "rate_limited")

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RELOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

#: A Slack method name (``chat.postMessage``) or error code as a label: ASCII letters, digits, ``._``; at
#: most 48 of them.
_TOKEN = re.compile(r"^[A-Za-z0-9_.]{1,48}$")

Sampler = Callable[[], float | Mapping[tuple[str, ...], float]]


def _one_of(value: str | None, allowed: Iterable[str]) -> str:
    return value if value is not None and value in allowed else OTHER


def slack_token(value: Any) -> str:
    """``value`` as a bounded label (a Slack method name or error code), else ``other``."""
    text = str(value or "").strip()
    return text if _TOKEN.match(text) else OTHER


@dataclass(frozen=True, slots=True)
class _Sample:
    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Sampler
    kind: str  # "gauge" | "counter"


class _Sampled(Collector):
    """The `Metrics.sample` values, read at scrape time; one that fails is left out of that scrape.

    A failure is logged as a warning once, then quietly until that value can be read again.
    """

    def __init__(self) -> None:
        self._samples: list[_Sample] = []
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    def add(self, sample: _Sample) -> None:
        with self._lock:
            if any(s.name == sample.name for s in self._samples):
                raise ValueError(f"{sample.name} is sampled already")
            self._samples.append(sample)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            samples = list(self._samples)
        for s in samples:
            try:
                value = s.read()
            except Exception as exc:  # noqa: BLE001 - one broken source must not empty the whole scrape
                with self._lock:
                    first = s.name not in self._failing
                    self._failing.add(s.name)
                log.log(logging.WARNING if first else logging.DEBUG, "metrics: could not read %s (%s); left out "
                        "of the scrape", s.name, exc)
                continue
            with self._lock:
                self._failing.discard(s.name)
            family_type = CounterMetricFamily if s.kind == "counter" else GaugeMetricFamily
            family = family_type(s.name, s.documentation, labels=list(s.labels))
            if isinstance(value, Mapping):
                for labels, v in value.items():
                    family.add_metric(list(labels), float(v))
            else:
                family.add_metric([], float(value))
            yield family


class Metrics:
    """careerbot's metrics in a registry of their own (``registry``): several apps in one process never collide.

    ``process``: also export the ``process_*`` and ``python_info`` series (CPU, memory, open files), as
    Prometheus client libraries do by default. Thread-safe.
    """

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        Gauge("careerbot_build_info", "The running careerbot's version (always 1).", ["version"], registry=r).labels(
            version=__version__
        ).set(1)
        self.questions = Counter(
            "careerbot_questions",
            "Questions answered by the pipeline, by surface and outcome (answered, abstained, failed).",
            ["surface", "outcome"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "careerbot_answer_stage_seconds",
            "Seconds each stage of answering a question took (stage total: the whole pipeline).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "careerbot_backend_fallbacks",
            "Answers composed by extractive instead of the configured backend, by backend and reason.",
            ["backend", "reason"],
            registry=r,
        )
        self.slack_retries = Counter(
            "careerbot_slack_api_retries",
            "Slack Web API calls retried (429 after Retry-After, 5xx, connection errors), by method and reason.",
            ["method", "reason"],
            registry=r,
        )
        self.slack_errors = Counter(
            "careerbot_slack_api_errors",
            "Slack Web API calls that failed after their retries, by method and error (Slack's error code, "
            "http_<status>, or connection).",
            ["method", "error"],
            registry=r,
        )
        self.replies = Counter(
            "careerbot_slack_replies",
            "Replies to Slack by outcome: answered (posted), apologized (the answer failed; an apology was "
            "posted), undelivered (nothing could be posted).",
            ["outcome"],
            registry=r,
        )
        self.refused = Counter(
            "careerbot_slack_refused",
            "Questions not taken, by reason: busy (the queue was full) or rate_limited (the user's limit).",
            ["reason"],
            registry=r,
        )
        self.resumed = Counter(
            "careerbot_inbox_resumed", "Unfinished inbox items taken up again at start.", registry=r
        )
        self.expired = Counter(
            "careerbot_inbox_expired",
            "Unfinished inbox items given up at start (older than CAREERBOT_SLACK_RESUME_WITHIN).",
            registry=r,
        )
        self.reloads = Counter(
            "careerbot_reloads", "Knowledge reloads, by outcome (ok, failed).", ["outcome"], registry=r
        )
        self.reload_seconds = Histogram(
            "careerbot_reload_duration_seconds",
            "Seconds a knowledge reload took (re-reading, re-indexing what changed, swapping in).",
            buckets=RELOAD_BUCKETS,
            registry=r,
        )
        self.last_reload = Gauge(
            "careerbot_reload_last_success_timestamp_seconds",
            "Unix time of the last successful knowledge reload (0: none since start).",
            registry=r,
        )
        self._sampled = _Sampled()
        r.register(self._sampled)
        # Known label values start at 0, so that rate() and absent-series alerts work from the first scrape.
        for surface in SURFACES:
            for outcome in QUESTION_OUTCOMES:
                self.questions.labels(surface=surface, outcome=outcome)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)
        for outcome in REPLY_OUTCOMES:
            self.replies.labels(outcome=outcome)
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason=reason)
        for outcome in ("ok", "failed"):
            self.reloads.labels(outcome=outcome)

    # -- what happened ----------------------------------------------------------------------------

    def answered(self, answer: Answer, *, surface: str, backend: str) -> None:
        """Count an answer from `Advisor.ask` (asked of ``backend``), its stage timings and any fallback."""
        outcome = "abstained" if answer.abstained else "answered"
        self.questions.labels(surface=_one_of(surface, SURFACES), outcome=outcome).inc()
        for stage, ms in answer.timings_ms.items():
            if stage in STAGES:
                self.stage_seconds.labels(stage=stage).observe(max(0.0, ms) / 1000)
        reason = answer.usage.get("fallback")
        if reason is None and answer.backend != backend and answer.backend == "extractive":
            reason = "backend_error"  # the backend raised: the pipeline answered extractively
        if reason is not None and reason != NOT_A_FALLBACK:
            self.fallbacks.labels(backend=slack_token(backend), reason=_one_of(str(reason), FALLBACK_REASONS)).inc()

    def question_failed(self, *, surface: str) -> None:
        """Count a question the pipeline could not answer (it raised)."""
        self.questions.labels(surface=_one_of(surface, SURFACES), outcome="failed").inc()

    def slack_retry(self, *, method: str, reason: str) -> None:
        """Count one retry of a Slack Web API call (``reason``: one of `SLACK_RETRY_REASONS`)."""
        self.slack_retries.labels(method=slack_token(method), reason=_one_of(reason, SLACK_RETRY_REASONS)).inc()

    def slack_error(self, *, method: str, error: str) -> None:
        """Count a Slack Web API call that failed for good (after its retries)."""
        self.slack_errors.labels(method=slack_token(method), error=slack_token(error)).inc()

    def reply(self, outcome: str) -> None:
        """Count a reply's outcome (one of `REPLY_OUTCOMES`)."""
        self.replies.labels(outcome=_one_of(outcome, REPLY_OUTCOMES)).inc()

    def refusal(self, reason: str) -> None:
        """Count a question not taken (one of `REFUSAL_REASONS`)."""
        self.refused.labels(reason=_one_of(reason, REFUSAL_REASONS)).inc()

    def reloaded(self, *, seconds: float, ok: bool) -> None:
        """Count a knowledge reload and how long it took."""
        self.reloads.labels(outcome="ok" if ok else "failed").inc()
        self.reload_seconds.observe(max(0.0, seconds))
        if ok:
            self.last_reload.set(time.time())

    # -- what is, read at scrape time ---------------------------------------------------------------

    def sample(
        self, name: str, documentation: str, read: Sampler, *, labels: tuple[str, ...] = (), counter: bool = False
    ) -> None:
        """Export ``read()`` as gauge (or, with ``counter``, a counter) ``name``, read at each scrape.

        ``read`` returns a number, or with ``labels`` a mapping from label values to numbers. A ``read``
        that raises leaves the metric out of that scrape (logged), never the scrape itself.
        """
        if not name.startswith("careerbot_"):
            raise ValueError(f"metric names start with careerbot_: {name}")
        self._sampled.add(_Sample(name, documentation, labels, read, "counter" if counter else "gauge"))

    # -- exposition --------------------------------------------------------------------------------

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """A WSGI app answering GET with this registry in Prometheus text format (OpenMetrics when asked)."""
        return make_wsgi_app(self.registry)


class MetricsServer:
    """``GET /metrics`` (any path, as prometheus-client serves) on ``host:port`` of its own; port 0: any free port.

    ``setting`` names the setting to blame when the port cannot be bound (a `ConfigError`).
    """

    def __init__(self, *, metrics: Metrics, host: str, port: int, setting: str = "CAREERBOT_METRICS_PORT") -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"{setting}: expected 0–65535, got {port}")
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            raise ConfigError(
                f"{setting}: cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
                "choose another port or CAREERBOT_METRICS_HOST"
            ) from None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
