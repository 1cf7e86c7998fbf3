"""The deployment files stay true to the code: Dockerfile, .dockerignore, docker-compose.yml, .env.example, docs.

No Docker engine runs here, so these read the files: the compose file parses and has the
expected services, every file it names exists, every variable is a real setting and every
setting is listed and documented.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import PROJECT_ROOT, Settings, load_settings

from .support import Image, read_env_example

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
#: Read by careerbot from the environment, but not a field of `Settings` (it names the TOML file).
NON_FIELD_VARIABLES = {"CAREERBOT_CONFIG"}


def variable_of(name: str) -> str:
    field = Settings.model_fields[name]
    return field.validation_alias.choices[0] if field.validation_alias is not None else f"CAREERBOT_{name.upper()}"


SETTING_VARIABLES = {variable_of(name): name for name in Settings.model_fields}


def docs() -> str:
    """The README, where deployment is documented."""
    return (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def interpolate(value: Any) -> Any:
    """Compose's ``${NAME:-default}`` / ``${NAME}`` with nothing set: the default (or empty)."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)


def as_env(environment: Any) -> dict[str, str]:
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {k: "" if v is None else str(v) for k, v in (environment or {}).items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def image() -> Image:
    return Image.read(PROJECT_ROOT / "Dockerfile")


# -- Dockerfile ------------------------------------------------------------------------------------


def test_the_dockerfile_builds_a_slim_lean_non_root_image_running_careerbot_slack(image: Image) -> None:
    assert image.base == "python:3.11-slim"
    user = image.user
    assert user and user.split(":")[0] not in ("root", "0"), user
    assert image.entry_command == ["careerbot", "slack"]
    flags, check = image.healthcheck
    assert check == ["careerbot", "health"] and {"interval", "timeout", "start-period", "retries"} <= set(flags)
    # The index is built at image build time, as the user the bot runs as (so it can update it).
    names = [i.name for i in image.instructions]
    index_steps = [i for i in image.all("RUN") if i.value.startswith("careerbot index") and "--strict" in i.value]
    assert index_steps, "no `RUN careerbot index --strict`"
    assert image.instructions.index(index_steps[0]) > names.index("USER")
    assert image.build_args == {"EXTRAS": ""}  # lean by default
    for inst in image.instructions:  # no torch by default, and a regular (not editable) install
        assert "torch" not in inst.value and " -e " not in inst.value and "--editable" not in inst.value, inst


def test_the_install_step_is_lean_by_default_and_takes_extras(image: Image) -> None:
    [install] = [i for i in image.all("RUN") if "pip install" in i.value]
    script = 'pip() { printf "%s\\n" "$@"; }; rm() { :; }; ' + install.value
    for extras, wanted in (("", "/src"), ("llm", "/src[llm]"), ("llm,st", "/src[llm,st]")):
        out = subprocess.run(["/bin/sh", "-c", script], env={"EXTRAS": extras, "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == ["install", wanted], (extras, out)
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert "llm" in extras and not any("torch" in dep for dep in tomllib.loads(
        (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"])


def test_the_image_environment_names_real_settings_and_copied_folders(image: Image) -> None:
    env = image.env
    for key in env:
        if key.startswith("CAREERBOT_"):
            assert key in SETTING_VARIABLES, f"Dockerfile ENV {key} is not a setting"
    destinations = {dest.rstrip("/") for _, dest in image.copies()}
    assert env["CAREERBOT_KNOWLEDGE_DIR"] in destinations and env["CAREERBOT_PROMPTS_DIR"] in destinations
    assert env["CAREERBOT_DATA_DIR"].startswith("/") and env.get("HF_HUB_OFFLINE") == "1"


def test_every_copied_file_exists_and_is_not_docker_ignored(image: Image) -> None:
    ignored = [
        line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", ".venv", ".git", ".careerbot"):
        assert secret in ignored, f".dockerignore must exclude {secret}"
    for sources, _ in image.copies():
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is docker-ignored"
    copied = {s for sources, _ in image.copies() for s in sources}
    assert {"pyproject.toml", "README.md", "bot", "knowledge", "prompts"} <= copied  # README: pyproject's readme


# -- docker-compose.yml ---------------------------------------------------------------------------------


def test_the_compose_bot_runs_the_lean_image_in_socket_mode_with_data_volume_and_mounted_knowledge(
    compose: dict[str, Any], image: Image
) -> None:
    services = compose["services"]
    bot = services["bot"]
    assert "profiles" not in bot  # `docker compose up` starts it
    build = bot["build"]
    assert (PROJECT_ROOT / build["context"]).is_dir()
    assert (PROJECT_ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
    assert build["args"]["EXTRAS"] == ""
    assert bot["command"] == image.entry_command[1:] and "--http" not in bot["command"]  # Socket Mode
    env_files = bot["env_file"] if isinstance(bot["env_file"], list) else [bot["env_file"]]
    assert env_files == [".env"] and ENV_EXAMPLE.is_file()
    volumes = bot["volumes"]
    data = [v for v in volumes if v.split(":")[1] == image.env["CAREERBOT_DATA_DIR"]]
    assert len(data) == 1 and not data[0].startswith((".", "/"))  # a named volume…
    assert data[0].split(":")[0] in compose["volumes"]  # …declared at the top level
    [knowledge] = [v for v in volumes if v.split(":")[1] == image.env["CAREERBOT_KNOWLEDGE_DIR"]]
    source, _, mode = knowledge.split(":")
    assert source.startswith("./") and (PROJECT_ROOT / source).is_dir() and mode == "ro"
    for volume in volumes:  # every bind mount names an existing path
        if volume.startswith((".", "/")):
            assert (PROJECT_ROOT / volume.split(":")[0]).exists(), volume
    grace = int(str(bot["stop_grace_period"]).rstrip("s"))
    assert grace > Settings.model_fields["shutdown_timeout"].default  # answers in flight get their time
    assert bot.get("init") is True and bot.get("restart") == "unless-stopped"


def test_the_ollama_profile_adds_ollama_and_a_bot_using_it_without_touching_the_default(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("ollama", "ollama-pull", "bot-ollama"):
        assert services[name]["profiles"] == ["ollama"], name
    bot, llm_bot = services["bot"], services["bot-ollama"]
    assert llm_bot["build"]["args"]["EXTRAS"] == "llm"
    assert llm_bot["image"] != bot["image"]  # the llm build never replaces the lean image
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert "openai" in " ".join(extras["llm"])
    env = {k: interpolate(v) for k, v in as_env(llm_bot["environment"]).items()}
    assert env["CAREERBOT_BACKEND"] == "openai"
    assert env["OPENAI_BASE_URL"] == "http://ollama:11434/v1"  # the ollama service, its OpenAI-compatible API
    assert env["CAREERBOT_LLM_MODEL"]
    assert "environment" not in bot  # the overrides apply to bot-ollama only
    for key in env:
        assert key in SETTING_VARIABLES, f"bot-ollama sets {key}, which is not a setting"
    fields = {SETTING_VARIABLES[k]: v for k, v in env.items() if v != ""}
    load_settings(**fields)  # every value is valid
    pull = [interpolate(part) for part in services["ollama-pull"]["entrypoint"]]
    assert pull[:2] == ["ollama", "pull"] and pull[2] == env["CAREERBOT_LLM_MODEL"]  # the model the bot asks for
    assert interpolate(as_env(services["ollama-pull"]["environment"])["OLLAMA_HOST"]) == "http://ollama:11434"
    assert llm_bot["depends_on"]["ollama-pull"]["condition"] == "service_completed_successfully"
    assert llm_bot["depends_on"]["ollama"]["condition"] == "service_healthy" and services["ollama"]["healthcheck"]
    # The same data and knowledge as the default bot: switching keeps the index and the feedback.
    assert llm_bot["volumes"] == bot["volumes"] and llm_bot["env_file"] == bot["env_file"]
    grace = int(str(llm_bot["stop_grace_period"]).rstrip("s"))
    assert grace > float(env["CAREERBOT_SHUTDOWN_TIMEOUT"])


def test_compose_interpolates_only_real_settings(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text(encoding="utf-8")))
    assert used and used <= set(SETTING_VARIABLES), used - set(SETTING_VARIABLES)


# -- .env.example ---------------------------------------------------------------------------------------


def test_env_example_lists_every_setting_once_with_a_comment() -> None:
    entries = read_env_example(ENV_EXAMPLE)
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    unknown = set(names) - set(SETTING_VARIABLES) - NON_FIELD_VARIABLES
    assert not unknown, f"not settings: {unknown}"
    missing = set(SETTING_VARIABLES) - set(names)
    assert not missing, f"settings missing from .env.example: {missing}"
    assert NON_FIELD_VARIABLES <= set(names)
    for entry in entries:
        assert entry.comment, f"{entry.name} has no comment"


def test_env_example_values_are_valid_and_show_the_defaults(image: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = read_env_example(ENV_EXAMPLE)
    for var in (*SETTING_VARIABLES, *NON_FIELD_VARIABLES):
        monkeypatch.delenv(var, raising=False)
    # Copied to .env as it is, the file loads (the empty tokens are reported by `careerbot slack`, not here).
    active = {e.name: e.value for e in entries if not e.commented}
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"} <= set(active)
    for name, value in active.items():
        monkeypatch.setenv(name, value)
    load_settings()
    # A shown value is the default: the image's ENV value, or else the setting's own default.
    for entry in entries:
        if not entry.value or entry.name in NON_FIELD_VARIABLES:
            continue
        field = SETTING_VARIABLES[entry.name]
        if entry.name in image.env:
            assert entry.value == image.env[entry.name], entry.name
            continue
        with monkeypatch.context() as m:
            m.setenv(entry.name, entry.value)
            shown = getattr(load_settings(), field)
        assert shown == Settings.model_fields[field].get_default(call_default_factory=True), entry.name


# -- docs -------------------------------------------------------------------------------------------------


def test_every_setting_is_documented() -> None:
    text = docs()
    for variable in SETTING_VARIABLES:
        assert f"`{variable}`" in text, variable


def test_the_deployment_is_documented() -> None:
    text = docs()
    for phrase in ("docker compose up", "bot-ollama", "careerbot health", "SIGHUP", "SIGTERM", ".env.example",
                   "CAREERBOT_RELOAD_INTERVAL", "CAREERBOT_SHUTDOWN_TIMEOUT", "EXTRAS"):
        assert phrase in text, phrase


def test_compose_itself_accepts_the_file_when_it_is_installed(tmp_path: Path) -> None:
    """Only where a Compose binary exists (`docker compose` or `docker-compose`); it needs no engine for `config`."""
    import shutil

    candidates = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    if not candidates:
        pytest.skip("no docker compose here")
    shutil.copy2(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy2(ENV_EXAMPLE, tmp_path / ".env")
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "Dockerfile").touch()
    for compose_cmd in candidates:
        for profile in ([], ["--profile", "ollama"]):
            result = subprocess.run([*compose_cmd, *profile, "config", "--quiet"], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (compose_cmd, profile, result.stderr)


def test_the_replicas_profile_runs_two_socket_mode_bots_on_one_postgres(compose: dict[str, Any], image: Image) -> None:
    from urllib.parse import urlsplit

    services = compose["services"]
    for name in ("postgres", "replica-1", "replica-2"):
        assert services[name]["profiles"] == ["replicas"], name
    postgres = services["postgres"]
    assert "ports" not in postgres  # reachable from the compose network only
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    pg_env = as_env(postgres["environment"])
    data_volumes = set()
    for name in ("replica-1", "replica-2"):
        replica = services[name]
        assert replica["command"] == image.entry_command[1:] and "--http" not in replica["command"]  # Socket Mode
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = {k: interpolate(v) for k, v in as_env(replica["environment"]).items()}
        assert set(env) <= set(SETTING_VARIABLES)
        url = urlsplit(env["CAREERBOT_DATABASE_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert (url.username, url.password, url.path) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"],
                                                          "/" + pg_env["POSTGRES_DB"])
        load_settings(database_url=env["CAREERBOT_DATABASE_URL"])
        [data] = [v for v in replica["volumes"] if v.split(":")[1] == image.env["CAREERBOT_DATA_DIR"]]
        data_volumes.add(data.split(":")[0])
        assert data.split(":")[0] in compose["volumes"]
        assert f"./knowledge:{image.env['CAREERBOT_KNOWLEDGE_DIR']}:ro" in replica["volumes"]  # the same articles
    assert len(data_volumes) == 2 and "careerbot-data" not in data_volumes  # an index and a heartbeat each
