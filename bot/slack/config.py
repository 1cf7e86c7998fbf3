"""Checks the Slack settings before the app starts: one `ConfigError` line naming the variable.

No Slack import here: ``careerbot slack`` fails fast, before loading the index.
"""

from __future__ import annotations

import re

from pydantic import SecretStr

from ..errors import ConfigError
from ..settings import Settings

__all__ = ["check_settings"]

_BLANK = re.compile(r"\s")


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def _token(name: str, value: SecretStr | None, *, prefix: str, what: str, required: bool, hint: str = "") -> None:
    raw = _secret(value)
    if not raw:
        if required:
            raise ConfigError(f"{name}: not set; expected {what} starting with {prefix}{hint}")
        return
    if not raw.startswith(prefix) or _BLANK.search(raw) or len(raw) <= len(prefix):
        # Never echo the value: it may be a real token pasted into the wrong variable.
        raise ConfigError(f"{name}: malformed; expected {what} starting with {prefix}")


def check_settings(settings: Settings, *, http: bool) -> None:
    """Raise `ConfigError` unless the settings can run the app in HTTP mode (``http``) or Socket Mode.

    SLACK_BOT_TOKEN (xoxb-…) is always required; HTTP mode needs SLACK_SIGNING_SECRET;
    Socket Mode needs SLACK_APP_TOKEN (xapp-…).
    """
    _token(
        "SLACK_BOT_TOKEN",
        settings.slack_bot_token,
        prefix="xoxb-",
        what="the bot token (OAuth & Permissions › Bot User OAuth Token)",
        required=True,
    )
    _token(
        "SLACK_APP_TOKEN",
        settings.slack_app_token,
        prefix="xapp-",
        what="an app-level token with connections:write (Basic Information › App-Level Tokens)",
        required=not http,
        hint=" (Socket Mode), or run `careerbot slack --http`",
    )
    if http:
        secret = _secret(settings.slack_signing_secret)
        if not secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET: not set; HTTP mode needs the app's signing secret "
                "(Basic Information › App Credentials)"
            )
        if _BLANK.search(secret) or not re.fullmatch(r"[0-9A-Za-z]{8,}", secret):
            raise ConfigError("SLACK_SIGNING_SECRET: malformed; expected the app's signing secret (letters and digits)")
