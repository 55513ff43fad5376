"""Scenario 6: the read path at 1,000,000 result rows. A bench-only database in the stack's
PostgreSQL cluster (`hostchecker_bench`, never the tests' or the stack's own) is filled once, by one
`INSERT ... SELECT generate_series` per table, and kept for the next run; it is filled again only
when the migrations changed. A second API process serves it (bench/api_process.py), and each read is
timed on fresh connections and on one keep-alive connection, interleaved: GET a check, the first
and the 50th page of the check list, and an agent's stats."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import requests

from bench import api_process, profile
from bench.harness import Bench, say
from bench.results import scenario_result
from bench.stats import summary

NUMBER = 6
TITLE = "Read path at 1,000,000 results: GET check, list page 1 and 50, agent stats"
TARGET = "p95 ≤ 5 ms for each, stats included"
DB_NAME = "hostchecker_bench"
CHECKS = 200_000
TYPES = ["http", "ping", "dns", "tcp", "traceroute"]  # one task and one result per type: 1,000,000 of each
AGENTS = 10
REQUESTS = 40  # per endpoint and connection mode
PROFILED_REQUESTS = 15  # a separate pass under py-spy, not timed
BUDGET_S = 20  # per endpoint: a slow one stops after this much time spent on it (with MIN_REQUESTS at least)
MIN_REQUESTS = 3

FILL = [  # (table, statement): a table already filled is skipped, so a fill cut short resumes
    (
        "agents",
        f"""INSERT INTO agents (id, name, location, region, api_token_hash, version, status, last_heartbeat)
        SELECT md5('bench-agent-' || g)::uuid, 'bench-agent-' || g, 'Bench ' || g, 'bench-1',
               md5('bench-token-' || g), 'bench', 'offline', now()
          FROM generate_series(0, {AGENTS - 1}) g""",
    ),
    # one check every 300 ms over the last 16.7 hours: all of them inside the stats' 24 h window
    (
        "checks",
        f"""INSERT INTO checks (id, target, check_types, status, client_ip, created_at, started_at, completed_at)
        SELECT md5('bench-check-' || g)::uuid, 'bench-' || (g % 1000) || '.example', ARRAY{TYPES!r}::text[],
               'completed', '198.18.0.1', ts, ts + interval '5 ms', ts + interval '40 ms'
          FROM generate_series(1, {CHECKS}) g, LATERAL (SELECT now() - g * interval '300 ms' AS ts) t""",
    ),
    (
        "check_tasks",
        f"""INSERT INTO check_tasks (id, check_id, agent_id, check_type, status, attempts, created_at, deadline_at,
                                enqueued_at, started_at, completed_at)
        SELECT md5('bench-task-' || g || '-' || k)::uuid, md5('bench-check-' || g)::uuid,
               md5('bench-agent-' || ((g + k) % {AGENTS}))::uuid, (ARRAY{TYPES!r})[k + 1], 'completed', 1,
               ts, ts + interval '60 s', ts, ts + interval '5 ms', ts + interval '30 ms'
          FROM generate_series(1, {CHECKS}) g, generate_series(0, {len(TYPES) - 1}) k,
               LATERAL (SELECT now() - g * interval '300 ms' AS ts) t""",
    ),
    (
        "check_results",
        """INSERT INTO check_results (task_id, check_id, agent_id, check_type, success, duration_ms, address, data,
                                  created_at)
        SELECT id, check_id, agent_id, check_type, random() > 0.05, 5 + random() * 100, '198.18.0.9',
               jsonb_build_object('address', '198.18.0.9', 'connect_ms', round((random() * 100)::numeric, 2)),
               completed_at
          FROM check_tasks""",
    ),
]


def bench_url(stack_url: str) -> str:
    return stack_url.rsplit("/", 1)[0] + f"/{DB_NAME}"


def ensure_database(bench: Bench) -> tuple[str, bool]:
    """The filled bench database's URL, and whether it was filled now."""
    import psycopg

    from chalicelib.db import migrate

    url = bench_url(bench.env["DATABASE_URL"])
    with psycopg.connect(bench.env["DATABASE_URL"], autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists:
            with psycopg.connect(url) as db:
                marker = _marker(db)
            if marker is not None and marker != _migrations():  # None: a fill cut short, resumed below
                say("    the bench database's migrations changed: filling it again")
                admin.execute(f"DROP DATABASE {DB_NAME}")
                exists = None
        if not exists:
            admin.execute(f"CREATE DATABASE {DB_NAME}")
    with psycopg.connect(url) as db:
        if _marker(db) is not None:
            return url, False
    migrate(url, log=lambda *_: None)
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as db:
        # The rows reference each other correctly by construction: skip the per-row foreign-key checks
        # (three index probes for every result), which are most of a fill's time otherwise.
        db.execute("SET session_replication_role = replica")
        for table, statement in FILL:
            if not db.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
                db.execute(statement)
        db.execute("ANALYZE")
        db.execute("CREATE TABLE bench_fill (migrations text NOT NULL, filled_at timestamptz NOT NULL DEFAULT now())")
        db.execute("INSERT INTO bench_fill (migrations) VALUES (%s)", (_migrations(),))
    say(f"    filled {DB_NAME} with {CHECKS * len(TYPES):,} results in {time.monotonic() - began:.0f} s")
    return url, True


def _migrations() -> str:
    from pathlib import Path

    import chalicelib

    folder = Path(chalicelib.__file__).parent / "migrations"
    return ",".join(sorted(p.name for p in folder.glob("*.sql")))


def _marker(db) -> str | None:
    try:
        row = db.execute("SELECT migrations FROM bench_fill").fetchone()
    except Exception:  # noqa: BLE001 - no marker table yet
        db.rollback()
        return None
    return row[0] if row else None


def stats_sql_ms(url: str, agent_id: str) -> float | None:
    """The agent-stats statements timed straight against PostgreSQL (median of 3): how much of the
    endpoint's time is the database's. None when fleet has no such statements any more."""
    import statistics

    import psycopg
    from psycopg.rows import dict_row

    from chalicelib import fleet
    from chalicelib.metrics import AGENT_FAILURE_KINDS

    statements = [getattr(fleet, name) for name in ("_STATS", "_FAILURE_KINDS") if hasattr(fleet, name)]
    if not statements:
        return None
    args = {"agent": agent_id, "hours": 24, "agent_kinds": list(AGENT_FAILURE_KINDS)}
    times = []
    with psycopg.connect(url, row_factory=dict_row) as db:
        for _ in range(3):
            began = time.perf_counter()
            for statement in statements:
                db.execute(statement, args).fetchall()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


# Not an endpoint: a path no route serves, so Chalice's LocalGateway answers it (403) before the
# app runs. Timed like the endpoints, it is the floor under them on this machine: the client
# (http.client), loopback, gunicorn and the LocalGateway, and none of our code.
FLOOR = "floor"
FLOOR_PATH = "/bench-unrouted"


class Client:
    """A lean HTTP/1.1 client (http.client) so the figures are the API's, not a heavy client's:
    `requests` alone spent about 2 ms of CPU per request on these machines. `fresh` opens a new
    connection per request; otherwise one connection is kept alive."""

    def __init__(self, base: str, fresh: bool):
        parts = urlsplit(base)
        self.host, self.port, self.fresh = parts.hostname, parts.port, fresh
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            self.conn.request("GET", path)
            reply = self.conn.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if self.fresh or reply.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return reply.status, body


def timed(client: Client, path: str) -> float:
    began = time.perf_counter()
    status, body = client.get(path)
    elapsed = (time.perf_counter() - began) * 1000
    if path == FLOOR_PATH:
        if status not in (403, 404):
            raise RuntimeError(f"GET {path} (unrouted) answered {status}: {body[:200]!r}")
    elif status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
    return elapsed


def measure(base: str, endpoints: dict[str, str], requests_each: int = 0) -> dict[tuple[str, str], list[float]]:
    """ms per request by (endpoint, connection mode), interleaved; a slow endpoint stops at its budget."""
    clients = {"fresh": Client(base, fresh=True), "keepalive": Client(base, fresh=False)}
    samples = {(name, mode): [] for name in endpoints for mode in clients}
    for path in endpoints.values():  # warm-up
        for client in clients.values():
            timed(client, path)
    spent = dict.fromkeys(endpoints, 0.0)
    for i in range(requests_each or REQUESTS):
        for name, path in endpoints.items():
            if spent[name] > BUDGET_S * 1000 and i >= MIN_REQUESTS:
                continue
            for mode in ("fresh", "keepalive") if i % 2 == 0 else ("keepalive", "fresh"):
                samples[(name, mode)].append(timed(clients[mode], path))
                spent[name] += samples[(name, mode)][-1]
    return samples


def run(bench: Bench) -> dict:
    url, filled = ensure_database(bench)
    api = api_process.start(bench, url)
    try:
        base = api.url
        newest = requests.get(f"{base}/api/checks?limit=1", timeout=10).json()["items"][0]["check_id"]
        cursor_url = f"{base}/api/checks"
        for _ in range(49):  # walk to page 50 once; its URL is then timed like the others
            page = requests.get(cursor_url, timeout=30).json()
            cursor_url = f"{base}/api/checks?cursor={page['next_cursor']}"
        agent_id = "".join(__import__("hashlib").md5(b"bench-agent-0").hexdigest())
        agent_id = f"{agent_id[:8]}-{agent_id[8:12]}-{agent_id[12:16]}-{agent_id[16:20]}-{agent_id[20:]}"
        endpoints = {
            "check": f"/api/checks/{newest}",
            "list_page_1": "/api/checks",
            "list_page_50": cursor_url.removeprefix(base),
            "agent_stats": f"/api/agents/{agent_id}/stats",
            FLOOR: FLOOR_PATH,
        }
        samples = measure(base, endpoints)
        with profile.Recorder(api.pid, "s6-api") as recorder:  # a separate pass, not timed
            measure(base, endpoints, requests_each=PROFILED_REQUESTS)
    finally:
        api.stop()
    try:
        sql_ms = stats_sql_ms(url, agent_id)
    except Exception:  # noqa: BLE001 - fleet's internals changed: the endpoint's figure still stands
        sql_ms = None
    stats = {key: summary(values, 1) for key, values in samples.items()}
    metrics, parts, worst = {}, [], 0.0
    for mode in ("fresh", "keepalive"):
        metrics[f"floor_{mode}_p95_ms"] = stats[(FLOOR, mode)]["p95"]
        metrics[f"floor_{mode}_p50_ms"] = stats[(FLOOR, mode)]["p50"]
    for name in endpoints:
        if name == FLOOR:
            continue
        best_mode = min(("fresh", "keepalive"), key=lambda m: stats[(name, m)]["p95"])
        for mode in ("fresh", "keepalive"):
            metrics[f"{name}_{mode}_p95_ms"] = stats[(name, mode)]["p95"]
            metrics[f"{name}_{mode}_p50_ms"] = stats[(name, mode)]["p50"]
        best = stats[(name, best_mode)]["p95"]
        worst = max(worst, best)
        parts.append(f"{name.replace('_', ' ')} {best} ms ({best_mode})")
    met = worst <= 5
    figure = "p95: " + ", ".join(parts)
    notes = (
        "each endpoint's better connection mode shown; "
        + ", ".join(
            f"{name} fresh/keep-alive p95 {stats[(name, 'fresh')]['p95']}/{stats[(name, 'keepalive')]['p95']} ms"
            for name in endpoints
            if name != FLOOR
        )
        + f"; n={min(len(v) for v in samples.values())} or more each"
        + ("; database filled in this run" if filled else "; database reused")
    )
    if sql_ms is not None:
        metrics["agent_stats_sql_ms"] = round(sql_ms, 1)
        notes += f"; the stats SQL alone (chalicelib.fleet, run directly): {sql_ms:.0f} ms"
    floor = stats[(FLOOR, "keepalive")]
    notes += (
        f"; the floor, a request no route serves (answered by Chalice's LocalGateway before the app, "
        f"same http.client client): p50 {floor['p50']} / p95 {floor['p95']} ms keep-alive, "
        f"p95 {stats[(FLOOR, 'fresh')]['p95']} ms fresh"
    )
    if not met:
        notes += "; " + profile.note("API", recorder.result)
    return scenario_result(NUMBER, TITLE, figure, TARGET, met, notes, metrics)
