"""Fan-out of one check to 100 agents x 5 types is two Redis round trips, whatever the number of
agents: one script call reading their heartbeat keys and queues (who is online, and who is behind),
one pipeline pushing every task."""

from __future__ import annotations

import uuid

from chalicelib import checks, queue
from chalicelib.agents import hash_token
from chalicelib.protocol import CHECK_TYPES


def _hundred_online_agents(db):
    ids = [str(uuid.uuid4()) for _ in range(100)]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO agents (id, name, location, api_token_hash, status, last_heartbeat) "
            "VALUES (%s, %s, %s, %s, 'online', now())",
            [(i, f"agent-{n:03d}", f"loc-{n % 10}", hash_token(i)) for n, i in enumerate(ids)],
        )
    return ids


def test_fan_out_to_100_agents_by_5_types_is_one_agent_state_read_and_one_pipeline(
    settings, db, redis_client, count_round_trips
):
    ids = _hundred_online_agents(db)
    queue.agent_states(ids[:1])  # connect, and load the script (once per Redis), before counting
    with count_round_trips() as sends:
        request = checks.parse_request({"target": "example.com", "checks": list(CHECK_TYPES)})
        created = checks.create(request, client_ip="203.0.113.9")

    assert len(created["tasks"]) == 500
    assert len(sends) == 2, f"{len(sends)} round trips to Redis"
    first = sends[0] if isinstance(sends[0], bytes) else b"".join(sends[0])
    # EVALSHA, the sha, the key count, 200 keys (heartbeat and stream of each agent), the group
    assert first.startswith(b"*204\r\n$7\r\nEVALSHA\r\n")
    assert sum(redis_client.xlen(f"hc:tasks:{i}") for i in ids) == 500
    assert all(redis_client.xlen(f"hc:tasks:{i}") == 5 for i in ids)
    # every task knows its stream entry, so the sweeper can tell a lost one
    missing = db.execute("SELECT count(*) AS n FROM check_tasks WHERE stream_id IS NULL").fetchone()["n"]
    assert missing == 0


def _statements_to_fan_out(db, monkeypatch, agents: int) -> tuple[int, list[str], int]:
    """(statements, INSERT statements, tasks) of one check x 5 types to `agents` online agents,
    counted on the API pool's own connections (tests/integration/test_task_path_transactions.py)."""
    from chalicelib import db as db_module
    from tests.integration.test_task_path_transactions import CountingConnection

    db.execute("TRUNCATE check_results, check_tasks, checks, agents CASCADE")
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO agents (id, name, location, api_token_hash, status, last_heartbeat) "
            "VALUES (%s, %s, %s, %s, 'online', now())",
            [
                (i, f"agent-{n:03d}", f"loc-{n % 10}", hash_token(i))
                for n, i in enumerate(str(uuid.uuid4()) for _ in range(agents))
            ],
        )
    sent: list[str] = []
    original = CountingConnection.execute

    def recording(self, query, *args, **kwargs):
        sent.append(str(query).lstrip())
        return original(self, query, *args, **kwargs)

    class RecordingPool(db_module.ConnectionPool):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, connection_class=CountingConnection, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(CountingConnection, "execute", recording)
        patch.setattr(db_module, "ConnectionPool", RecordingPool)
        db_module.close_pool()
        request = checks.parse_request({"target": "example.com", "checks": list(CHECK_TYPES)})
        created = checks.create(request, client_ip="203.0.113.9")
        db_module.close_pool()
    inserts = [q for q in sent if q.upper().startswith(("INSERT", "WITH"))]
    return len(sent), inserts, len(created["tasks"])


def test_fan_out_is_one_insert_statement_and_as_many_statements_for_100_agents_as_for_10(settings, db, monkeypatch):
    few, few_inserts, few_tasks = _statements_to_fan_out(db, monkeypatch, 10)
    many, many_inserts, many_tasks = _statements_to_fan_out(db, monkeypatch, 100)
    assert (few_tasks, many_tasks) == (50, 500)
    assert len(many_inserts) == 1 and "INSERT INTO check_tasks" in many_inserts[0], many_inserts
    assert many == few, f"{few} statements for 10 agents, {many} for 100"
