"""The `migrate` Lambda function that deploy.sh invokes in AWS."""

from __future__ import annotations

import os

import psycopg


def test_migrate_function_applies_a_new_schema_then_changes_nothing(settings, pg_url, monkeypatch):
    from chalice.test import Client

    from app import app
    from chalicelib import config

    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    name = f"hc_migrate_fn_{os.getpid()}"  # this session's own: sessions share the test server
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    config.reset_settings(database_url=pg_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        with Client(app, stage_name="test") as client:
            first = client.lambda_.invoke("migrate", {}).payload
            second = client.lambda_.invoke("migrate", {}).payload
        assert "0001_initial" in first["applied"]
        assert second == {"applied": []}
    finally:
        config.reset_settings()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
