"""What the API makes of PostgreSQL's errors, each provoked for real.

Only not getting a connection (or losing it) is "database unavailable" (503). A deadlock or a
serialization failure is rolled back and the transaction runs once more; anything else, or a
second rollback, is an error we log, answered 500.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from chalicelib import config
from chalicelib.agents import hash_token
from chalicelib.db import DatabaseUnavailable, run_transaction, transaction
from tests.conftest import free_port
from tests.integration.agent_harness import wait_until


def _agent_rows(db, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i in ids:
        db.execute(
            "INSERT INTO agents (id, name, location, api_token_hash) VALUES (%s, %s, 'Frankfurt', %s)",
            (i, f"agent-{i[:8]}", hash_token(i)),
        )
    return ids


def _bump(conn, agent_id: str, by: int = 1) -> None:
    conn.execute("UPDATE agents SET current_tasks = current_tasks + %s WHERE id = %s", (by, agent_id))


def test_no_connection_is_503_database_unavailable(api, settings):
    config.reset_settings(database_url=f"postgresql://hostchecker@127.0.0.1:{free_port()}/hc")  # closed port
    with pytest.raises(DatabaseUnavailable), transaction(timeout=1):
        pass
    reply = api.get("/api/agents")
    assert reply.status == 503 and reply.body["error"]["code"] == "service_unavailable"
    assert reply.headers["Retry-After"]


def test_a_connection_lost_mid_transaction_is_database_unavailable(settings, db):
    with pytest.raises(DatabaseUnavailable, match="lost"), transaction() as conn:
        pid = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        conn.execute("SELECT 1")


def test_a_serialization_failure_is_rolled_back_and_run_once_more(settings, db):
    (agent_id,) = _agent_rows(db, 1)
    attempts = []

    def work(conn):
        attempts.append(len(attempts) + 1)
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT current_tasks FROM agents WHERE id = %s", (agent_id,))  # the snapshot
        if len(attempts) == 1:
            _bump(db, agent_id)  # another transaction changes the row and commits
        _bump(conn, agent_id, 10)  # could not serialize access due to concurrent update
        return len(attempts)

    assert run_transaction(work) == 2
    assert db.execute("SELECT current_tasks FROM agents WHERE id = %s", (agent_id,)).fetchone()["current_tasks"] == 11


def test_a_second_rollback_is_raised_and_answered_500_and_logged(settings, db, caplog):
    (agent_id,) = _agent_rows(db, 1)
    attempts = []

    def work(conn):
        attempts.append(1)
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT current_tasks FROM agents WHERE id = %s", (agent_id,))
        _bump(db, agent_id)  # every time
        _bump(conn, agent_id, 10)

    from app import _unexpected

    caplog.clear()
    try:
        run_transaction(work)
        raise AssertionError("the second serialization failure was not raised")
    except psycopg.errors.SerializationFailure as exc:  # as the route boundary in app.py sees it
        response = _unexpected(exc)
    assert len(attempts) == 2
    assert response.status_code == 500 and response.body["error"]["code"] == "internal_error"
    assert _logged_errors(caplog) == ["SerializationFailure"]


def test_a_deadlock_is_rolled_back_and_run_once_more(settings, db, pg_url):
    first, second = _agent_rows(db, 2)
    other_pid: dict[str, int] = {}
    go = threading.Event()
    failures: list[BaseException] = []

    def other_transaction():
        """Takes `second`, then waits for `first`, which the work below holds."""
        try:
            with psycopg.connect(pg_url) as conn:
                conn.execute("SET deadlock_timeout = '60s'")  # so the work's backend finds the deadlock
                other_pid["pid"] = conn.info.backend_pid
                go.wait(30)
                _bump(conn, second)
                _bump(conn, first)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    attempts = []

    def work(conn):
        attempts.append(1)
        conn.execute("SET LOCAL deadlock_timeout = '50ms'")
        _bump(conn, first)
        if len(attempts) == 1:
            go.set()
            wait_until(lambda: _waits_for_a_lock(db, other_pid.get("pid")), "the other transaction to wait for us")
        _bump(conn, second)  # attempt 1: deadlock detected, this transaction is the one rolled back
        return len(attempts)

    thread = threading.Thread(target=other_transaction)
    thread.start()
    try:
        assert run_transaction(work) == 2
    finally:
        go.set()
        thread.join(30)
    assert not failures and not thread.is_alive()
    counts = {
        r["id"]: r["current_tasks"]
        for r in db.execute(
            "SELECT id::text, current_tasks FROM agents WHERE id = ANY(%s::uuid[])", ([first, second],)
        ).fetchall()
    }
    assert counts == {first: 2, second: 2}  # both transactions committed, each once


def _logged_errors(caplog) -> list[str]:
    """The exception class of each record logged at ERROR or above."""
    return [r.exc_info[0].__name__ for r in caplog.records if r.levelno >= 40 and r.exc_info]


def _waits_for_a_lock(db, pid: int | None) -> bool:
    if pid is None:
        return False
    row = db.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row["wait_event_type"] == "Lock"


def test_an_error_that_is_not_about_the_connection_is_500_not_503(api, db, caplog):
    """A full disk (raised here by a trigger, with PostgreSQL's own SQLSTATE) is our error, not an outage."""
    db.execute("""CREATE FUNCTION hc_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$""")
    db.execute(
        "CREATE TRIGGER hc_test_disk_full BEFORE INSERT ON agents FOR EACH ROW EXECUTE FUNCTION hc_test_disk_full()"
    )
    try:
        with pytest.raises(psycopg.errors.DiskFull), transaction() as conn:
            conn.execute(
                "INSERT INTO agents (id, name, location, api_token_hash) VALUES (gen_random_uuid(), 'x', 'y', 'z')"
            )
        caplog.clear()
        reply = api.post(
            "/api/agents/register",
            {"name": "fra-1", "location": "Frankfurt"},
            headers={"X-Registration-Token": "test-registration-token"},
        )
        assert reply.status == 500 and reply.body["error"]["code"] == "internal_error"
        assert "could not extend file" not in reply.raw.decode()  # nothing of it leaks
        assert _logged_errors(caplog) == ["DiskFull"]
    finally:
        db.execute("DROP TRIGGER hc_test_disk_full ON agents")
        db.execute("DROP FUNCTION hc_test_disk_full()")


def test_pooled_connections_killed_while_idle_cost_no_request(api, settings, db):
    """No round-trip check on checkout: a pooled connection PostgreSQL dropped while it sat idle
    (a restart, an idle timeout) is refused by the pool's socket poll, or, found broken on first use,
    run again by run_transaction on a good one; either way the agent's start answers 200, once."""

    agent = api.register("fra-1")
    task_id = api.create_check(checks=["tcp"]).body["tasks"][0]["task_id"]
    _drop_the_pools_idle_connections(db)
    reply = api.start(agent, task_id)
    assert reply.status == 200, reply.body
    assert reply.body["attempts"] == 1  # ran once: the failed try had changed nothing


def test_every_path_survives_pooled_connections_killed_while_idle(api, settings, db):
    """Not only run_transaction's: a plain `with transaction()` (registration, reads) after the
    pool's idle connections were dropped is served too, because the pool refuses a connection
    the server closed before handing it out (db._closed_by_the_server, no round trip). CI found
    this: the test above killed the session API's idle connections and the next registration
    through it answered 503."""
    _drop_the_pools_idle_connections(db)
    for name in ("fra-1", "fra-2", "fra-3", "fra-4"):  # more requests than there were dead connections
        assert api.register(name)["agent_id"]
    assert api.get("/api/agents").status == 200


def _drop_the_pools_idle_connections(db) -> None:
    """Three idle connections in this process's pool at least, and every client backend of the
    database (this process's and the session API's) terminated, as a restart or an idle timeout would."""
    from chalicelib import db as db_module

    pool = db_module.get_pool()
    held = [pool.getconn() for _ in range(3)]
    for conn in held:
        pool.putconn(conn)
    pids = [
        r["pid"]
        for r in db.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
    ]
    assert len(pids) >= 3
    wait_until(
        lambda: not db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone(),
        "the backends to exit",
    )
