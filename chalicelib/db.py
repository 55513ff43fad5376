"""PostgreSQL access: one lazily created pool, reused across warm invocations,
and the numbered migrations.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .config import get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every migrator.
_MIGRATION_LOCK_ID = 0x4843_0001
# A transaction PostgreSQL rolled back for a deadlock or a serialization failure runs again this often.
ROLLBACK_RETRIES = 1

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long the pool keeps retrying one failed connection attempt (with its backoff: 1 s, 2 s,
# 4 s ...) before it gives up; the next request then tries afresh. The pool's default, 5 min,
# meant that after a 20 s outage its next attempt came up to 11 s after PostgreSQL was back,
# and the API answered 503 until then (issue 16, suite 3). Keep it under the pool timeout.
RECONNECT_TIMEOUT_S = 1.0
# Connections one process holds at most (each API instance, the scheduler): what PostgreSQL sees is
# this times the number of processes, however heavy the load (tests/integration/test_fault_load.py).
POOL_MAX_SIZE = 8

_pool: ConnectionPool | None = None
_pool_url: str | None = None
_pool_lock = threading.Lock()


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the API answers 503."""


class ConnectionLost(DatabaseUnavailable):
    """A pooled connection turned out broken (e.g. PostgreSQL restarted since it was opened):
    nothing of the transaction was committed, so run_transaction runs it once more."""


def _closed_by_the_server(conn: psycopg.Connection) -> None:
    """Refuse a pooled connection PostgreSQL has closed while it sat idle, without a round trip.

    An idle connection has nothing to read. One the server ended (restart, idle timeout,
    pg_terminate_backend) has its FATAL message or EOF waiting on the socket, so a zero-timeout
    poll tells them apart. The pool then drops it and hands out another. Without this, every
    `with transaction()` after such a loss answered 503 once per dead connection."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.close()  # closed, the pool discards it; open, it would take it back as good
        raise psycopg.OperationalError("the server closed the connection while it was idle")


def get_pool() -> ConnectionPool:
    """The pool for the configured URL; a changed URL (tests) gets a new pool."""
    global _pool, _pool_url
    url = get_settings().database_url
    if _pool is None or _pool_url != url:
        with _pool_lock:
            if _pool is None or _pool_url != url:
                if not url:
                    raise DatabaseUnavailable("DATABASE_URL is not configured")
                if _pool is not None:
                    _pool.close()
                _pool_url = url
                _pool = ConnectionPool(
                    url,
                    min_size=0,
                    max_size=POOL_MAX_SIZE,
                    open=True,
                    timeout=5,
                    reconnect_timeout=RECONNECT_TIMEOUT_S,
                    kwargs={"row_factory": dict_row, "connect_timeout": 3},
                    # Not psycopg's check_connection (a round trip on every request); this one
                    # costs none. A connection that dies mid-transaction is still handled where
                    # it fails, by run_transaction (ConnectionLost).
                    check=_closed_by_the_server,
                )
    return _pool


def close_pool() -> None:
    global _pool, _pool_url
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None
            _pool_url = None


@contextmanager
def transaction(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction: committed on success, rolled back on error.

    Only not getting a connection (PostgreSQL down, the pool exhausted for `timeout`
    seconds, the pool's default otherwise), or losing it mid-way, is
    `DatabaseUnavailable` (503). Any other error, a deadlock or a full disk included,
    is raised as it is: the API logs it and answers 500.
    """
    pool = get_pool()
    try:
        conn = pool.getconn(timeout=timeout)
    except psycopg.OperationalError as exc:  # PoolTimeout is one: no connection within the timeout
        raise DatabaseUnavailable(_first_line(exc)) from exc
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        if conn.broken:
            raise ConnectionLost(f"the database connection was lost: {_first_line(exc)}") from exc
        raise
    finally:
        pool.putconn(conn)


@contextmanager
def autocommit(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A pooled connection outside any transaction: each statement commits by itself, in one round
    trip, with no BEGIN and COMMIT around it. For a lone statement (a read, or one UPDATE)
    where a transaction of one would cost two more round trips. Errors as `transaction`."""
    with transaction(timeout) as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not (conn.broken or conn.closed):  # a broken one the pool drops
                conn.autocommit = False  # as the pool's other users expect it


def run_transaction(work: Callable[[psycopg.Connection], T], timeout: float | None = None) -> T:
    """`work(conn)` inside one transaction. A transaction rollback that PostgreSQL asks the
    client to retry (deadlock detected, serialization failure: SQLSTATE class 40) is rolled
    back and `work` runs once more; a second one is raised like any other error.

    A connection found broken (the pool does not test connections on checkout) makes the
    pool test its idle ones, dropping the dead, and `work` runs once more on a good one.

    `work` must do nothing outside the transaction that a second run would repeat.
    """
    rollbacks, lost = 0, False
    while True:
        try:
            with transaction(timeout) as conn:
                return work(conn)
        except ConnectionLost as exc:
            if lost:
                raise
            lost = True
            log.warning("%s; testing the pool's idle connections and running the transaction again", exc)
            get_pool().check()
        except psycopg.Error as exc:
            # By SQLSTATE class: psycopg's classes for 40001 and 40P01 do not derive from
            # TransactionRollback (40000).
            if not (exc.sqlstate or "").startswith("40") or rollbacks >= ROLLBACK_RETRIES:
                raise
            rollbacks += 1
            log.warning("transaction rolled back (%s, SQLSTATE %s); running it again", type(exc).__name__, exc.sqlstate)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ping(timeout: float = 2.0) -> bool:
    try:
        with transaction(timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return True
    except DatabaseUnavailable:
        return False


def pending_migrations(conn: psycopg.Connection) -> list[Path]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    return [p for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if p.stem not in applied]


def migrate(database_url: str, log=print) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction.

    Idempotent and safe to run concurrently: an advisory lock serialises
    migrators, and each one re-reads what is applied after taking it.
    """
    applied_now = []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_ID,))
        try:
            for path in pending_migrations(conn):
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
                applied_now.append(path.stem)
                log(f"  applied migration {path.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_ID,))
    return applied_now
