"""Scraping /metrics in tests: parse with prometheus_client.parser into {(name, labels): value}."""

from __future__ import annotations

import os
import subprocess

import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts.localcloud.procs import ServiceError, listens, wait_for
from scripts.localcloud.procs import stop as stop_pids
from tests.conftest import ADMIN_TOKEN, ROOT, TEST_ENV, free_port


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def scrape(url: str, token: str | None = ADMIN_TOKEN) -> dict[tuple[str, frozenset], float]:
    reply = requests.get(f"{url}/metrics", headers={"X-Admin-Token": token} if token else {}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")
    return parse(reply.text)


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet (a counter not yet counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


class ChaliceLocal:
    """One more `chalice local --stage test` over the same PostgreSQL and Redis, as the
    api_server fixture starts (a second Lambda instance, as far as the metrics can tell)."""

    def __init__(self, pg_url: str, redis_url: str, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=pg_url, REDIS_URL=redis_url, **TEST_ENV)
        chalice = ROOT / ".venv" / "bin" / "chalice"
        argv = [
            str(chalice) if chalice.exists() else "chalice",
            "local",
            "--stage",
            "test",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-autoreload",
        ]
        self.log_path = log_path
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: self.proc.poll() is not None or listens(self.proc.pid, self.port),
                30,
                "a second chalice local",
            )
        except ServiceError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"second chalice local exited: {log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pids(self.proc.pid)
        self.proc.wait()
