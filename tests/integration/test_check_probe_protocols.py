"""ping, traceroute and mtr over ICMP, TCP and UDP, through a chain of network namespaces.

The target namespace ignores ICMP echo (net.ipv4.icmp_echo_ignore_all), as a
filtering network does, and serves a TCP listener and a UDP echo server that
this test opens inside it; port CLOSED_PORT has nothing. Every packet stays in
namespaces this test builds, in 198.18.0.0/15 (scripts/localcloud/netlab).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from agent.checks import capabilities, run_check
from scripts.localcloud import netlab

pytestmark = pytest.mark.skipif(
    netlab.unavailable_reason() is not None, reason=f"needs network namespaces: {netlab.unavailable_reason()}"
)

ROOT = Path(__file__).resolve().parents[2]
HOPS = 3
ADDED_RTT_MS = 20.0
RTT_TOLERANCE_MS = 5.0
TCP_PORT = 8080
UDP_PORT = 7  # echo
CLOSED_PORT = 9


class Services:
    """A listening TCP socket (the kernel answers SYNs without accept) and a UDP echo loop,
    both opened inside the target namespace."""

    def __init__(self, lab):
        self.tcp = lab.call_in(lab.target, self._listen)
        self.udp = lab.call_in(lab.target, self._udp)
        self.echoed = 0
        self._thread = threading.Thread(target=self._echo, name="udp-echo", daemon=True)
        self._thread.start()

    @staticmethod
    def _listen() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("0.0.0.0", TCP_PORT))
        sock.listen(64)
        return sock

    @staticmethod
    def _udp() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", UDP_PORT))
        return sock

    def _echo(self) -> None:
        while True:
            try:
                data, peer = self.udp.recvfrom(2048)
                self.udp.sendto(data, peer)
                self.echoed += 1
            except OSError:
                return

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def lab():
    chain = netlab.build_chain(netlab.DEFAULT_PREFIX, HOPS, delay_ms=ADDED_RTT_MS)
    services = None
    try:
        done = chain.run_in(chain.target, ["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"])
        assert done.returncode == 0, done.stderr
        services = Services(chain)
        yield chain
    finally:
        if services:
            services.close()
        chain.teardown()


@pytest.fixture(scope="module")
def chain_with_silent_router():
    chain = netlab.build_chain(netlab.DEFAULT_PREFIX, HOPS)
    try:
        done = chain.run_in(
            chain.nodes[0], ["sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=0", "net.ipv4.icmp_msgs_burst=0"]
        )
        assert done.returncode == 0, done.stderr
        yield chain
    finally:
        chain.teardown()


def in_client(lab, check_type, target, **options):
    return lab.call_in(lab.client, run_check, check_type, target, options, allow_private=True)


def assert_link_rtt(rtt_ms: dict) -> None:
    # a link never speeds up; the fastest probe shows the added delay
    assert abs(rtt_ms["min"] - ADDED_RTT_MS) <= RTT_TOLERANCE_MS, rtt_ms
    assert rtt_ms["min"] <= rtt_ms["avg"] <= rtt_ms["max"]


# ---- ping -------------------------------------------------------------------------------


def test_icmp_ping_to_the_echo_filtering_target_times_out(lab):
    result = in_client(lab, "ping", lab.target_address, count=2, interval=0.2, timeout=1)
    assert result["success"] is False and result["error"]["kind"] == "timeout"
    assert result["data"]["protocol"] == "icmp" and result["data"]["packets_received"] == 0


def test_tcp_ping_passes_the_icmp_filter_timing_the_syn_ack(lab):
    result = in_client(lab, "ping", lab.target_address, protocol="tcp", port=TCP_PORT, count=4, interval=0.2)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["protocol"] == "tcp" and data["port"] == TCP_PORT and data["mode"] == "socket"
    assert data["packets_sent"] == data["packets_received"] == 4 and data["loss_pct"] == 0
    assert data["replies"] == {"syn_ack": 4} and data["port_state"] == "open"
    assert len(data["rtts_ms"]) == 4
    assert_link_rtt(data["rtt_ms"])


def test_tcp_ping_of_a_closed_port_counts_the_rst_as_the_answer(lab):
    result = in_client(lab, "ping", lab.target_address, protocol="tcp", port=CLOSED_PORT, count=3, interval=0.2)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["replies"] == {"rst": 3} and data["port_state"] == "closed"
    assert_link_rtt(data["rtt_ms"])


def test_tcp_ping_without_an_answer_is_a_timeout(lab):
    nobody = "198.18.2.99"  # on the target's link, but no namespace has it
    result = in_client(lab, "ping", nobody, protocol="tcp", port=TCP_PORT, count=2, interval=0.2, timeout=1)
    assert result["success"] is False and result["error"]["kind"] == "timeout"
    assert result["data"]["packets_received"] == 0 and result["data"]["loss_pct"] == 100
    assert f"tcp port {TCP_PORT}" in result["error"]["message"]


def test_udp_ping_times_the_echo_servers_reply(lab):
    result = in_client(lab, "ping", lab.target_address, protocol="udp", port=UDP_PORT, count=3, interval=0.2)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["replies"] == {"udp_reply": 3} and data["port_state"] == "open"
    assert_link_rtt(data["rtt_ms"])


def test_udp_ping_of_a_closed_port_is_answered_by_port_unreachable(lab):
    result = in_client(lab, "ping", lab.target_address, protocol="udp", port=CLOSED_PORT, count=2, interval=0.2)
    assert result["success"] is True, result["error"]
    assert result["data"]["replies"] == {"port_unreachable": 2} and result["data"]["port_state"] == "closed"


# ---- traceroute -------------------------------------------------------------------------


def test_icmp_traceroute_stops_short_of_the_echo_filtering_target(lab):
    result = in_client(lab, "traceroute", lab.target_address, max_hops=HOPS + 1, timeout=10)
    assert result["success"] is False and result["data"]["reached"] is False
    hops = result["data"]["hops"]
    assert [h["address"] for h in hops[: HOPS - 1]] == lab.hop_addresses[:-1]
    assert all(h["address"] is None for h in hops[HOPS - 1 :])


@pytest.mark.parametrize(
    ("proto", "port", "assumed"),
    [("tcp", TCP_PORT, {}), ("udp", UDP_PORT, {}), ("udp", None, {"port": 33434})],
    ids=["tcp-open", "udp-echo", "udp-default-port"],
)
def test_tcp_and_udp_traceroute_report_exactly_the_hops_built(lab, proto, port, assumed):
    options = {"protocol": proto, "timeout": 10, **({"port": port} if port else {})}
    result = in_client(lab, "traceroute", lab.target_address, **options)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["reached"] is True and data["protocol"] == proto and data["port"] == (port or 33434)
    assert data["assumed"] == assumed
    assert [h["ttl"] for h in data["hops"]] == list(range(1, HOPS + 1))
    assert [h["address"] for h in data["hops"]] == lab.hop_addresses
    for hop in data["hops"]:
        assert hop["loss_pct"] == 0 and len(hop["rtts_ms"]) == 3
        assert abs(min(hop["rtts_ms"]) - ADDED_RTT_MS) <= RTT_TOLERANCE_MS


# ---- mtr --------------------------------------------------------------------------------


def test_mtr_reports_every_hop_over_every_round(lab):
    rounds = 4
    result = in_client(lab, "mtr", lab.target_address, protocol="tcp", port=TCP_PORT, count=rounds, interval=0.2)
    assert result["success"] is True, result["error"]
    data = result["data"]
    assert data["reached"] is True and data["count"] == data["rounds_done"] == rounds
    assert [h["address"] for h in data["hops"]] == lab.hop_addresses
    for hop in data["hops"]:
        assert hop["sent"] == hop["received"] == rounds and hop["loss_pct"] == 0
        assert len(hop["rtts_ms"]) == rounds and None not in hop["rtts_ms"]
        assert_link_rtt(hop["rtt_ms"])
        assert hop["rtt_ms"]["last"] == hop["rtts_ms"][-1]
        diffs = [abs(b - a) for a, b in zip(hop["rtts_ms"], hop["rtts_ms"][1:], strict=False)]
        assert hop["jitter_ms"]["max"] == round(max(diffs), 3)
        assert hop["jitter_ms"]["min"] <= hop["jitter_ms"]["avg"] <= hop["jitter_ms"]["max"]
    assert data["rtt_ms"] == data["hops"][-1]["rtt_ms"] and data["loss_pct"] == 0


def test_mtr_over_icmp_stops_at_the_filter_and_fails(lab):
    result = in_client(lab, "mtr", lab.target_address, count=2, interval=0.2, max_hops=HOPS + 1, timeout=10)
    assert result["success"] is False and result["error"]["kind"] == "unreachable"
    data = result["data"]
    assert data["reached"] is False and data["rtt_ms"]["avg"] is None
    assert [h["address"] for h in data["hops"][: HOPS - 1]] == lab.hop_addresses[:-1]
    assert data["hops"][HOPS - 1]["received"] == 0  # the target's own hop: silent


def test_mtr_counts_a_silent_router_as_full_loss(chain_with_silent_router):
    chain = chain_with_silent_router
    result = in_client(chain, "mtr", chain.target_address, count=3, interval=0.2)
    assert result["success"] is True, result["error"]
    hops = result["data"]["hops"]
    assert len(hops) == HOPS
    assert hops[0]["address"] is None and hops[0]["sent"] == 3 and hops[0]["received"] == 0
    assert hops[0]["loss_pct"] == 100.0 and hops[0]["rtts_ms"] == [None, None, None]
    assert [h["address"] for h in hops[1:]] == chain.hop_addresses[1:]
    assert all(h["loss_pct"] == 0 for h in hops[1:])


def test_mtr_needs_raw_sockets_like_traceroute():
    caps = capabilities(refresh=True)
    assert "mtr" in caps and "traceroute" in caps


# ---- privileges -------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("capsh") is None, reason="needs capsh to drop CAP_NET_RAW")
def test_without_cap_net_raw_tcp_ping_works_and_traceroute_says_what_it_needs():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from agent.checks import capabilities, run_check\n"
        f"opts = {{'protocol': 'tcp', 'port': {port}}}\n"
        "print(json.dumps([capabilities(),\n"
        "    run_check('ping', '127.0.0.1', dict(opts, count=2, interval=0.2), allow_private=True),\n"
        "    run_check('traceroute', '127.0.0.1', dict(opts, max_hops=2), allow_private=True),\n"
        "    run_check('mtr', '127.0.0.1', dict(opts, count=1), allow_private=True)]))\n"
    )
    try:
        done = subprocess.run(
            ["capsh", "--drop=cap_net_raw", "--", "-c", f'{sys.executable} -c "$0"', code],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    caps, ping, trace, mtr = json.loads(done.stdout)
    assert "mtr" not in caps and "traceroute" not in caps
    assert ping["success"] is True, ping["error"]
    assert ping["data"]["replies"] == {"syn_ack": 2}
    for result in (trace, mtr):
        assert result["success"] is False and result["error"]["kind"] == "internal"
        assert (
            "CAP_NET_RAW" in result["error"]["message"] and "TCP ping needs no privilege" in result["error"]["message"]
        )


SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # readable by nobody, unlike a python under /root; same ABI as the venv's


@pytest.mark.skipif(
    shutil.which("capsh") is None or not SYSTEM_PYTHON.exists() or sys.version_info[:2] != (3, 11),
    reason="needs capsh and a system Python 3.11 to run as nobody",
)
def _code_nobody_can_read(tmp_path: Path, modes: list) -> list[str]:
    """The agent's checks and the packages they import, copied where `nobody` can read them.

    The checkout may sit in a private folder (a `mktemp -d` clone is 0700), which nobody cannot
    enter; so the test runs a copy of exactly what running these modes loads (run once as root)."""
    listing = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, json.dumps(modes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    base = tmp_path  # a folder of its own under /tmp, since pytest's tmp folders are 0700 too
    for top in json.loads(listing.stdout):
        source = Path(top)
        target = base / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for path in base.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    base.chmod(0o755)
    return [str(base)]


# The top-level packages and modules (outside the standard library) that running the modes loads.
_LIST_MODULES = """
import json, sys, sysconfig
from pathlib import Path
from agent.checks import capabilities, run_check
capabilities()
for t, o in json.loads(sys.argv[1]):
    run_check(t, "127.0.0.1", o, allow_private=True)
stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
tops = set()
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if not path:
        continue
    path = Path(path).resolve()
    if stdlib in path.parents and "site-packages" not in path.parts:
        continue
    root = path
    for _ in range(name.count(".") + (1 if path.name == "__init__.py" else 0)):
        root = root.parent
    tops.add(str(root))
print(json.dumps(sorted(tops)))
"""


@pytest.fixture
def public_tmp():
    folder = Path(tempfile.mkdtemp(prefix="hc-nobody-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_as_nobody_with_only_cap_net_raw_every_mode_runs(public_tmp):
    tmp_path = public_tmp
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    few = {"count": 2, "interval": 0.2}
    modes = [
        ("ping", few),
        ("ping", dict(few, protocol="tcp", port=port)),
        ("ping", dict(few, protocol="udp", port=9)),
        ("traceroute", {}),
        ("traceroute", {"protocol": "tcp", "port": port}),
        ("traceroute", {"protocol": "udp"}),
        ("mtr", few),
        ("mtr", dict(few, protocol="tcp", port=port)),
    ]
    # Loading the modules as root must not fill the listener's backlog (it never accepts): TCP modes go to port 9.
    readable = _code_nobody_can_read(tmp_path, [(t, dict(o, port=9) if "port" in o else o) for t, o in modes])
    code = (
        "import json, os, sys\n"
        f"sys.path[:0] = {readable!r}\n"
        "from agent.checks import capabilities, run_check\n"
        "runs = {}\n"
        "for t, o in json.loads(sys.argv[1]):\n"
        "    r = run_check(t, '127.0.0.1', o, allow_private=True)\n"
        "    runs[t + '/' + o.get('protocol', 'icmp')] = [r['success'], r['error']]\n"
        "print(json.dumps({'uid': os.getuid(), 'caps': capabilities(), 'runs': runs}))\n"
    )
    try:
        done = subprocess.run(
            [
                "capsh",
                "--caps=cap_net_raw+eip cap_setuid,cap_setgid,cap_setpcap+ep",
                "--keep=1",
                "--user=nobody",
                "--addamb=cap_net_raw",
                "--",
                "-c",
                f'{SYSTEM_PYTHON} -c "$0" "$1"',
                code,
                json.dumps(modes),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["uid"] != 0
    assert {"ping", "traceroute", "mtr"} <= set(out["caps"])
    assert out["runs"] == {
        key: [True, None]
        for key in ("ping/icmp", "ping/tcp", "ping/udp", "traceroute/icmp", "traceroute/tcp", "traceroute/udp")
        + ("mtr/icmp", "mtr/tcp")
    }
