"""wrk (the HTTP load generator) with a Lua script that prints its summary as one JSON line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.harness import STATE

WRK = "/usr/bin/wrk"

# request(): a synthetic client address per request (bench.harness.synthetic_client explains why).
SCRIPT = r"""
local method, body = os.getenv("BENCH_METHOD") or "GET", os.getenv("BENCH_BODY")
wrk.method = method
if body then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
request = function()
  wrk.headers["X-Forwarded-For"] = "198.18." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d," ..
    "\"timeout\":%d,\"p50_us\":%d,\"p95_us\":%d,\"p99_us\":%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def script_path() -> Path:
    path = STATE / "wrk.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT)
    return path


def command(url: str, seconds: float, connections: int, threads: int = 2, timeout_s: int = 10) -> list[str]:
    threads = max(1, min(threads, connections))
    return [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script_path()),
        url,
    ]


def parse(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith("BENCH "):
            doc = json.loads(line.removeprefix("BENCH "))
            doc["per_s"] = doc["requests"] / (doc["duration_us"] / 1e6) if doc["duration_us"] else 0.0
            doc["errors"] = doc["connect"] + doc["read"] + doc["write"] + doc["timeout"]
            return doc
    raise RuntimeError(f"wrk printed no summary: {output.strip()[-300:]}")


def env(method: str = "GET", body: str | None = None) -> dict[str, str]:
    import os

    values = dict(os.environ, BENCH_METHOD=method)
    if body is not None:
        values["BENCH_BODY"] = body
    return values


def run(url: str, seconds: float, connections: int, method: str = "GET", body: str | None = None, threads: int = 2):
    proc = subprocess.run(
        command(url, seconds, connections, threads),
        env=env(method, body),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    return parse(proc.stdout + proc.stderr)


def start(url: str, seconds: float, connections: int, method: str = "GET", body: str | None = None, threads: int = 2):
    return subprocess.Popen(
        command(url, seconds, connections, threads),
        env=env(method, body),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    return parse(out)
