"""A throwaway PostgreSQL cluster for the tests: the server Debian ships (``postgresql-15``), started by the test
run itself on a free port of 127.0.0.1 with trust authentication, and removed afterwards.

The server refuses to run as root; as root (as in CI) initdb and pg_ctl run as the ``postgres`` user through
``runuser``, in a temporary folder owned by it. Fixtures (made visible to every test by ``tests/conftest.py``):

- ``postgres_server`` (session): the running cluster, or a skip saying how to get one. With
  ``CAREERBOT_REQUIRE_PG=1`` (set by ``.ci/run``) a cluster that cannot start fails the tests instead.
- ``pg_url``: a fresh, empty database on it for one test (a ``postgresql://`` URL), dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOW_TO_RUN = (
    "install the PostgreSQL server (apt-get install -y postgresql-15, or postgresql) or point "
    "CAREERBOT_TEST_PG_BIN at the folder holding initdb and pg_ctl; .ci/run does this and runs these tests"
)
#: A password the tests put in URLs to check that it never shows (trust auth ignores it).
URL_PASSWORD = "pg-s3cret-Passw0rd"


def _bin_dir() -> Path | None:
    explicit = os.environ.get("CAREERBOT_TEST_PG_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster."""

    host: str
    port: int
    root: Path
    bin_dir: Path
    run_as: list[str]

    def url(self, database: str = "postgres", *, password: str | None = URL_PASSWORD) -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"t_{secrets.token_hex(6)}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run(command: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def start_cluster(*, durable: bool = False) -> PostgresServer | str:
    """Start a cluster; the server, or why it could not be started. ``durable``: fsync on, as in production
    (the benchmark); the tests run without it, which is faster and changes nothing they check."""
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        return "no PostgreSQL server binaries (initdb) found"
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="careerbot-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            shutil.rmtree(root, ignore_errors=True)
            return "running as root and runuser is missing"
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, sockets = root / "data", root / "sockets"
    result = _run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
    if result.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return f"initdb failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}"
    _run([*run_as, "mkdir", "-p", str(sockets)])
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=32MB"
    if not durable:
        options += " -c fsync=off -c full_page_writes=off"
    result = _run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                   "-w", "-t", "60", "start"])
    if result.returncode != 0:
        log = (root / "server.log").read_text(errors="replace")[-500:] if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        return f"pg_ctl start failed: {result.stderr.strip()[-300:]} {log}"
    return PostgresServer(host="127.0.0.1", port=port, root=root, bin_dir=bin_dir, run_as=run_as)


def stop_cluster(server: PostgresServer) -> None:
    _run([*server.run_as, str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate",
          "-w", "stop"], timeout=60)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    started = start_cluster()
    if isinstance(started, str):
        message = f"PostgreSQL tests need a server: {started}; {HOW_TO_RUN}"
        if os.environ.get("CAREERBOT_REQUIRE_PG") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield started
    finally:
        stop_cluster(started)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
