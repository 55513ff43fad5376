"""Test networks out of network namespaces, in 198.18.0.0/15 (RFC 2544 benchmarking).

Needs root, `ip` (iproute2) and /dev/net/tun. Links are veth pairs, or
user-space delay links (delaylink.py: two TUN devices and one process)
because this kernel has no netem.

Every name a Lab creates starts with its own unique name (`<prefix>-<6 hex>`,
the prefix `hc<checkout id>` by default; interfaces `h<6 hex>...`), so parallel
runs and checkouts never collide. `Lab.teardown()` removes every namespace,
root-side device and process the lab started; it is idempotent. What a killed
lab left behind is removed from its own description (`remove_recorded`), never
by a name pattern. While a lab exists, it holds the containment route
(containment.py), so no lab address is ever routed off the machine.

Topologies:

- `build_chain(prefix, hops, delay_ms=0)`: client -> r1 -> ... -> target,
  `hops` namespaces after the client, so a traceroute from the client shows
  exactly `hops` hops. With `delay_ms`, the client's link is a delay link.
  Nothing touches the root namespace. Link i joins node i and node i+1 as
  198.18.i.1 and 198.18.i.2.
- `build_regions(prefix, {"frankfurt": 10, ...}, demo=True)`: one namespace
  per region behind a delay link to a hub, the hub joined to the root
  namespace by a veth, and a "demo internet" namespace on the hub. Regions
  reach services bound to `lab.host_address` in the root namespace (the
  API, Redis) and the demo namespace at `lab.demo_address`; both paths cross
  the region's delay link. The root namespace gets one address and one route
  for the lab's /24 (taken from 198.19.0.0/16, first free), and forwards
  nothing. With the demo namespace, each region's system resolver is
  `lab.demo_address` port 53 (see `Lab.set_resolver`), where the local stack
  runs the demo site's DNS server: the host's resolv.conf names a server the
  namespaces cannot reach, and every name lookup there would hang for the
  resolver's full timeout (10 s here) before failing.
- `Lab.add_linked_namespace(name, delay_ms, peer_ns=None)`: one namespace
  behind a delay link to the root namespace (or to `peer_ns`), for building
  other shapes.

Running things inside: `lab.run_in(ns, argv)`, `lab.popen_in(ns, argv)`
(`ip netns exec`, stopped at teardown) and `lab.call_in(ns, fn, *args)`, which
runs a Python callable on a thread switched into the namespace with setns(2).
Sockets it creates stay in that namespace and can be used from any thread
afterwards. Threads that `fn` starts inherit the namespace; thread pools
created before do not. Only `ip netns exec` also gives the process the
namespace's /etc/netns/<ns>/resolv.conf (a mount namespace); `call_in` keeps
the host's, so name lookups from `call_in` use the host's resolver.

CLI: `python -m scripts.netlab --help`.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import secrets
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.localcloud.netlab import containment
from scripts.localcloud.netlab.containment import NETNS_DIR
from scripts.localcloud.netlab.containment import lab_lock as _lab_lock
from scripts.localcloud.procs import ROOT, checkout_id, start_time, stop

DELAYLINK_MODULE = "scripts.localcloud.netlab.delaylink"
NETNS_ETC = Path("/etc/netns")  # per-namespace files `ip netns exec` mounts over /etc
DEFAULT_PREFIX = f"hc{checkout_id()}"
ROOT_BLOCKS = ipaddress.ip_network("198.19.0.0/16")  # where root-touching labs take a /24
CLONE_NEWNET = 0x40000000
READY_TIMEOUT_S = 10.0


class NetlabError(RuntimeError):
    """A step failed; the message has the command and its error output."""


def unavailable_reason() -> str | None:
    """Why namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root)"
    if not Path("/dev/net/tun").exists():
        return "/dev/net/tun is missing"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return "iproute2 (`ip`) is not installed"
    return None


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetlabError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", *(["-n", ns] if ns else []), *args, check=check)


_libc = ctypes.CDLL(None, use_errno=True)


def call_in(ns: str | None, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """fn(*args, **kwargs) on a new thread inside namespace `ns` (None: here)."""
    if ns is None:
        return fn(*args, **kwargs)
    outcome: dict[str, Any] = {}

    def body():
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def list_namespaces() -> list[str]:
    done = ip("netns", "list", check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


@dataclass
class DelayLink:
    """One delaylink.py process and its two TUN devices."""

    proc: subprocess.Popen
    ends: tuple[tuple[str | None, str, str], tuple[str | None, str, str]]  # (ns, dev, address)
    delay_ms: float


@dataclass
class Lab:
    """Namespaces, links and processes with one unique prefix, removed together."""

    prefix: str = DEFAULT_PREFIX
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[str] = field(default_factory=list)
    links: list[DelayLink] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    root_devices: list[str] = field(default_factory=list)
    block: ipaddress.IPv4Network | None = None
    _devices: int = 0
    _pairs: int = 0

    def __post_init__(self):
        self.name = f"{self.prefix}-{self.tag}"

    # names and addresses -------------------------------------------------
    def _dev(self, role: str) -> str:
        self._devices += 1
        return f"h{self.tag}{role}{self._devices}"[:15]

    def claim_block(self) -> ipaddress.IPv4Network:
        """A /24 of 198.19.0.0/16 that no address or route in the root namespace uses yet.

        Call with the lab lock held, and put an address of it on a root-side
        device before releasing the lock.
        """
        if self.block is None:
            used = sh("ip", "-4", "-o", "addr", "show").stdout + sh("ip", "-4", "route", "show", "table", "all").stdout
            for candidate in list(ROOT_BLOCKS.subnets(new_prefix=24))[1:]:
                stem = ".".join(str(candidate.network_address).split(".")[:3]) + "."
                if stem not in used:
                    self.block = candidate
                    break
            else:
                raise NetlabError("no free /24 left in 198.19.0.0/16")
        return self.block

    def next_pair(self) -> tuple[str, str]:
        """Two addresses of the next /30 of the lab's block."""
        block = self.claim_block()
        base = int(block.network_address) + 4 * self._pairs
        self._pairs += 1
        if base + 3 > int(block.broadcast_address):
            raise NetlabError(f"the lab's block {block} is full")
        return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))

    # building --------------------------------------------------------------
    def add_namespace(self, name: str) -> str:
        """A new namespace `<lab>-<name>` with loopback up and IPv4 forwarding on."""
        full = f"{self.name}-{name}"
        self.namespaces.append(full)
        containment.hold(self.name, namespaces=self.namespaces)  # before the namespace: never one unrecorded
        ip("netns", "add", full)
        ip("link", "set", "lo", "up", ns=full)
        for key, value in (
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.icmp_ratelimit", "0"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ):
            sh("ip", "netns", "exec", full, "sysctl", "-qw", f"{key}={value}", check=False)
        return full

    def veth(
        self, ns_a: str | None, addr_a: str, ns_b: str | None, addr_b: str, prefixlen: int = 30
    ) -> tuple[str, str]:
        """A veth pair between two namespaces (None: the root namespace)."""
        if not ns_a and not ns_b:
            raise NetlabError("a veth needs at least one end in a lab namespace")
        dev_a, dev_b = self._dev("v"), self._dev("v")
        ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
            if ns:
                ip("link", "set", dev, "netns", ns)
            else:
                self.root_devices.append(dev)
        for ns, dev, addr in ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)):
            ip("addr", "add", f"{addr}/{prefixlen}", "dev", dev, ns=ns)
            ip("link", "set", dev, "up", ns=ns)
        return dev_a, dev_b

    def delay_link(
        self, ns_a: str | None, addr_a: str, ns_b: str | None, addr_b: str, delay_ms: float, loss_pct: float = 0.0
    ) -> DelayLink:
        """A point-to-point link adding `delay_ms` of round-trip time (half each way)."""
        dev_a, dev_b = self._dev("t"), self._dev("t")
        argv = [
            sys.executable,
            "-m",
            DELAYLINK_MODULE,
            "--tag",
            self.name,
            "--delay-ms",
            str(delay_ms),
            "--loss-pct",
            str(loss_pct),
            "--end",
            f"{ns_a or '-'}:{dev_a}:{addr_a}:{addr_b}",
            "--end",
            f"{ns_b or '-'}:{dev_b}:{addr_b}:{addr_a}",
        ]
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        link = DelayLink(proc, ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)), delay_ms)
        self.links.append(link)
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            _stop(proc)
            raise NetlabError(f"delay link {dev_a}<->{dev_b} did not start: {proc.stderr.read().strip()}")
        return link

    def set_resolver(self, ns: str, nameserver: str, *, timeout_s: int = 2, attempts: int = 2) -> Path:
        """Make `nameserver` the system resolver of processes run with `ip netns exec ns`.

        Writes /etc/netns/<ns>/resolv.conf, which `ip netns exec` bind-mounts
        over /etc/resolv.conf (it does so only when the file exists when the
        process starts). Removed at teardown.
        """
        if ns not in self.namespaces:
            raise NetlabError(f"{ns} is not a namespace of this lab")
        folder = NETNS_ETC / ns
        with _lab_lock():
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / "resolv.conf"
        path.write_text(
            f"# written by scripts/localcloud/netlab for lab {self.name}\n"
            f"nameserver {nameserver}\noptions timeout:{timeout_s} attempts:{attempts}\n"
        )
        return path

    def route(self, ns: str | None, destination: str, via: str) -> None:
        ip("route", "replace", destination, "via", via, ns=ns)

    def add_linked_namespace(
        self,
        name: str,
        delay_ms: float,
        *,
        peer_ns: str | None = None,
        address: str | None = None,
        peer_address: str | None = None,
        default_route: bool = True,
    ) -> tuple[str, str, str]:
        """A namespace behind a delay link to `peer_ns` (None: the root namespace).

        Returns (namespace, its address, the peer's address). Addresses come
        from the lab's block unless given. With `default_route` the new
        namespace routes everything through the link; when the peer is the
        root namespace, the root gets a route to the new address only, as a
        point-to-point peer.
        """
        with _lab_lock():
            if address is None or peer_address is None:
                peer_address, address = self.next_pair()
            ns = self.add_namespace(name)
            self.delay_link(peer_ns, peer_address, ns, address, delay_ms)
        if default_route:
            self.route(ns, "default", peer_address)
        return ns, address, peer_address

    # running inside ---------------------------------------------------------
    def call_in(self, ns: str | None, fn: Callable[..., Any], *args, **kwargs) -> Any:
        return call_in(ns, fn, *args, **kwargs)

    def run_in(self, ns: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", ns, *argv], **kwargs)

    def popen_in(self, ns: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start a long-running process in `ns`; teardown stops it."""
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)
        self.processes.append(proc)
        return proc

    # tearing down -----------------------------------------------------------
    def teardown(self) -> None:
        """Stop every process, delete every namespace and root-side device. Idempotent."""
        for proc in self.processes + [link.proc for link in self.links]:
            _stop(proc)
        for dev in self.root_devices:
            ip("link", "del", dev, check=False)
        for ns in self.namespaces:
            ip("netns", "del", ns, check=False)
            _remove_netns_etc(ns)
        self.processes.clear()
        self.links.clear()
        self.root_devices.clear()
        if self.namespaces:
            containment.release(self.name)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def describe(self) -> dict:
        """What the lab holds, by name: enough for remove_recorded() to undo it if its owner dies."""
        return {
            "name": self.name,
            "namespaces": list(self.namespaces),
            "root_devices": list(self.root_devices),
            "links": [
                {"ends": link.ends, "delay_ms": link.delay_ms, "pid": [link.proc.pid, start_time(link.proc.pid)]}
                for link in self.links
            ],
            "block": str(self.block) if self.block else None,
        }


def _remove_netns_etc(ns: str) -> None:
    """Remove /etc/netns/<ns> (see Lab.set_resolver), and /etc/netns once it is empty."""
    folder = NETNS_ETC / ns
    if not folder.is_dir():
        return
    for item in folder.iterdir():
        item.unlink(missing_ok=True)
    with _lab_lock():
        for path in (folder, NETNS_ETC):
            try:
                path.rmdir()
            except OSError:
                break  # not empty: another lab's (or the operator's) files live there


def _stop(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop a process this lab started (its own session) with procs.stop, then reap it and close its pipes."""
    stop(proc.pid, grace=grace_s, group=True)
    proc.wait()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()


# ---------------------------------------------------------------------------
# Topologies


@dataclass
class ChainLab(Lab):
    client: str = ""
    nodes: list[str] = field(default_factory=list)  # r1 ... r(n-1), then the target

    @property
    def target(self) -> str:
        return self.nodes[-1]

    @property
    def hop_addresses(self) -> list[str]:
        """What a traceroute from the client reports, hop by hop."""
        return [f"198.18.{i}.2" for i in range(len(self.nodes))]

    @property
    def target_address(self) -> str:
        return self.hop_addresses[-1]

    @property
    def client_address(self) -> str:
        return "198.18.0.1"


def build_chain(prefix: str = DEFAULT_PREFIX, hops: int = 3, delay_ms: float = 0.0) -> ChainLab:
    """client -> r1 -> ... -> target: `hops` namespaces after the client.

    Link i (0-based) joins node i and node i+1 as 198.18.i.1 / 198.18.i.2 (/24
    veth; with `delay_ms`, link 0 is a delay link with /32 peer addresses).
    """
    if not 1 <= hops <= 200:
        raise ValueError("hops must be between 1 and 200")
    lab = ChainLab(prefix=prefix)
    try:
        lab.client = lab.add_namespace("c")
        for i in range(1, hops + 1):
            lab.nodes.append(lab.add_namespace("t" if i == hops else f"r{i}"))
        chain = [lab.client, *lab.nodes]
        for i in range(hops):
            left, right = f"198.18.{i}.1", f"198.18.{i}.2"
            if i == 0 and delay_ms:
                lab.delay_link(chain[0], left, chain[1], right, delay_ms)
            else:
                lab.veth(chain[i], left, chain[i + 1], right, prefixlen=24)
        for j, ns in enumerate(chain):
            for i in range(hops):
                if i in (j - 1, j):
                    continue  # directly connected (or the p2p peer of the delay link)
                via = f"198.18.{j - 1}.1" if i < j else f"198.18.{j}.2"
                lab.route(ns, f"198.18.{i}.0/24", via)
    except BaseException:
        lab.teardown()
        raise
    return lab


@dataclass
class Region:
    name: str
    namespace: str
    address: str
    delay_ms: float


@dataclass
class RegionsLab(Lab):
    hub: str = ""
    host_address: str = ""  # the root namespace's end: bind the API and Redis here
    hub_address: str = ""
    demo: str | None = None
    demo_address: str | None = None
    regions: dict[str, Region] = field(default_factory=dict)

    def describe(self) -> dict:
        out = super().describe()
        out.update(
            hub=self.hub,
            host_address=self.host_address,
            demo=self.demo,
            demo_address=self.demo_address,
            regions={k: vars(v) for k, v in self.regions.items()},
        )
        return out


def build_regions(
    prefix: str = DEFAULT_PREFIX, regions: dict[str, float] | None = None, *, demo: bool = True
) -> RegionsLab:
    """Regions behind delay links to a hub; the hub on a veth to the root namespace.

    regions: {short name: added round-trip ms}, names of at most 20 characters.
    """
    regions = regions or {"frankfurt": 10.0, "virginia": 40.0, "singapore": 120.0}
    lab = RegionsLab(prefix=prefix)
    try:
        with _lab_lock():
            block = lab.claim_block()
            lab.host_address, lab.hub_address = lab.next_pair()
            lab.hub = lab.add_namespace("hub")
            lab.veth(None, lab.host_address, lab.hub, lab.hub_address)
        lab.route(None, str(block), lab.hub_address)
        # The hub reaches the host's end of its veth directly, and every lab address
        # through its own links; anything else is refused here, so no packet of the lab
        # can be routed off the machine, even on a host that forwards.
        ip("route", "replace", "unreachable", "default", ns=lab.hub)
        if demo:
            hub_side, lab.demo_address = lab.next_pair()
            lab.demo = lab.add_namespace("demo")
            lab.veth(lab.hub, hub_side, lab.demo, lab.demo_address)
            lab.route(lab.demo, "default", hub_side)
        for name, delay in regions.items():
            ns, address, _ = lab.add_linked_namespace(name[:20], delay, peer_ns=lab.hub)
            lab.regions[name] = Region(name, ns, address, float(delay))
            if lab.demo_address:
                lab.set_resolver(ns, lab.demo_address)
    except BaseException:
        lab.teardown()
        raise
    return lab


def remove_recorded(description: dict) -> list[str]:
    """Remove what a lab left behind (its owner was killed), from the lab's own description.

    Only the names recorded there: its delay-link processes (by pid and start time), its root-side
    devices, its namespaces and their /etc/netns folders. Never anything found by a name pattern,
    so another checkout's labs are never touched. Returns what it removed.
    """
    # A link's pid is recorded with its start time ([pid, start]); a bare pid (an older layout) cannot
    # be told from a recycled one, so it is left alone rather than risk stopping somebody else's process.
    records = [tuple(link["pid"]) for link in description.get("links", []) if isinstance(link.get("pid"), list)]
    removed = [f"pid {pid}" for pid in stop(*records, grace=5.0, group=True)]
    for dev in description.get("root_devices", []):
        if ip("link", "del", dev, check=False).returncode == 0:
            removed.append(dev)
    for ns in description.get("namespaces", []):
        if ip("netns", "del", ns, check=False).returncode == 0:
            removed.append(ns)
        _remove_netns_etc(ns)
    containment.release(description["name"])
    return removed
