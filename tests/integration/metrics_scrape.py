"""Scraping /metrics in tests: parse with prometheus_client.parser into {(name, labels): value}."""

from __future__ import annotations

import os

import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts.localcloud.procs import stop as stop_pids
from tests.conftest import ADMIN_TOKEN, TEST_ENV, free_port, start_api


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


class SecondApi:
    """One more API process over the same PostgreSQL and Redis, as the api_server fixture starts
    (more Lambda instances, as far as the metrics can tell)."""

    def __init__(self, pg_url: str, redis_url: str, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=pg_url, REDIS_URL=redis_url, **TEST_ENV)
        self.log_path = log_path
        self.proc = start_api(self.port, env, log_path, "a second API process")
        if self.proc.poll() is not None:
            raise AssertionError(f"second API process exited: {log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pids(self.proc.pid)
        self.proc.wait()
