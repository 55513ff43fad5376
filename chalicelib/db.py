"""PostgreSQL access: one lazily created pool, reused across warm invocations,
and the numbered migrations.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .config import get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every migrator.
_MIGRATION_LOCK_ID = 0x4843_0001

_pool: ConnectionPool | None = None
_pool_url: str | None = None
_pool_lock = threading.Lock()


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the API answers 503."""


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
                    url, min_size=0, max_size=8, open=True, timeout=5,
                    kwargs={"row_factory": dict_row, "connect_timeout": 3},
                    check=ConnectionPool.check_connection,
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

    `timeout` bounds the wait for a connection (the pool's default otherwise).
    """
    try:
        with get_pool().connection(timeout=timeout) as conn:
            yield conn
    except (psycopg.OperationalError, TimeoutError) as exc:
        if isinstance(exc, psycopg.errors.QueryCanceled):
            raise
        raise DatabaseUnavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    except Exception as exc:
        from psycopg_pool import PoolTimeout

        if isinstance(exc, PoolTimeout):
            raise DatabaseUnavailable("no database connection available") from exc
        raise


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
