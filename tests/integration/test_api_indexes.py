"""Every query the API and the sweeper run on a growing table can use an index.

With sequential scans priced out (enable_seqscan = off), a query that has an
index to use gets it; one that has none still shows a Seq Scan.
"""

from __future__ import annotations

import pytest

from chalicelib.agents import _FAN_OUT_CANDIDATES, NOT_ONLINE_SQL, ONLINE_SQL

ID = "00000000-0000-0000-0000-000000000000"

QUERIES = {
    "list checks, newest first": "SELECT id FROM checks c ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
    "list checks after a cursor": "SELECT id FROM checks c WHERE (c.created_at, c.id) < (now(), %(id)s::uuid) "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
    "list checks of a target": "SELECT id FROM checks c WHERE c.target = 'example.com' "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
    "list checks by status": "SELECT id FROM checks c WHERE c.status = 'failed' "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
    "tasks of a check": "SELECT id FROM check_tasks WHERE check_id = %(id)s",
    "result of a task": "SELECT id FROM check_results WHERE task_id = %(id)s",
    "agent by token": "SELECT id FROM agents WHERE api_token_hash = 'x'",
    "fan-out candidates": _FAN_OUT_CANDIDATES,
    "online agents (count)": f"SELECT count(*) FROM agents a WHERE {ONLINE_SQL}",
    "agents to mark offline": f"SELECT id FROM agents a WHERE a.status = 'online' AND {NOT_ONLINE_SQL}",
    "overdue tasks": "SELECT id FROM check_tasks WHERE status IN ('pending', 'in_progress') AND deadline_at <= now()",
    "tasks to re-enqueue": "SELECT id FROM check_tasks WHERE status = 'pending' AND enqueued_at < now()",
    "agent stats window": "SELECT id FROM check_results WHERE agent_id = %(id)s AND created_at > now()",
    "checks past retention": "SELECT id FROM checks WHERE created_at < now() ORDER BY created_at LIMIT 5000",
}


@pytest.mark.parametrize("name", QUERIES)
def test_query_can_use_an_index(db, name):
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        rows = db.execute("EXPLAIN " + QUERIES[name], {"id": ID, "ttl": 30}).fetchall()
        plan = "\n".join(r["QUERY PLAN"] for r in rows)
    assert "Seq Scan" not in plan, plan
