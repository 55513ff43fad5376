"""Task start and result: ownership, idempotency, late results, status moves, pub/sub."""

from __future__ import annotations

import json
import time

import pytest


@pytest.fixture
def agent(api):
    return api.register("fra-1", "Frankfurt")


@pytest.fixture
def check(api, agent):
    return api.create_check(checks=["http", "ping"]).body


def _task(check, check_type):
    return next(t["task_id"] for t in check["tasks"] if t["check_type"] == check_type)


def test_start_moves_task_and_check_to_in_progress(api, agent, check):
    task_id = _task(check, "http")
    reply = api.start(agent, task_id)
    assert reply.status == 200
    assert reply.body["status"] == "in_progress" and reply.body["attempts"] == 1
    assert reply.body["deadline_ms"] > 0 and reply.body["check_id"] == check["check_id"]
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "in_progress"
    assert api.get(f"/api/tasks/{task_id}").body["status"] == "in_progress"


def test_starting_again_after_an_agent_restart_counts_an_attempt(api, agent, check):
    task_id = _task(check, "http")
    api.start(agent, task_id)
    reply = api.start(agent, task_id)
    assert reply.status == 200 and reply.body["attempts"] == 2


def test_another_agents_task_is_403_for_start_and_result(api, agent, check):
    intruder = api.register("evil-1", "Nowhere")
    task_id = _task(check, "http")
    assert api.start(intruder, task_id).status == 403
    reply = api.result(intruder, task_id)
    assert reply.status == 403 and reply.body["error"]["code"] == "forbidden"
    assert api.get(f"/api/tasks/{task_id}").body["status"] == "pending"


def test_unknown_task_is_404_and_missing_token_401(api, agent):
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.start(agent, missing).status == 404
    assert api.result(agent, missing).status == 404
    assert api.get(f"/api/tasks/{missing}").status == 404
    assert api.post(f"/api/tasks/{missing}/start").status == 401
    assert api.post(f"/api/tasks/{missing}/start", headers={"X-Agent-Token": "forged"}).status == 401


def test_starting_a_finished_task_is_409_task_finished_with_the_stored_result(api, agent, check):
    task_id = _task(check, "http")
    api.result(agent, task_id, duration_ms=12)
    reply = api.start(agent, task_id)
    assert reply.status == 409 and reply.body["error"]["code"] == "task_finished"
    assert reply.body["task"]["status"] == "completed"
    assert reply.body["task"]["result"]["duration_ms"] == 12


def test_starting_a_task_past_its_deadline_fails_it_and_answers_409(api, agent, check, db):
    task_id = _task(check, "http")
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = %s", (task_id,))
    reply = api.start(agent, task_id)
    assert reply.status == 409 and reply.body["task"]["status"] == "failed"
    assert reply.body["task"]["error"]["kind"] == "timeout"


def test_results_are_idempotent(api, agent, check, db):
    task_id = _task(check, "http")
    first = api.result(agent, task_id, duration_ms=21)
    assert first.status == 200 and first.body == {
        "task_id": task_id,
        "status": "completed",
        "late": False,
        "duplicate": False,
    }
    again = api.result(agent, task_id, duration_ms=99)
    assert again.status == 200 and again.body["duplicate"] is True
    assert again.body["result"]["duration_ms"] == 21  # the stored one, not the repeat
    count = db.execute("SELECT count(*) AS n FROM check_results WHERE task_id = %s", (task_id,)).fetchone()
    assert count["n"] == 1


def test_check_completes_when_every_task_is_terminal(api, agent, check):
    api.result(agent, _task(check, "http"))
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "in_progress"
    api.result(agent, _task(check, "ping"), success=False)
    done = api.get(f"/api/checks/{check['check_id']}").body
    assert done["status"] == "completed" and done["completed_at"] is not None


def test_a_late_result_is_stored_as_late_and_does_not_reopen_the_check(api, agent, check, db):
    http, ping = _task(check, "http"), _task(check, "ping")
    api.result(agent, ping)
    db.execute("UPDATE check_tasks SET deadline_at = now() - interval '1 second' WHERE id = %s", (http,))
    assert api.get(f"/api/checks/{check['check_id']}").body["status"] == "completed"
    reply = api.result(agent, http, duration_ms=5000)
    assert reply.status == 200 and reply.body["late"] is True and reply.body["status"] == "failed"
    after = api.get(f"/api/checks/{check['check_id']}").body
    assert after["status"] == "completed"
    row = next(r for r in after["results"] if r["task_id"] == http)
    assert row["status"] == "failed" and row["late"] is True and row["error"]["kind"] == "timeout"
    assert db.execute("SELECT late FROM check_results WHERE task_id = %s", (http,)).fetchone()["late"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"duration_ms": 1}, "success"),
        ({"success": "yes"}, "success"),
        ({"success": True, "duration_ms": "fast"}, "duration_ms"),
        ({"success": True, "duration_ms": -1}, "duration_ms"),
        ({"success": True, "data": [1]}, "data"),
        ({"success": False, "error": {"kind": "gremlins", "message": "x"}}, "error.kind"),
        ({"success": False, "error": "refused"}, "error"),
        ({"success": False}, "error"),
        ({"success": True, "address": 7}, "address"),
    ],
)
def test_bad_result_is_400_naming_the_field(api, agent, check, body, field):
    reply = api.post(f"/api/tasks/{_task(check, 'http')}/result", body, headers={"X-Agent-Token": agent["api_token"]})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


def test_every_status_change_and_result_is_published_on_the_check_channel(api, agent, check, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(f"hc:check:{check['check_id']}")
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    http, ping = _task(check, "http"), _task(check, "ping")
    api.start(agent, http)
    api.result(agent, http, duration_ms=7)
    api.result(agent, ping)
    # The API publishes before it answers, so a marker published now reaches the subscriber after
    # every event of the calls above: read up to it (bounded), rather than until the channel goes quiet.
    channel = f"hc:check:{check['check_id']}"
    redis_client.publish(channel, json.dumps({"type": "end-of-test"}))
    events = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message is None or message["type"] != "message":
            continue
        event = json.loads(message["data"])
        if event["type"] == "end-of-test":
            break
        events.append(event)
    else:
        raise AssertionError(f"the marker did not arrive within 10 s; events so far: {events}")
    pubsub.close()
    kinds = [(e["type"], e.get("task", {}).get("status") or e.get("status")) for e in events]
    assert kinds == [
        ("task", "in_progress"),
        ("check", "in_progress"),
        ("task", "completed"),
        ("task", "completed"),
        ("check", "completed"),
    ]
    assert events[2]["task"]["task_id"] == http and events[2]["task"]["duration_ms"] == 7
    assert events[2]["task"]["agent"]["name"] == "fra-1"


def test_get_task_shows_the_task_with_target_and_options(api, agent, check):
    task_id = _task(check, "ping")
    reply = api.get(f"/api/tasks/{task_id}")
    assert reply.status == 200
    assert reply.body["task_id"] == task_id and reply.body["check_id"] == check["check_id"]
    assert reply.body["target"] == "example.com" and reply.body["options"]["count"] == 4
    assert reply.body["status"] == "pending" and reply.body["deadline_at"]
