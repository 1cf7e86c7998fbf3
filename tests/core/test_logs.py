"""One structured log record per answer; JSON lines; secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter, RedactSecrets, redact
from bot.pipeline import Advisor


def test_each_answer_is_one_json_line_with_stages_and_no_question_text(advisor: Advisor) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("bot.answers")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        advisor.ask("AI PMの年収は？", question_id="q-123")
        advisor.ask("東京の明日の天気は？")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "answer" and first["question_id"] == "q-123" and first["logger"] == "bot.answers"
    assert first["backend"] == "extractive" and first["abstained"] is False and 0 < first["confidence"] <= 1
    assert first["citations"][0] == "ai_product_manager#日本での推定年収dodaopenwork参照"
    assert {"embed", "search", "retrieve", "compose", "total"} <= set(first["latency_ms"])
    assert "年収は" not in lines[0]  # the question's text is not logged
    assert second["abstained"] is True and second["citations"] == [] and len(second["question_id"]) == 12


def test_secrets_are_redacted_in_every_format() -> None:
    assert redact("xoxb-1-2-abc xapp-1-A sk-proj-abcdefghijklmnopqrst Bearer eyJhbGciOi") == (
        "xoxb-[redacted] xapp-[redacted] sk-[redacted] Bearer [redacted]"
    )
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed with key %s", ("sk-ant-api03-0123456789",), None)
    RedactSecrets().filter(record)
    assert "0123456789" not in JsonFormatter().format(record)


def test_passwords_in_urls_and_long_opaque_keys_are_redacted_but_names_and_paths_stay() -> None:
    assert redact("GET https://bot:hunter2@proxy.example.com/api/ failed") == (
        "GET https://bot:[redacted]@proxy.example.com/api/ failed"
    )
    assert redact("secret=8f14e45fceea167a5a36dedd4cea2543.") == "secret=[redacted]."
    assert redact("key AbCdEfGhIjKlMnOpQrStUvWxYz0123456789") == "key [redacted]"
    kept = ("/home/Taro/careerbot2/knowledge/AI_PM_2024_Senior_Machine_Learning.md "
            "test_reports_are_written_and_readable0 ai_product_manager#日本での推定年収dodaopenwork参照 "
            "550e8400-e29b-41d4-a716-446655440000")
    assert redact(kept) == kept


def test_a_settings_error_that_is_logged_shows_no_secret() -> None:
    from bot.errors import ConfigError
    from bot.settings import load_settings

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("bot.test-settings")
    logger.addHandler(handler)
    try:
        for bad in ({"top_k": "xoxb-1-2-abcdefghijkl"}, {"slack_api_url": "ftp://u:hunter2pw@example.com/"}):
            try:
                load_settings(**bad)
            except ConfigError as exc:
                logger.error("settings: %s (value %s)", exc, next(iter(bad.values())))
            else:
                raise AssertionError(f"{bad} was accepted")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert out.count("\n") == 2 and "abcdefghijkl" not in out and "hunter2pw" not in out and "[redacted]" in out
