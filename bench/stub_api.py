"""A stand-in for the API's agent endpoints, so that scenario 3 measures the agent's engine and not
the API: register, heartbeat, start and result answer at once, and results are only counted.

The agent is the real `python -m agent` process, reading its real Redis stream; only its HTTP peer is
this stub. It follows the agent's side of the protocol (DESIGN §5; agent/api.py). A result posted in a
batch (POST /api/tasks/results) counts each entry and answers each 200, in the API's shape.

    python -m bench.stub_api --ready-file F     # writes {"port": P}; GET /_bench/counts reads the counts
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.minihttp import json_body, serve

HOST = "127.0.0.1"
COUNTS = {"results": 0, "starts": 0, "requests": 0, "heartbeats": 0, "registrations": 0, "other": 0}
STATE = {"agent_id": "", "first_result_s": 0.0, "last_result_s": 0.0}
OK = json_body({})


def _batch_answer(body: bytes) -> dict:
    """Every entry accepted, as the API answers POST /api/tasks/results."""
    try:
        doc = json.loads(body or b"null")
    except ValueError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    results = [r for r in doc.get("results") or [] if isinstance(r, dict)]
    started = [t for t in doc.get("started") or [] if isinstance(t, str)]
    COUNTS["requests"] += 1
    COUNTS["results"] += len(results)
    COUNTS["starts"] += len(started)
    if results:
        now = time.monotonic()
        STATE["first_result_s"] = STATE["first_result_s"] or now
        STATE["last_result_s"] = now
    stored = {"stored": True, "duplicate": False}
    return {
        "results": [{"task_id": r.get("task_id"), "status": 200, "body": stored} for r in results],
        "started": [{"task_id": t, "status": 200, "body": {}} for t in started],
    }


def handler(method: str, path: str, body: bytes):
    path = path.split("?")[0]
    if method == "GET" and path == "/_bench/counts":
        return 200, json_body({**COUNTS, **STATE})
    if method != "POST":
        return 404, json_body({"error": {"code": "not_found", "message": path}})
    if path.endswith("/result"):
        COUNTS["results"] += 1
        now = time.monotonic()
        STATE["first_result_s"] = STATE["first_result_s"] or now
        STATE["last_result_s"] = now
        return 200, json_body({"stored": True, "duplicate": False})
    if path.endswith("/start"):
        COUNTS["starts"] += 1
        return 200, OK
    if path == "/api/agents/heartbeat":
        COUNTS["heartbeats"] += 1
        now = datetime.now(UTC).isoformat()
        return 200, json_body({"agent_id": STATE["agent_id"], "status": "online", "server_time": now})
    if path == "/api/agents/register":
        COUNTS["registrations"] += 1
        STATE["agent_id"] = STATE["agent_id"] or str(uuid.uuid4())
        return 201, json_body({"agent_id": STATE["agent_id"], "api_token": "bench-stub-token"})
    if path == "/api/tasks/results":  # the batch endpoint, answered in its own shape (docs/api.md, "Batches")
        return 200, json_body(_batch_answer(body))
    COUNTS["other"] += 1
    return 200, OK


async def main_async(ready_file: Path) -> None:
    server = await serve(handler, HOST, 0)
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": server.sockets[0].getsockname()[1]}))
    tmp.replace(ready_file)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the agent endpoints' stand-in for scenario 3")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
