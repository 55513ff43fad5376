"""SSRF, with private targets not allowed (issue 16, suite 7).

Every way to point a check inside is refused with `blocked_target`, at the API (literals)
and at the agent (after resolution, and at every redirect hop), and canary servers on the
addresses a successful attack would reach record no connection at all:

- the literal corpus (tests/ssrf_corpus.py), every spelling of defect 7 included;
- names served by the tests' own DNS (scripts/localcloud/demosite.DNSServer) that resolve
  to loopback, to ::1, to 169.254.169.254, or through a CNAME to such a name;
- a rebinding name, whose first answer is allowed and whose next one is loopback;
- an answer mixing a public and a private address;
- redirects from an allowed target to loopback, to 169.254.169.254, to [::1] and to a name
  that resolves to loopback.

The agent side runs the agent's own `run_check` in a process started in a region namespace
with `ip netns exec`, as the local stack starts agents, so it resolves through the lab's
DNS. The allowed target is the lab's demo namespace, made "public" by HC_TEST_PUBLIC_RANGES
(chalicelib/targets.py: honoured on the test stage only). The canaries listen in the
region's own namespace, where the checks run: on 127.0.0.1, ::1 and 169.254.169.254 (added
to its loopback device), TCP port 80 and UDP port 53. Control runs prove each piece works:
the allowed target answers, and the same checks with private targets allowed do hit the
canaries.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chalicelib import config, targets
from scripts.localcloud import netlab
from scripts.localcloud.demosite import DNSServer
from tests import ssrf_corpus

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

ROOT = Path(__file__).resolve().parents[2]
ZONE = "ssrf.test"
PUBLIC = f"public.{ZONE}"  # the demo namespace's address: allowed
LOOP = f"loop.{ZONE}"  # A 127.0.0.1
LOOP6 = f"loop6.{ZONE}"  # AAAA ::1
META = f"meta.{ZONE}"  # A 169.254.169.254
ALIAS = f"alias.{ZONE}"  # CNAME loop.ssrf.test
MIXED = f"mixed.{ZONE}"  # A <public>, A 127.0.0.1
REBIND = f"rebind.{ZONE}"  # first A answer <public>, then 127.0.0.1 (TTL 0)
CANARY_ADDRESSES = ("127.0.0.1", "::1", "169.254.169.254")


class RebindingDNSServer(DNSServer):
    """The lab's DNS server, except that REBIND answers its first A query with `first` and
    every later one with `then` (TTL 0), as a rebinding attacker's server does."""

    def __init__(self, host: str, port: int, zone: dict, first: str, then: str):
        self._rebind = (REBIND + ".", first, then)
        self._lock = threading.Lock()
        self.rebind_answers = 0
        super().__init__(host, port, zone)

    def answer(self, wire: bytes) -> bytes:
        import dns.message
        import dns.rdatatype

        question = dns.message.from_wire(wire).question[0]
        name, first, then = self._rebind
        if question.name.to_text().lower() != name or question.rdtype != dns.rdatatype.A:
            return super().answer(wire)
        with self._lock:
            self.rebind_answers += 1
            self.zone[name] = [("A", 0, first if self.rebind_answers == 1 else then)]
            return super().answer(wire)

    def reset(self) -> None:
        with self._lock:
            self.rebind_answers = 0


class Redirector:
    """The allowed target: /ok answers 200; /to/<where> redirects (302) to REDIRECTS[where]."""

    def __init__(self, host: str, port: int, redirects: dict[str, str]):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                where = self.path.removeprefix("/to/")
                location = redirects.get(where)
                body = b"ok\n"
                self.send_response(302 if location else 200)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="ssrf-redirector", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Canary:
    """Counts every TCP connection to address:80 and every UDP datagram to address:53."""

    def __init__(self, address: str):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.address = address
        self.hits: list[str] = []
        self.tcp = socket.create_server((address, 80), family=family, backlog=64)
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.udp.bind((address, 53))
        for sock, serve in ((self.tcp, self._accept), (self.udp, self._receive)):
            threading.Thread(target=serve, args=(sock,), name=f"canary-{address}", daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        with suppress(OSError):
            while True:
                conn, peer = sock.accept()
                self.hits.append(f"tcp {self.address}:80 from {peer[0]}")
                conn.close()

    def _receive(self, sock: socket.socket) -> None:
        with suppress(OSError):
            while True:
                _, peer = sock.recvfrom(4096)
                if peer is None:  # shut down
                    return
                self.hits.append(f"udp {self.address}:53 from {peer[0]}")

    def stop(self) -> None:
        for sock in (self.tcp, self.udp):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class SsrfLab:
    def __init__(self):
        self.lab = netlab.build_regions(netlab.DEFAULT_PREFIX, {"edge": 1}, demo=True)
        self.servers: list = []
        try:
            self.namespace = self.lab.regions["edge"].namespace
            netlab.ip("addr", "add", "169.254.169.254/32", "dev", "lo", ns=self.namespace)
            self.public = self.lab.demo_address
            zone = {
                PUBLIC: [("A", 60, self.public)],
                LOOP: [("A", 60, "127.0.0.1")],
                LOOP6: [("AAAA", 60, "::1")],
                META: [("A", 60, "169.254.169.254")],
                ALIAS: [("CNAME", 60, LOOP + ".")],
                MIXED: [("A", 60, self.public), ("A", 60, "127.0.0.1")],
            }
            self.dns = self.lab.call_in(
                self.lab.demo, RebindingDNSServer, self.public, 53, zone, self.public, "127.0.0.1"
            )
            self.servers.append(self.dns)
            self.redirects = {
                "loopback": "http://127.0.0.1/",
                "metadata": "http://169.254.169.254/latest/meta-data/",
                "ipv6-loopback": "http://[::1]/",
                "decimal-loopback": "http://2130706433/",
                "loop-name": f"http://{LOOP}/",
                "rebind": f"http://{REBIND}/second",
            }
            self.servers.append(self.lab.call_in(self.lab.demo, Redirector, self.public, 80, self.redirects))
            self.canaries = [self.lab.call_in(self.namespace, Canary, a) for a in CANARY_ADDRESSES]
            self.servers.extend(self.canaries)
        except BaseException:
            self.teardown()
            raise

    def hits(self) -> list[str]:
        return [hit for canary in self.canaries for hit in canary.hits]

    def run(self, checks: list[tuple[str, str, dict]], allow_private: bool = False) -> list[dict]:
        """The agent's run_check for each (type, target, options), in the region, as an agent runs it."""
        code = (
            "import json, sys\n"
            "from agent.checks import run_check\n"
            "checks = json.load(sys.stdin)\n"
            "print(json.dumps([run_check(t, target, o, allow_private=p) for t, target, o, p in checks]))\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("HC_")}
        env.update({"HC_STAGE": "test", targets.TEST_PUBLIC_RANGES_ENV: f"{self.public}/32"})
        done = self.lab.run_in(
            self.namespace,
            [sys.executable, "-c", code],
            input=json.dumps([(t, target, o, allow_private) for t, target, o in checks]),
            cwd=ROOT,
            env=env,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def teardown(self) -> None:
        for server in self.servers:
            with suppress(Exception):
                server.stop()
        self.lab.teardown()


@pytest.fixture(scope="module")
def ssrf_lab():
    lab = SsrfLab()
    try:
        yield lab
    finally:
        lab.teardown()


def assert_all_blocked(results: list[dict], checks: list[tuple]) -> None:
    for (check_type, target, _), result in zip(checks, results, strict=True):
        assert result["success"] is False, (check_type, target, result)
        assert result["error"]["kind"] == "blocked_target", (check_type, target, result["error"])


def test_the_controls_the_allowed_target_answers_and_the_canaries_count(ssrf_lab):
    """Without these, every refusal below could be a broken lab rather than the policy."""
    ok, by_name = ssrf_lab.run([("http", f"http://{ssrf_lab.public}/ok", {}), ("http", f"http://{PUBLIC}/ok", {})])
    assert ok["success"] is True and ok["data"]["status_code"] == 200, ok
    assert by_name["success"] is True and by_name["address"] == ssrf_lab.public, by_name
    before = len(ssrf_lab.hits())
    ssrf_lab.dns.reset()
    allowed = ssrf_lab.run(
        [
            ("tcp", "127.0.0.1", {"port": 80}),
            ("tcp", "[::1]", {"port": 80}),
            ("tcp", META, {"port": 80}),
            ("http", f"http://{ssrf_lab.public}/to/metadata", {}),
            ("http", f"http://{REBIND}/to/rebind", {}),
            ("dns", PUBLIC, {"resolver": "127.0.0.1", "timeout": 1}),
        ],
        allow_private=True,
    )
    assert all(r["error"] is None or r["error"]["kind"] != "blocked_target" for r in allowed), allowed
    hits = ssrf_lab.hits()[before:]
    for address in CANARY_ADDRESSES:
        assert any(f" {address}:80 " in hit for hit in hits), (address, hits)
    assert any(hit.startswith("udp 127.0.0.1:53") for hit in hits), hits
    assert ssrf_lab.dns.rebind_answers >= 2  # the rebinding name was asked twice, and answered loopback


def test_the_literal_corpus_is_refused_by_the_agent_and_reaches_no_canary(ssrf_lab):
    before = len(ssrf_lab.hits())
    checks = [
        (t, target, {"port": 80, "timeout": 2} if t == "tcp" else {"timeout": 2})
        for target in ssrf_corpus.TARGETS
        for t in ("tcp", "http")
    ]
    checks += [("dns", PUBLIC, {"resolver": resolver, "timeout": 1}) for resolver in ssrf_corpus.RESOLVERS]
    assert_all_blocked(ssrf_lab.run(checks), checks)
    assert ssrf_lab.hits()[before:] == []


@pytest.mark.parametrize("name", [LOOP, LOOP6, META, ALIAS, MIXED])
def test_a_name_resolving_inside_is_refused_after_resolution(ssrf_lab, name):
    before = len(ssrf_lab.hits())
    checks = [("tcp", name, {"port": 80, "timeout": 2}), ("http", f"http://{name}/", {"timeout": 2})]
    checks += [("ping", name, {"count": 1, "timeout": 2}), ("traceroute", name, {"max_hops": 2, "timeout": 2})]
    results = ssrf_lab.run(checks)
    assert_all_blocked(results, checks)
    if name == MIXED:
        assert "127.0.0.1 is a blocked address" in results[0]["error"]["message"], results[0]
    assert ssrf_lab.hits()[before:] == []


def test_a_rebinding_name_is_refused_when_it_turns_to_loopback(ssrf_lab):
    """First answer: the allowed address (the check connects there); the redirect asks the
    name again and gets 127.0.0.1, which is refused before any connection."""
    before = len(ssrf_lab.hits())
    ssrf_lab.dns.reset()
    checks = [("http", f"http://{REBIND}/to/rebind", {"timeout": 3})]
    (result,) = ssrf_lab.run(checks)
    assert_all_blocked([result], checks)
    assert result["data"]["redirects"][0]["url"] == f"http://{REBIND}/to/rebind"  # the first hop was allowed
    assert "127.0.0.1" in result["error"]["message"], result["error"]
    assert ssrf_lab.dns.rebind_answers >= 2
    ssrf_lab.dns.reset()
    checks = [("tcp", REBIND, {"port": 80, "timeout": 2}), ("tcp", REBIND, {"port": 80, "timeout": 2})]
    first, second = ssrf_lab.run(checks)
    assert first["success"] is True and first["address"] == ssrf_lab.public, first
    assert second["error"]["kind"] == "blocked_target", second
    assert ssrf_lab.hits()[before:] == []


@pytest.mark.parametrize("where", ["loopback", "metadata", "ipv6-loopback", "decimal-loopback", "loop-name"])
def test_a_redirect_from_an_allowed_target_inside_is_refused(ssrf_lab, where):
    before = len(ssrf_lab.hits())
    checks = [("http", f"http://{ssrf_lab.public}/to/{where}", {"timeout": 3})]
    (result,) = ssrf_lab.run(checks)
    assert_all_blocked([result], checks)
    assert result["data"]["redirects"][0]["status_code"] == 302, result["data"]
    assert ssrf_lab.hits()[before:] == []


# ---- the API side: literals are refused before any task exists


@pytest.fixture
def strict_api(api):
    config.reset_settings(allow_private_targets=False)
    yield api
    config.reset_settings()


@pytest.mark.parametrize("target", ssrf_corpus.TARGETS)
def test_the_api_refuses_every_literal_of_the_corpus(strict_api, db, target):
    reply = strict_api.create_check(target, checks=["http", "tcp"])
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "blocked_target" and reply.body["error"]["details"][0]["field"] == "target"
    assert db.execute("SELECT count(*) AS n FROM check_tasks").fetchone()["n"] == 0


@pytest.mark.parametrize("resolver", ssrf_corpus.RESOLVERS)
def test_the_api_refuses_every_resolver_of_the_corpus(strict_api, resolver):
    reply = strict_api.create_check("example.com", checks=["dns"], options={"dns": {"resolver": resolver}})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["code"] == "blocked_target"
    assert reply.body["error"]["details"][0]["field"] == "options.dns.resolver"


def test_the_api_accepts_the_test_stages_public_range_and_nothing_next_to_it(strict_api, monkeypatch):
    monkeypatch.setenv(targets.TEST_PUBLIC_RANGES_ENV, "198.18.100.0/24")
    assert strict_api.create_check("http://198.18.100.7/", checks=["http"]).status == 202
    reply = strict_api.create_check("http://198.18.101.7/", checks=["http"])
    assert reply.status == 400 and reply.body["error"]["code"] == "blocked_target"
