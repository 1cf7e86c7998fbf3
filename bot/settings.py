"""The one settings object, read from ``CAREERBOT_*`` environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment variables > the TOML file
named by ``CAREERBOT_CONFIG`` (default ``careerbot.toml`` in the working
directory, if present) > defaults. Every field is listed in the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    NoDecode,
    TomlConfigSettingsSource,
)

from .errors import ConfigError
from .knowledge import DEFAULT_MAX_ARTICLE_BYTES
from .logs import redact

__all__ = ["Settings", "load_settings", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "CAREERBOT_"
PluginOptions = TypeVar("PluginOptions", bound=BaseModel)


def _default_dir(name: str) -> Path:
    local = Path.cwd() / name
    return local if local.is_dir() else PROJECT_ROOT / name


class Settings(BaseSettings):
    """All of careerbot's settings. Field ``x`` is env var ``CAREERBOT_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_nested_delimiter="__")

    knowledge_dir: Path = Field(default_factory=lambda: _default_dir("knowledge"), description="Folder of articles (*.md).")
    prompts_dir: Path = Field(default_factory=lambda: _default_dir("prompts"), description="Folder of Jinja templates.")
    data_dir: Path = Field(default=Path(".careerbot"), description="Index and databases live here.")
    embedder: str = Field(default="use-m3", description="Embedder name: use-m3 | sentence-transformers | a plugin.")
    embedder_model: str = Field(default="", description="Model id or local path for sentence-transformers.")
    query_prefix: str | None = Field(default=None, description="Text put before every query (None: known default for the model).")
    passage_prefix: str | None = Field(default=None, description="Text put before every passage (None: known default).")
    allow_downloads: bool = Field(default=False, description="Let sentence-transformers download models from the hub.")
    backend: str = Field(default="extractive", description="Answer backend: extractive | a plugin.")
    top_k: int = Field(default=5, ge=1, le=50, description="Passages retrieved per question.")
    candidates: int = Field(default=50, ge=5, le=1000, description="Candidates each retriever contributes to fusion.")
    rank_dense: float = Field(default=0.5, ge=0, le=10, description="Ranking: weight of meaning (cosine, scaled by the best).")
    rank_lexical: float = Field(default=0.5, ge=0, le=10, description="Ranking: weight of words (BM25, scaled by the best).")
    rank_part: float = Field(default=0.5, ge=0, le=10, description="Ranking: added to the article part that answers the aspect.")
    rank_career: float = Field(default=0.6, ge=0, le=10, description="Ranking: added to the question's careers' passages.")
    rank_interview: float = Field(default=0.3, ge=0, le=10, description="Ranking: taken from the interview part when another aspect is asked.")
    rank_learned: float = Field(default=0.5, ge=0, le=10, description="Ranking: times the learned parts' probability of a passage's part, added to it.")
    rank_section: float = Field(default=1.0, ge=0, le=10, description="Ranking: times the learned probability of a passage's section, added to it.")
    hnsw_min_passages: int = Field(default=20000, ge=1, description="Use an HNSW index from this many passages up.")
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="Below this confidence the bot abstains.")
    article_base_url: str = Field(
        default="https://careers.example.com/articles/",
        description="Citations link to {article_base_url}{slug}#{anchor}.",
    )
    threads: int = Field(
        default=0, ge=0, description="Numeric threads (0: 1 per query, the idle cores for an index build)."
    )
    max_article_bytes: int = Field(
        default=DEFAULT_MAX_ARTICLE_BYTES, ge=1, description="Larger articles are skipped, with one line naming the file."
    )
    max_question_chars: int = Field(default=1000, ge=10, description="Longer questions are cut to this length.")
    learn_parts: bool = Field(default=True, description="Learn the part a question asks about from question sets (bot.learned_parts).")
    parts_training: Path | None = Field(
        default=None, description="Question sets (a folder or a file) the parts are learned from (default: <knowledge_dir>/questions/dev)."
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines of `careerbot slack`: text or json.")
    reload_interval: float = Field(
        default=5.0, ge=0, description="`careerbot slack`: seconds between checks of the knowledge folder (0: only on SIGHUP)."
    )
    shutdown_timeout: float = Field(
        default=20.0, ge=0, description="`careerbot slack`: on SIGTERM/SIGINT, seconds to finish answers in flight."
    )
    chat_history_size: int = Field(
        default=1000, ge=0, description="`careerbot chat`: questions kept in <data_dir>/chat_history (0: none kept)."
    )

    # Slack (the variable names are Slack's own, without the CAREERBOT_ prefix).
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token"), description="xoxb-… bot token."
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token"),
        description="xapp-… app-level token; when set, `careerbot slack` uses Socket Mode.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret"),
        description="Verifies HTTP requests from Slack (required with --http).",
    )
    slack_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url"),
        description="Web API base URL, e.g. http://127.0.0.1:9000/api/ (proxies, tests).",
    )
    slack_require_mention: bool = Field(default=False, description="Answer thread follow-ups only when mentioned.")
    slack_public_slash: bool = Field(default=False, description="Post /career answers in the channel, not ephemerally.")
    slack_allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated channel ids to serve (empty: all)."
    )
    slack_rate_limit_per_minute: int = Field(default=10, ge=0, description="Questions per user per minute (0: no limit).")
    feedback_db: Path | None = Field(
        default=None, description="SQLite file of the Slack app's state: inbox, answers, feedback (default: <data_dir>/feedback.sqlite3)."
    )
    slack_workers: int = Field(default=8, ge=1, le=256, description="`careerbot slack`: answers composed at once.")
    slack_queue_size: int = Field(
        default=200, ge=0, description="`careerbot slack`: accepted questions waiting for a worker; beyond, the asker is told to retry."
    )
    slack_resume_within: float = Field(
        default=600.0, ge=0, description="`careerbot slack`: on start, unfinished questions accepted this many seconds ago or less are answered."
    )
    slack_max_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a Slack Web API call on 429 (after Retry-After), 5xx and connection errors."
    )
    slack_http_max_connections: int = Field(
        default=100, ge=1, description="`careerbot slack --http`: connections served at once; more get 503."
    )
    slack_http_read_timeout: float = Field(
        default=10.0, gt=0, description="`careerbot slack --http`: seconds a connection may send nothing before it is closed."
    )

    # Metrics for operators (Prometheus; see README "Metrics").
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="`careerbot slack`: serve GET /metrics on this port of its own (0: any free port; unset: "
        "Socket Mode serves none, --http serves /metrics on the Slack port).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", min_length=1, description="Address the metrics port listens on (0.0.0.0: every interface)."
    )

    # Shared state for several replicas (issue 13): PostgreSQL instead of the SQLite file.
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:5432/db: the Slack app's state in PostgreSQL, shared by replicas (unset: SQLite).",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connections per process (a pool).")
    database_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a PostgreSQL connection before giving up."
    )
    slack_lease_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="A replica's claim on a question lapses this long after its last renewal; another replica then answers it."
    )

    # LLM answer backends (the API variables are the SDKs' own, without the CAREERBOT_ prefix).
    llm_model: str = Field(default="", description="Model name for the openai / anthropic backends.")
    llm_temperature: float = Field(default=0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=800, ge=16, description="Most tokens an LLM answer may have.")
    llm_timeout: float = Field(default=30.0, gt=0, description="Seconds before an LLM call is abandoned (then: extractive).")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="Retries on 429 and 5xx before falling back.")
    llm_max_retry_after: float = Field(default=10.0, ge=0, description="Longest Retry-After (seconds) that is honoured.")
    llm_rewrite_followups: bool = Field(
        default=True, description="LLM backends: rewrite a follow-up into a standalone question before searching."
    )
    llm_context_tokens: int = Field(
        default=0,
        ge=0,
        description="The model's context window in tokens; 0: ask the server (llama.cpp reports it), else no fitting.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url"),
        description="OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, LM Studio).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"), description="API key for it."
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "anthropic_base_url"),
        description="Anthropic Messages API base URL.",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key"), description="API key."
    )

    # Confidence calibration (bot.calibration): unset, the embedder's fitted or shipped thresholds apply.
    cosine_low: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Cosine below which meaning says nothing (unset: the embedder's calibration)."
    )
    cosine_high: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Cosine from which meaning is a clear match (unset: the embedder's calibration)."
    )

    # Plug-ins (embedders, answer backends from other packages): their own options, by plug-in name.
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plug-in options: [plugins.NAME] in careerbot.toml, CAREERBOT_PLUGINS__NAME__KEY in the environment "
        "(which wins, key by key); a plug-in reads them with settings.plugin(NAME, Model).",
    )

    def plugin(self, name: str, model: type[PluginOptions]) -> PluginOptions:
        """The options of plug-in ``name`` (``[plugins.NAME]``, ``CAREERBOT_PLUGINS__NAME__KEY``) validated by ``model``.

        A bad value is one `ConfigError` line naming both places it can be set; no value
        of a secret-looking key is shown. Environment values arrive as strings, so
        ``model`` should convert (pydantic's default, lax mode).
        """
        raw = self.plugins.get(name) or self.plugins.get(name.lower()) or {}
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(options)"
            env = f"{ENV_PREFIX}PLUGINS__{name.upper()}__{key.upper().replace('.', '__')}"
            got = err.get("input")
            secret = any(w in key.upper() for w in _SECRET_WORDS)
            shown = f" (got {got!r})" if isinstance(got, (str, int, float)) and not secret and err["type"] != "missing" else ""
            msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
            raise ConfigError(redact(f"{env} / [plugins.{name}] {key}: {msg}{shown}")) from None

    @model_validator(mode="after")
    def _cosines(self) -> Settings:
        if (self.cosine_low is None) != (self.cosine_high is None):
            raise ValueError("CAREERBOT_COSINE_LOW and CAREERBOT_COSINE_HIGH are set together or not at all")
        if self.cosine_low is not None and self.cosine_high is not None and not self.cosine_low < self.cosine_high:
            raise ValueError("CAREERBOT_COSINE_LOW must be below CAREERBOT_COSINE_HIGH")
        return self

    @field_validator("article_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value if value.endswith(("/", "=")) else value + "/"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "careerbot.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif f"{ENV_PREFIX}CONFIG" in os.environ:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file: {toml_path}")
        return tuple(sources)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_port(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
            return None
        return value

    @field_validator("slack_allowed_channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [c.strip() for c in value.split(",") if c.strip()]
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = value.get_secret_value().strip().partition("://")[0].lower()
        if scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError("must be a postgresql:// URL, such as postgresql://careerbot@db:5432/careerbot "
                             "with the password after the user name (or sqlite:///path)")
        return value

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def parts_training_path(self) -> Path:
        return self.parts_training or self.knowledge_dir / "questions" / "dev"

    @property
    def parts_store(self) -> Path:
        return self.data_dir / "parts"

    @property
    def feedback_path(self) -> Path:
        return self.feedback_db or self.data_dir / "feedback.sqlite3"


_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def _is_secret(name: str) -> bool:
    """A setting whose value is never shown: a `SecretStr` field, or a name that says token, secret, key or password."""
    info = Settings.model_fields.get(name.lower().removeprefix(ENV_PREFIX.lower()))
    return (info is not None and "SecretStr" in str(info.annotation)) or any(w in name.upper() for w in _SECRET_WORDS)


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings`; a bad value raises `ConfigError` naming the variable.

    The message shows the offending value only for settings that are not secret,
    and then with anything token-shaped redacted (`bot.logs.redact`).
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a check across fields (e.g. the cosine pair) names its settings itself
            raise ConfigError(redact(str(err["msg"]).removeprefix("Value error, "))) from None
        field = str(err["loc"][0])
        if field in clean:
            name = field
        elif field.upper().startswith(("SLACK_", "OPENAI_", "ANTHROPIC_")):
            name = field.upper()
        else:
            name = f"{ENV_PREFIX}{field.upper()}"
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float)) and not _is_secret(name) else ""
        raise ConfigError(redact(f"{name}: {err['msg']}{shown}")) from None
    except ConfigError:
        raise
    except Exception as exc:  # e.g. a TOML syntax error
        raise ConfigError(redact(f"{ENV_PREFIX}CONFIG: {exc}")) from None


