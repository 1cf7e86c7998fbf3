"""Fixtures: the image as its Dockerfile describes it, built outside Docker, and running bots talking to a fake Slack.

- ``installed``: ``pip install`` of the sources the Dockerfile copies, non-editable, into a
  folder of its own (``--target``), with ``bot/slack/manifest.yaml`` removed if present:
  the bots below import careerbot from there, not from the working tree.
- ``image_root``: a temporary folder laid out like the image's file system: every ``COPY``
  of the Dockerfile (re-rooted), the data directory, and the Dockerfile's ``RUN careerbot …``
  build steps run in it with the image's ``ENV``.
- ``start_bot``: runs the image's ENTRYPOINT (+ CMD, or a compose-style command) there, with
  the image's environment plus SLACK_* pointing at the fake Slack; every bot is killed at
  teardown whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT
from tests.slack.fake_slack import FakeSlack

from .support import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, Bot, Image, clean_environ, free_port, reroot

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def image() -> Image:
    return Image.read(PROJECT_ROOT / "Dockerfile")


@pytest.fixture(scope="session")
def installed(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """careerbot installed as the image installs it (``pip install /src``), but into a folder; its path."""
    work = tmp_path_factory.mktemp("install")
    src_root = work / "image"
    for sources, dest in image.copies():
        if not dest.startswith("/src"):
            continue
        for source in sources:
            target = reroot(src_root, dest)
            origin = PROJECT_ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
    site = work / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(site)]
    # Offline with this environment's setuptools when it can build wheels; else as the image does: pip
    # fetches the build backend pyproject.toml asks for (a fresh Python 3.11 venv has setuptools 65, no wheel).
    errors = []
    for isolation in (["--no-build-isolation"], []):
        result = subprocess.run(
            [*install, *isolation, str(reroot(src_root, "/src"))], capture_output=True, text=True, timeout=300
        )
        if result.returncode == 0:
            break
        errors.append(result.stderr[-2000:])
        shutil.rmtree(site, ignore_errors=True)
    else:
        raise AssertionError("pip install of the image's sources failed:\n" + "\n".join(errors))
    (site / "bot" / "slack" / "manifest.yaml").unlink(missing_ok=True)  # not needed at run time
    return site


def image_environment(image: Image, root: Path, installed: Path) -> dict[str, str]:
    """The environment of a container of ``image`` whose file system is ``root``; careerbot from ``installed``."""
    env = clean_environ()
    for key, value in image.env.items():
        env[key] = str(reroot(root, value)) if value.startswith("/") else value
    env["PATH"] = f"{installed / 'bin'}:{VENV_BIN}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(installed)
    return env


@pytest.fixture(scope="session")
def built_root(image: Image, installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's file system, after its build: COPY'd files, /data, and the ``RUN careerbot …`` steps done."""
    root = tmp_path_factory.mktemp("image-root")
    for sources, dest in image.copies():
        if dest.startswith("/src"):
            continue
        for source in sources:
            origin = PROJECT_ROOT / source
            target = reroot(root, dest)
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    reroot(root, image.env["CAREERBOT_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    reroot(root, image.workdir).mkdir(parents=True, exist_ok=True)
    env = image_environment(image, root, installed)
    for run in image.all("RUN"):
        if run.value.startswith("careerbot "):
            result = subprocess.run(
                ["/bin/sh", "-c", run.value], env=env, cwd=reroot(root, image.workdir),
                capture_output=True, text=True, timeout=300,
            )
            assert result.returncode == 0, f"RUN {run.value} failed:\n{result.stdout}\n{result.stderr}"
    return root


@pytest.fixture
def image_root(built_root: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built image's file system for one test (its knowledge folder may be edited)."""
    root = tmp_path / "root"
    shutil.copytree(built_root, root)
    return root


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def start_bot(image: Image, installed: Path, tmp_path: Path):
    """``start_bot(root, fake, http=…, command=…, env=…, preexec_fn=…)``: the image's entry command, running;
    killed at teardown. Started again on the same ``root``, it is a restart: the same data dir."""
    bots: list[Bot] = []

    def start(
        root: Path,
        fake: FakeSlack,
        *,
        http: bool = False,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Bot:
        environment = image_environment(image, root, installed)
        environment.update({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": fake.api_url})
        if http:
            environment["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
        else:
            environment["SLACK_APP_TOKEN"] = APP_TOKEN
        environment.update(env or {})
        entrypoint = image.last("ENTRYPOINT")
        args = list(entrypoint.exec_form or []) if entrypoint else []
        port = None
        if command is None:
            command = image.entry_command[len(args):]  # the image's CMD
        if http:
            port = free_port()
            command = [*command, "--http", "--host", "127.0.0.1", "--port", str(port)]
        bot = Bot(
            [*args, *command],
            env=environment,
            cwd=reroot(root, image.workdir),
            log_path=tmp_path / f"bot-{len(bots)}.log",
            data_dir=reroot(root, image.env["CAREERBOT_DATA_DIR"]),
            preexec_fn=preexec_fn,
        )
        bot.port = port
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.kill()
