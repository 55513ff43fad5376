"""Apply the numbered SQL migrations in chalicelib/migrations (idempotent).

Usage: python -m scripts.migrate [DATABASE_URL]   (default: $DATABASE_URL)
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg

from chalicelib.db import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "database_url",
        nargs="?",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no database URL: pass one or set DATABASE_URL")
    try:
        applied = migrate(args.database_url)
    except psycopg.OperationalError as exc:
        print(f"migrate: cannot connect to the database: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
