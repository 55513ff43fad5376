"""The foundation layer: private PostgreSQL and Redis, and the migrations."""

from __future__ import annotations

import os
import socket
import threading

import psycopg
import pytest
import redis as redis_lib

from chalicelib.db import migrate
from scripts.localcloud.postgres import Postgres
from scripts.localcloud.procs import ServiceError, port_free
from scripts.localcloud.redis import Redis


def test_test_services_listen_on_their_own_ports(pg_url, redis_url):
    from tests.conftest import PG_PORT, REDIS_PORT

    assert not port_free(PG_PORT) and not port_free(REDIS_PORT)
    with psycopg.connect(pg_url) as conn:
        port = conn.execute("SHOW port").fetchone()[0]
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
    assert int(port) == PG_PORT
    assert listen == "127.0.0.1"  # never a public interface
    info = redis_lib.Redis.from_url(redis_url).info("server")
    assert int(info["tcp_port"]) == REDIS_PORT


def test_migrations_are_idempotent(pg_url):
    assert migrate(pg_url, log=lambda *_: None) == []
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions and versions[0] == "0001_initial"
    assert migrate(pg_url, log=lambda *_: None) == []


def test_concurrent_migrations_on_a_new_database_apply_each_once(pg_url):
    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    name = f"hc_migrate_race_{os.getpid()}"  # this session's own: sessions share the test server
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    results, errors = [], []

    def worker():
        try:
            results.append(migrate(url, log=lambda *_: None))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors
        applied = [v for r in results for v in r]
        assert sorted(applied) == sorted(set(applied))  # every migration applied by exactly one migrator
        assert "0001_initial" in applied
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def occupied_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_postgres_on_a_port_in_use_fails_with_a_clear_message(tmp_path, occupied_port):
    with pytest.raises(ServiceError) as info:
        Postgres(tmp_path, occupied_port).start(log=lambda *_: None)
    assert f"port {occupied_port}" in str(info.value) and "already in use" in str(info.value)


def test_redis_on_a_port_in_use_fails_with_a_clear_message(tmp_path, occupied_port):
    with pytest.raises(ServiceError) as info:
        Redis(tmp_path, occupied_port).start(log=lambda *_: None)
    assert f"port {occupied_port}" in str(info.value) and "already in use" in str(info.value)
