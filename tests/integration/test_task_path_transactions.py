"""The task path's cost in PostgreSQL transactions and statements: a count, never a timing.

Every connection of the API's pool is a real psycopg connection to the test server, of a
subclass that counts the transactions it ends (a COMMIT or ROLLBACK sent while one is
open) and the statements it runs. POST /api/checks, start and result together were nine
transactions (two, four and three); they are now four, and three when the agent delivers
its results in a batch (start rides along: a result implies it).
"""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from psycopg import pq

# POST /api/checks: the check and its tasks, then the tasks' stream entry ids (known only
# after the push, which must follow the commit so no agent reads an uncommitted task).
POST_CHECK_TRANSACTIONS = 2
TASK_PATH_TRANSACTIONS = 4  # POST, start, result
BATCHED_TASK_PATH_TRANSACTIONS = 3  # POST, one batch of results (no start)


class CountingConnection(psycopg.Connection):
    """A psycopg connection that counts what it sends; the figures are per class (the pool's).

    A statement run in autocommit mode is a transaction of its own (PostgreSQL commits it), so it
    counts as one. Round trips: each statement, and the BEGIN and the COMMIT (or ROLLBACK) that
    psycopg sends around an explicit transaction."""

    transactions = 0
    statements = 0
    round_trips = 0

    def execute(self, *args, **kwargs):
        cls = type(self)
        cls.statements += 1
        cls.round_trips += 1
        if self.autocommit:
            cls.transactions += 1
        elif self.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            cls.round_trips += 1  # the BEGIN psycopg sends first
        return super().execute(*args, **kwargs)

    def commit(self) -> None:
        self._count_end()
        super().commit()

    def rollback(self) -> None:
        self._count_end()
        super().rollback()

    def _count_end(self) -> None:
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            type(self).transactions += 1
            type(self).round_trips += 1


@pytest.fixture
def counted(settings, monkeypatch):
    """The API's pool, rebuilt with counting connections; yields a context manager that
    returns the transactions and statements run inside it."""
    from chalicelib import db

    class CountingPool(db.ConnectionPool):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, connection_class=CountingConnection, **kwargs)

    db.close_pool()
    monkeypatch.setattr(db, "ConnectionPool", CountingPool)

    @contextmanager
    def window():
        figures = {}
        before = CountingConnection.transactions, CountingConnection.statements, CountingConnection.round_trips
        yield figures
        figures["transactions"] = CountingConnection.transactions - before[0]
        figures["statements"] = CountingConnection.statements - before[1]
        figures["round_trips"] = CountingConnection.round_trips - before[2]

    yield window
    db.close_pool()


def _one_task(api, agent) -> str:
    reply = api.create_check(checks=["tcp"])
    assert reply.status == 202, reply.body
    (task,) = reply.body["tasks"]
    return task["task_id"]


def test_posting_a_check_costs_two_transactions(api, counted):
    api.register("fra-1", "Frankfurt")
    with counted() as cost:
        assert api.create_check(checks=["tcp"]).status == 202
    assert cost["transactions"] == POST_CHECK_TRANSACTIONS


def test_posting_a_check_to_named_agents_costs_no_begin_or_commit_outside_its_one_transaction(api, counted):
    agent = api.register("fra-1", "Frankfurt")
    with counted() as cost:
        reply = api.create_check(checks=["tcp"], agents=[agent["agent_id"]])
        assert reply.status == 202, reply.body
    # The named agents checked (1 statement), the check's transaction (BEGIN, its statements,
    # COMMIT), the stream ids stored (1 statement): the two lone statements need no BEGIN/COMMIT.
    assert cost["round_trips"] == cost["statements"] + 2, cost
    assert cost["transactions"] == POST_CHECK_TRANSACTIONS + 1, cost  # + the selection's read


def test_post_start_and_result_together_use_at_most_four_transactions(api, counted, db):
    agent = api.register("fra-1", "Frankfurt")
    with counted() as cost:
        task_id = _one_task(api, agent)
        assert api.start(agent, task_id).status == 200
        assert api.result(agent, task_id).status == 200
    assert cost["transactions"] <= TASK_PATH_TRANSACTIONS, cost
    row = db.execute("SELECT status, attempts FROM check_tasks WHERE id = %s", (task_id,)).fetchone()
    assert row == {"status": "completed", "attempts": 1}


def test_a_batch_of_results_is_one_transaction_however_many_tasks(api, counted):
    agent = api.register("fra-1", "Frankfurt")
    reply = api.create_check(checks=["http", "ping", "dns", "tcp", "traceroute"])
    task_ids = [t["task_id"] for t in reply.body["tasks"]]
    assert len(task_ids) == 5
    body = {"results": [{"task_id": t, "success": True, "duration_ms": 3.0, "data": {}} for t in task_ids]}
    with counted() as cost:
        reply = api.post("/api/tasks/results", body, headers={"X-Agent-Token": agent["api_token"]})
    assert reply.status == 200, reply.body
    assert [r["status"] for r in reply.body["results"]] == [200] * 5
    assert cost["transactions"] == 1, cost


def test_post_and_a_batched_result_use_three_transactions(api, counted):
    agent = api.register("fra-1", "Frankfurt")
    with counted() as cost:
        task_id = _one_task(api, agent)
        body = {"results": [{"task_id": task_id, "success": True, "duration_ms": 3.0}]}
        reply = api.post("/api/tasks/results", body, headers={"X-Agent-Token": agent["api_token"]})
        assert reply.status == 200 and reply.body["results"][0]["status"] == 200, reply.body
    assert cost["transactions"] <= BATCHED_TASK_PATH_TRANSACTIONS, cost


def test_start_and_result_do_not_grow_with_statements_per_checkout(api, counted):
    """No connection check per checkout and no re-read for the live event: start is at most
    four statements (the agent, the task, the check, the task's update), a result at most seven."""
    agent = api.register("fra-1", "Frankfurt")
    task_id = _one_task(api, agent)
    with counted() as start_cost:
        assert api.start(agent, task_id).status == 200
    with counted() as result_cost:
        assert api.result(agent, task_id).status == 200
    assert start_cost["statements"] <= 4, start_cost
    assert result_cost["statements"] <= 7, result_cost


def _overdue_starts_cost(api, counted, db, agent, n: int) -> dict:
    task_ids = [_one_task(api, agent) for _ in range(n)]
    overdue = "UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = ANY(%s::uuid[])"
    db.execute(overdue, (task_ids,))
    with counted() as cost:
        reply = api.post("/api/tasks/results", {"started": task_ids}, headers={"X-Agent-Token": agent["api_token"]})
    assert reply.status == 200, reply.body
    assert [s["status"] for s in reply.body["started"]] == [409] * n  # too late to start: failed now
    rows = db.execute("SELECT status FROM check_tasks WHERE id = ANY(%s::uuid[])", (task_ids,)).fetchall()
    assert [r["status"] for r in rows] == ["failed"] * n
    return cost


def test_a_batch_of_overdue_starts_fails_them_in_statements_that_do_not_grow_with_the_batch(api, counted, db):
    """Under overload the agents' start batches are full of overdue tasks: one statement failed
    each of them (the bench's throughput scenario collapsed on it), now one fails the lot."""
    agent = api.register("fra-1", "Frankfurt")
    two = _overdue_starts_cost(api, counted, db, agent, 2)
    twenty = _overdue_starts_cost(api, counted, db, agent, 20)
    assert twenty["statements"] == two["statements"], (two, twenty)
    assert twenty["transactions"] == two["transactions"] == 1
