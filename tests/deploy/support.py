"""Helpers for the deployment tests: a tiny Dockerfile parser, .env.example reader, and a running `careerbot slack`.

There is no Docker engine here, so the image is checked by reading its Dockerfile and
doing what it says outside a container: the same install (a non-editable one), the
same files at the same (re-rooted) paths, the same environment, the same build step,
the same entry command and health check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_events import event_callback, mention_event, new_ts, sign

BOT_TOKEN = "xoxb-1234-5678-deploytoken"
APP_TOKEN = "xapp-1-A111-222-deployapptoken"
SIGNING_SECRET = "5ecre7deploy0000signing1111secret"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)

# -- Dockerfile -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    name: str  # upper case: FROM, RUN, ENV…
    value: str  # the rest of the (joined) line
    flags: dict[str, str] = field(default_factory=dict)  # --name=value options (COPY, HEALTHCHECK)

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (``["careerbot", "slack"]``), else None."""
        text = self.value.strip()
        if not text.startswith("["):
            return None
        parsed = json.loads(text)
        assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), text
        return parsed


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments and blank lines dropped, ``\\`` continuations joined, flags split off."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, as Docker does
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    out = []
    for line in logical:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        flags: dict[str, str] = {}
        if name.upper() in ("COPY", "ADD", "HEALTHCHECK", "FROM", "RUN"):
            while rest.startswith("--"):
                flag, _, rest = rest.partition(" ")
                key, _, val = flag[2:].partition("=")
                flags[key] = val
                rest = rest.strip()
        out.append(Instruction(name=name.upper(), value=rest, flags=flags))
    return out


def parse_env(value: str) -> dict[str, str]:
    """``ENV A=1 B="two words"`` (or the legacy ``ENV A 1``) as a dict."""
    words = shlex.split(value, posix=True)
    if words and "=" not in words[0]:
        return {words[0]: value.split(None, 1)[1] if len(words) > 1 else ""}
    pairs = {}
    for word in words:
        key, sep, val = word.partition("=")
        assert sep, f"ENV: {word!r} is not KEY=VALUE"
        pairs[key] = val
    return pairs


@dataclass
class Image:
    """What a Dockerfile says about the image it builds."""

    instructions: list[Instruction]

    @classmethod
    def read(cls, path: Path) -> Image:
        return cls(parse_dockerfile(path.read_text(encoding="utf-8")))

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction | None:
        found = self.all(name)
        return found[-1] if found else None

    @property
    def base(self) -> str:
        return self.all("FROM")[0].value.split()[0]

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for i in self.all("ENV"):
            env.update(parse_env(i.value))
        return env

    @property
    def build_args(self) -> dict[str, str]:
        args = {}
        for i in self.all("ARG"):
            key, _, val = i.value.partition("=")
            args[key] = shlex.split(val)[0] if val.strip() else ""
        return args

    @property
    def user(self) -> str | None:
        last = self.last("USER")
        return last.value if last else None

    @property
    def workdir(self) -> str:
        last = self.last("WORKDIR")
        return last.value if last else "/"

    @property
    def entry_command(self) -> list[str]:
        """ENTRYPOINT + CMD, both in exec form (shell form would not get SIGTERM as PID 1)."""
        entry, cmd = self.last("ENTRYPOINT"), self.last("CMD")
        parts: list[str] = []
        for inst in (entry, cmd):
            if inst is not None:
                form = inst.exec_form
                assert form is not None, f"{inst.name} must use the exec form (JSON array): {inst.value}"
                parts += form
        return parts

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        inst = self.last("HEALTHCHECK")
        assert inst is not None, "no HEALTHCHECK"
        kind, _, rest = inst.value.partition(" ")
        assert kind.upper() == "CMD", f"HEALTHCHECK {kind}"
        form = Instruction("CMD", rest).exec_form
        return inst.flags, form if form is not None else ["/bin/sh", "-c", rest]

    def copies(self) -> list[tuple[list[str], str]]:
        """(sources, destination) of every COPY from the build context (not ``--from`` stages)."""
        out = []
        for i in self.all("COPY"):
            if "from" in i.flags:
                continue
            form = i.exec_form or shlex.split(i.value)
            out.append((form[:-1], form[-1]))
        return out


def reroot(root: Path, path: str) -> Path:
    """The image path ``/app/knowledge`` inside a temporary ``root``."""
    return root / path.lstrip("/")


# -- .env.example ---------------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    commented: bool
    comment: str  # the comment lines right above it


def read_env_example(path: Path) -> list[EnvEntry]:
    entries = []
    comment: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ENV_LINE.match(line.strip())
        if m:
            entries.append(EnvEntry(m.group(2), m.group(3), bool(m.group(1)), " ".join(comment)))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        else:
            comment = []
    return entries


# -- a running careerbot slack --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_environ() -> dict[str, str]:
    """This process's environment without any careerbot, Slack or LLM setting (a developer's must not leak in)."""
    prefixes = ("CAREERBOT_", "SLACK_", "OPENAI_", "ANTHROPIC_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Bot:
    """One ``careerbot slack`` subprocess; its standard error goes to a file (read it with `log`)."""

    def __init__(
        self,
        command: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        data_dir: Path,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.data_dir = data_dir
        self.port: int | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )

    # -- observing ----------------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def run(self, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Another command in the bot's environment (as `docker exec` would run it)."""
        return subprocess.run(command, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout)

    def health(self, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(command or ["careerbot", "health"])

    def heartbeat(self) -> dict[str, Any]:
        try:
            return json.loads((self.data_dir / "heartbeat.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def wait_healthy(self, command: list[str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        def healthy() -> subprocess.CompletedProcess[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"careerbot exited with {self.proc.returncode} before it was healthy:\n{self.log()}")
            result = self.health(command)
            return result if result.returncode == 0 else None

        return wait_until(healthy, timeout=timeout, what="careerbot health to pass", interval=0.25)

    def wait_articles(self, n: int, timeout: float = 30) -> None:
        wait_until(lambda: self.heartbeat().get("articles") == n, timeout=timeout, what=f"{n} articles in the heartbeat")

    # -- HTTP mode ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.port is not None, "not started with --http"
        return f"http://127.0.0.1:{self.port}"

    def post(self, body: str, *, content_type: str = "application/json", headers: dict[str, str] | None = None) -> int:
        """A signed POST to /slack/events, as Slack sends it; the HTTP status."""
        req = urllib.request.Request(
            f"{self.url}/slack/events",
            data=body.encode("utf-8"),
            headers={"Content-Type": content_type, **sign(body, secret=SIGNING_SECRET), **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def mention(
        self, text: str, *, channel: str = "C100", user: str = "U1", ts: str | None = None,
        event_id: str | None = None, retry: int | None = None,
    ) -> tuple[str, int]:
        """A signed ``app_mention`` event (``retry``: as Slack's retry of it); (its ts, the HTTP status)."""
        ts = ts or new_ts()
        event = event_callback(mention_event(text, ts=ts, channel=channel, user=user), event_id=event_id)
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return ts, self.post(json.dumps(event, ensure_ascii=False), headers=headers)

    def click(self, payload: dict[str, Any]) -> int:
        """A signed interactivity request (a button click); the HTTP status."""
        return self.post(urlencode({"payload": json.dumps(payload, ensure_ascii=False)}),
                         content_type="application/x-www-form-urlencoded")

    def healthz(self) -> str:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as resp:
            return resp.read().decode("utf-8")

    # -- stopping -----------------------------------------------------------------------------

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
        """Send ``sig`` and wait for the exit; (exit status, seconds it took)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"careerbot did not exit within {timeout} s of {sig!r}:\n{self.log()}") from None
        self._log.close()
        return code, time.monotonic() - start

    def kill(self) -> None:
        """SIGKILL (kill -9): no clean-up of any kind in the bot."""
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()


def assert_no_secrets(*texts: str) -> None:
    """None of the deployment's tokens and secrets appears in any of ``texts`` (logs, health output…)."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret ({secret[:5]}…) was printed"


def without_file_permission_override() -> None:
    """For ``preexec_fn``: as root, drop the capabilities that ignore file permissions, so that a folder
    without write permission is read-only for the child too (a no-op for other users, for whom it already is)."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


# -- fakes ----------------------------------------------------------------------------------------


def answer_in_thread(fake: FakeSlack, ts: str, timeout: float = 20.0) -> str:
    """The text of the answer posted in the thread of message ``ts`` (waits for it)."""
    [post] = fake.wait_for("chat.postMessage", timeout=timeout, where=lambda c: c.body.get("thread_ts") == ts)
    return post.text


