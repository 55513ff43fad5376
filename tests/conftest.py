"""Shared fixtures: private PostgreSQL and Redis for the tests, started by the
project's own local cloud (scripts/localcloud/) under `.local/test/`, on ports of
their own so they never disturb `make run`'s stack or another checkout's tests.

Ports are chosen free (procs.choose_ports), recorded in `.local/test/ports.json` and reused
while free or while this checkout's test servers hold them; HC_TEST_PG_PORT,
HC_TEST_REDIS_PORT and HC_TEST_API_PORT pin them instead.

Fixtures:
- `pg_url`, `redis_url` (session): the test servers, migrated.
- `clean_state` (function): empty tables and an empty Redis before a test.
- `settings` (function): chalicelib settings for the `test` stage, pointed at them.
- `api_server` (session): the local API gateway (scripts/localcloud/gateway.py: gunicorn
  workers around Chalice's LocalGateway, as `make run` starts it) with `--stage test`, on its
  own port, for tests that need a real HTTP API. Yields its base URL. HC_TEST_API_SERVER=chalice
  serves them with `chalice local` instead (tests/localcloud/test_gateway.py keeps it working).

Each session gets a database and a Redis db of its own on the shared test
servers, so concurrent sessions never disturb each other.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scripts.localcloud.postgres import Postgres
from scripts.localcloud.procs import ROOT, ServiceError, choose_ports, listens, stop, wait_for
from scripts.localcloud.redis import Redis

TEST_STATE = ROOT / ".local" / "test"


def _test_ports() -> dict[str, int]:
    """The test servers' ports: pinned by HC_TEST_*, else recorded and reused (see the docstring)."""
    keep = {
        name
        for name, running in (("pg", Postgres(TEST_STATE, 0).running()), ("redis", Redis(TEST_STATE, 0).running()))
        if running
    }
    chosen = choose_ports(
        TEST_STATE / "ports.json", {"pg": None, "redis": None, "api": None, "ws_management": None}, keep=keep
    )
    pinned = {name: os.environ.get(f"HC_TEST_{name.upper()}_PORT") for name in ("pg", "redis", "api", "ws_management")}
    return {name: int(pinned[name]) if pinned[name] else port for name, port in chosen.items()}


PORTS = _test_ports()
PG_PORT, REDIS_PORT, API_PORT = PORTS["pg"], PORTS["redis"], PORTS["api"]
# The WebSocket emulator's management API (tests/integration/test_live_results.py starts it);
# every process the tests start pushes live updates there.
WS_MANAGEMENT_PORT = PORTS["ws_management"]
REGISTRATION_TOKEN = "test-registration-token"
ADMIN_TOKEN = "test-admin-token"

TEST_ENV = {
    "HC_STAGE": "test",
    "ALLOW_PRIVATE_TARGETS": "true",
    "REGISTRATION_TOKEN": REGISTRATION_TOKEN,
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "HostChecker",
    "POWERTOOLS_SERVICE_NAME": "host-checker",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "HC_WS_MANAGEMENT_URL": f"http://127.0.0.1:{WS_MANAGEMENT_PORT}",
}


@pytest.fixture(scope="session")
def _servers():
    """The shared test servers, and a database and Redis db of this session's own,
    so two pytest sessions at once (developers, helpers) never see each other's data."""
    pg = Postgres(TEST_STATE, PG_PORT)
    redis = Redis(TEST_STATE, REDIS_PORT)
    started = [s for s in (pg, redis) if not s.running()]
    try:
        pg.start(log=lambda *_: None)
        redis.start(log=lambda *_: None)
    except ServiceError as exc:
        pytest.exit(f"test services could not start: {exc}", returncode=3)
    import psycopg

    from chalicelib.db import migrate

    db_name = f"hc_test_{os.getpid()}"
    admin = f"postgresql://hostchecker@127.0.0.1:{PG_PORT}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    pg_session_url = f"postgresql://hostchecker@127.0.0.1:{PG_PORT}/{db_name}"
    migrate(pg_session_url, log=lambda *_: None)
    redis_session_url = f"redis://127.0.0.1:{REDIS_PORT}/{os.getpid() % 15 + 1}"
    yield pg_session_url, redis_session_url
    from chalicelib.db import close_pool

    close_pool()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    for service in started:  # leave servers another session started alone
        service.stop()


@pytest.fixture(scope="session")
def pg_url(_servers) -> str:
    return _servers[0]


@pytest.fixture(scope="session")
def redis_url(_servers) -> str:
    return _servers[1]


@pytest.fixture(scope="session", autouse=True)
def _test_environment():
    """The test stage's environment, for everything the tests import or start."""
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)
    for key in ("HC_SECRET_NAME", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _truncate(pg_url: str, redis_url: str) -> None:
    import psycopg
    import redis as redis_lib

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE check_results, check_tasks, checks, agents CASCADE")
    redis_lib.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def clean_state(pg_url, redis_url):
    _truncate(pg_url, redis_url)
    yield


@pytest.fixture
def settings(pg_url, redis_url, clean_state, monkeypatch):
    """Settings for the test stage, pointing at the test servers; reset afterwards."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    from chalicelib import config

    yield config.reset_settings()
    config.reset_settings()


# Where api_server writes its output, for tests that scan it (tests/integration/test_auth_matrix.py).
API_SERVER_LOGS: list = []  # of pathlib.Path


# What serves the tests' API: the local gateway (as `make run`), or chalice local; and its workers.
API_SERVER = os.environ.get("HC_TEST_API_SERVER", "gateway")
API_WORKERS = int(os.environ.get("HC_TEST_API_WORKERS", "2"))


def api_argv(port: int, server: str = API_SERVER, workers: int = API_WORKERS) -> list[str]:
    """The command serving app.py with `--stage test` on 127.0.0.1:`port`."""
    if server == "chalice":
        chalice = ROOT / ".venv" / "bin" / "chalice"
        argv = [str(chalice) if chalice.exists() else "chalice", "local", "--stage", "test", "--host", "127.0.0.1"]
        return argv + ["--port", str(port), "--no-autoreload"]
    from scripts.localcloud import gateway

    return gateway.command(port, "127.0.0.1", "test", workers=workers, python=sys.executable)


def start_api(port: int, env: dict, log_path, what: str = "the API", server: str = API_SERVER) -> subprocess.Popen:
    """The test API (`api_argv`) on 127.0.0.1:`port`, logging to `log_path`. Returns once *this*
    process listens (procs.listens, never another session's server) or has exited: the caller
    checks `poll()`."""
    with open(log_path, "a") as log:
        proc = subprocess.Popen(api_argv(port, server), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or listens(proc.pid, port), 30, what)
        if proc.poll() is None:
            _first_answer(port)
    except ServiceError:
        proc.kill()
        proc.wait()
        raise
    return proc


def _first_answer(port: int, timeout: float = 120) -> None:
    """Wait for the first answer: the gateway listens before its workers have imported app.py
    (seconds on a loaded machine), and the request waits in its listen queue meanwhile."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # answered (503 while a dependency is down)
    except OSError as exc:
        raise ServiceError(f"the API on port {port} did not answer: {exc}") from None


def start_chalice_local(port: int, env: dict, log_path, what: str = "chalice local") -> subprocess.Popen:
    """`chalice local --stage test`, the option `HC_API_SERVER=chalice` keeps for `make run`."""
    return start_api(port, env, log_path, what, server="chalice")


@pytest.fixture(scope="session")
def api_server(pg_url, redis_url, tmp_path_factory):
    """A real HTTP API (`start_api`) serving app.py on API_PORT (or a free port)."""
    log_path = tmp_path_factory.mktemp("api") / f"api-{API_SERVER}.log"
    API_SERVER_LOGS.append(log_path)
    env = dict(os.environ, DATABASE_URL=pg_url, REDIS_URL=redis_url, **TEST_ENV)
    proc = None
    # The chosen port first; if it is taken between our look and the server's bind, a free one.
    for port in (API_PORT, free_port()):
        proc = start_api(port, env, log_path)
        if proc.poll() is None:
            break
    if proc.poll() is not None:
        pytest.fail(f"the API ({API_SERVER}) exited: {log_path.read_text()[-2000:]}")
    url = f"http://127.0.0.1:{port}"
    yield url
    stop(proc.pid)
    proc.wait()
