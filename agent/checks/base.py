"""What every check shares: its inputs, its deadline, resolution under the
target policy, connecting to the checked address, and turning exceptions into
the error kinds of DESIGN §6.

A check module exposes `run(ctx: CheckContext) -> dict` returning
`protocol.result_envelope(...)`. To fail with partial data (timings, TLS
details, an rcode), it raises `CheckFailure(kind, message, data=..., address=...)`;
any other exception is classified by `classify()`. `run_check` in
`agent/checks/__init__.py` is the only place that catches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import heapq
import http.client
import ipaddress
import socket
import ssl
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib import protocol, targets

USER_AGENT = f"HostChecker/{protocol.VERSION} (+https://github.com/host-checker)"

# getaddrinfo() has no timeout of its own, so each lookup runs on a thread of
# its own and the check stops waiting at its deadline; an abandoned lookup
# keeps its thread until the system resolver gives up (resolv.conf timeout x
# attempts), never longer. Not a shared pool, for two reasons:
# - a pool's workers are created by whichever thread submits first and keep
#   that thread's network namespace (setns(2) is per thread), so a check run
#   on a thread switched into a namespace (scripts/netlab.py call_in) would
#   look names up from some other namespace; a new thread inherits its
#   creator's namespace, so the lookup happens where the check runs;
# - a bounded pool puts every check behind the stuck lookups of others (32
#   names whose resolver is down would stall all name lookups), and one slow
#   target must never block the others. Checks are bounded by the runner's
#   concurrency, and so are these threads. They live only while a name is being
#   looked up: a check waiting on its server afterwards holds no thread (the
#   network checks are coroutines, resolve_checked_async), and an IP target none at all.


class CheckFailure(Exception):
    """A check failed in a way it understands; carries what it measured so far."""

    def __init__(self, kind: str, message: str, *, data: dict | None = None, address: str | None = None):
        super().__init__(message)
        self.kind = kind if kind in protocol.ERROR_KINDS else "internal"
        self.message = message
        self.data = data
        self.address = address


@dataclass
class CheckContext:
    """One check's inputs and its clock. `deadline` is on the monotonic clock."""

    check_type: str
    target: targets.Target
    options: dict[str, Any]
    allow_private: bool
    started: float = field(default_factory=time.monotonic)
    timeout_s: float = 10.0
    expired: bool = field(default=False, compare=False, repr=False)  # the reaper shut its sockets
    _sockets: list | None = field(default=None, compare=False, repr=False)

    @property
    def deadline(self) -> float:
        return self.started + self.timeout_s

    def remaining(self) -> float:
        """Seconds left before the deadline; raises a timeout failure at zero."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CheckFailure("timeout", f"{self.check_type} check timed out after {self.timeout_s:g} s")
        return left

    def elapsed_ms(self) -> float:
        return ms_since(self.started)

    # A socket timeout bounds one recv, not a check: a server that drips a byte a second
    # keeps a read of a 64 KB chunk (or of a header line, or a TLS record) going for hours.
    # So every socket a check opens is tracked, and at the deadline (plus REAP_MARGIN_S) the
    # reaper shuts it down: whatever blocks on it returns at once, and the check's thread
    # ends within a small bound of its deadline, by construction, whatever the server does.

    def track(self, sock: socket.socket) -> socket.socket:
        """Have `sock` shut down at the deadline (returns it). A TLS socket wrapping a tracked
        one must be tracked itself: wrapping takes the descriptor over."""
        with _guard_lock:
            if self._sockets is None:
                self._sockets = []
                _reaper.watch(self)
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)
        return sock

    def close(self, sock: socket.socket) -> None:
        """Close a tracked socket (the reaper then no longer touches it)."""
        with _guard_lock:
            if self._sockets and sock in self._sockets:
                self._sockets.remove(sock)
        sock.close()

    def release(self) -> None:
        """The check is over: close what it left open; the reaper forgets it."""
        with _guard_lock:
            left, self._sockets = self._sockets or [], []
        for sock in left:
            sock.close()

    def _expire(self) -> None:
        with _guard_lock:
            self.expired = True
            for sock in self._sockets or ():
                _shutdown(sock)


# How long past a check's deadline the reaper waits before shutting its sockets: the
# check's own timeouts (set to the time remaining) normally end it first, with the right
# phase in the message.
REAP_MARGIN_S = 0.25
_guard_lock = threading.Lock()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, or never connected
        sock.shutdown(socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread for the process: expires each watched context at its deadline."""

    def __init__(self):
        self._heap: list[tuple[float, int, CheckContext]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._seq = 0

    def watch(self, ctx: CheckContext) -> None:
        with self._wake:
            self._seq += 1
            heapq.heappush(self._heap, (ctx.deadline + REAP_MARGIN_S, self._seq, ctx))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="hc-check-reaper", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, ctx = heapq.heappop(self._heap)
            if ctx._sockets:
                ctx._expire()


_reaper = _Reaper()


def ms_since(start: float, end: float | None = None) -> float:
    """Milliseconds between two monotonic readings, rounded to µs."""
    return round(((time.monotonic() if end is None else end) - start) * 1000, 3)


_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def resolve_checked(ctx: CheckContext, host: str) -> list[str]:
    """The addresses of `host` the policy allows, within the check's deadline.

    Only addresses of options.ip_version (4 or 6) when it is set; else every
    family, in getaddrinfo's order (the first is the one used).
    Raises BlockedTarget (policy), socket.gaierror (no such name) or
    CheckFailure(dns_failure) when resolution outlives the deadline or, with
    ip_version, when the name has no address of that version.
    """
    version = ctx.options.get("ip_version")
    if _is_ip_literal(host):
        if version and ip_version_of(host) != version:
            raise CheckFailure(
                "internal", f"{host} is an IPv{ip_version_of(host)} address; ip_version {version} cannot apply to it"
            )
        return targets.resolve(host, ctx.allow_private)  # no lookup: answer on this thread
    box: dict[str, Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            box["value"] = targets.resolve(host, ctx.allow_private, _FAMILIES.get(version, 0))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the check's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"hc-resolve-{host[:40]}", daemon=True).start()
    if not done.wait(ctx.remaining()):
        raise CheckFailure("dns_failure", f"resolving {host} timed out after {ctx.timeout_s:g} s")
    error = box.get("error")
    if version and isinstance(error, socket.gaierror):
        raise CheckFailure(
            "dns_failure",
            f"{host} does not resolve to an IPv{version} address (ip_version {version}): {error.strerror or error}",
        ) from error
    if error is not None:
        raise error
    return box["value"]


async def resolve_checked_async(ctx: CheckContext, host: str) -> list[str]:
    """resolve_checked for a check running on an event loop: the same policy and errors.

    The lookup runs on a thread of its own, for the reasons given at the top of this
    module; the check awaits it without holding a thread, until its deadline.
    """
    version = ctx.options.get("ip_version")
    if _is_ip_literal(host):
        return resolve_checked(ctx, host)  # no lookup: answered at once
    loop = asyncio.get_running_loop()
    answer: asyncio.Future = loop.create_future()

    def settle(value, error) -> None:
        if not answer.done():
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(value)

    def lookup() -> None:
        try:
            value, error = targets.resolve(host, ctx.allow_private, _FAMILIES.get(version, 0)), None
        except Exception as exc:  # noqa: BLE001 - re-raised in the check
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: the check ended at its deadline
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=lookup, name=f"hc-resolve-{host[:40]}", daemon=True).start()
    try:
        async with asyncio.timeout_at(ctx.deadline):
            return await answer
    except TimeoutError:
        raise CheckFailure("dns_failure", f"resolving {host} timed out after {ctx.timeout_s:g} s") from None
    except socket.gaierror as error:
        if version:
            raise CheckFailure(
                "dns_failure",
                f"{host} does not resolve to an IPv{version} address (ip_version {version}): {error.strerror or error}",
            ) from error
        raise


async def connect_checked_async(ctx: CheckContext, addresses: list[str], port: int) -> tuple[socket.socket, str]:
    """connect_checked on an event loop: a non-blocking socket connected to an approved address.

    The caller owns the socket (closes it) and bounds the wait with the check's deadline
    (asyncio.timeout_at(ctx.deadline)); cancellation closes the socket being connected.
    """
    loop = asyncio.get_running_loop()
    first_error: BaseException | None = None
    for address in addresses:
        targets.check_address(address, ctx.allow_private)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (address, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see connect_checked
            return sock, address
        except OSError as exc:
            sock.close()
            first_error = first_error or exc
        except BaseException:  # cancelled at the deadline, or a policy refusal
            sock.close()
            raise
    assert first_error is not None
    raise first_error


# ipaddress.ip_address for the few addresses an agent probes again and again (the parsed addresses are
# immutable): ip_version_of and _is_ip_literal were 6.6 % of an HTTP check's samples (py-spy) here.
_ip_address = functools.lru_cache(maxsize=1024)(ipaddress.ip_address)


def ip_version_of(address: str | None) -> int | None:
    """4 or 6 for an IP literal, None for anything else."""
    try:
        return _ip_address(address.strip("[]")).version if address else None
    except ValueError:
        return None


def _is_ip_literal(host: str) -> bool:
    try:
        _ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def connect_checked(ctx: CheckContext, addresses: list[str], port: int) -> tuple[socket.socket, str]:
    """Connect to the first of `addresses` that answers, never to anything else.

    Each address is checked by the policy again right before the connect (the
    addresses came from resolve_checked, so this only matters for callers that
    build their own list). Returns (socket, address). The first error is
    re-raised when every address fails.
    """
    first_error: BaseException | None = None
    for address in addresses:
        targets.check_address(address, ctx.allow_private)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = ctx.track(socket.socket(family, socket.SOCK_STREAM))
        try:
            sock.settimeout(ctx.remaining())
            sock.connect((address, port))
            # As curl does: without it a small request written right after
            # the TLS Finished message waits for that message's ACK (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address
        except CheckFailure:
            ctx.close(sock)
            raise
        except OSError as exc:
            ctx.close(sock)
            first_error = first_error or exc
            if isinstance(exc, TimeoutError):
                break  # the deadline is spent; trying the next address cannot help
    assert first_error is not None
    raise first_error


_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.ENETDOWN,
    errno.EADDRNOTAVAIL,
    errno.EAFNOSUPPORT,
}
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for an exception raised while checking."""
    if isinstance(exc, CheckFailure):
        return exc.kind, exc.message
    if isinstance(exc, targets.BlockedTarget):
        return "blocked_target", exc.message
    if isinstance(exc, targets.TargetError):
        return "internal", f"invalid target: {exc.message}"
    if isinstance(exc, protocol.OptionError):
        return "internal", f"invalid option {exc.field}: {exc.message}"
    if isinstance(exc, socket.gaierror):
        return "dns_failure", f"name does not resolve: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_error", f"certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return "tls_error", f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, http.client.HTTPException):
        return "http_error", f"invalid HTTP response: {type(exc).__name__} {exc}".strip()
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout", "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    kind = _classify_dns(exc) or _classify_icmp(exc)
    if kind:
        return kind
    if isinstance(exc, OSError):
        if exc.errno in _UNREACHABLE_ERRNOS:
            return "unreachable", exc.strerror or str(exc)
        if exc.errno in _RESET_ERRNOS:
            return "unreachable", f"connection reset: {exc.strerror or exc}"
    return "internal", f"{type(exc).__name__}: {exc}"


def _classify_dns(exc: BaseException) -> tuple[str, str] | None:
    mod = sys.modules.get("dns.exception")
    if mod is None or not isinstance(exc, mod.DNSException):
        return None
    if isinstance(exc, mod.Timeout):
        return "timeout", f"DNS query timed out: {exc}"
    return "dns_failure", f"{type(exc).__name__}: {exc}"


def _classify_icmp(exc: BaseException) -> tuple[str, str] | None:
    mod = sys.modules.get("icmplib.exceptions")
    if mod is None or not isinstance(exc, mod.ICMPLibError):
        return None
    if isinstance(exc, mod.ICMPSocketError) and isinstance(exc.__context__, OSError):
        return classify(exc.__context__)  # icmplib wraps e.g. ENETUNREACH in a string
    if isinstance(exc, mod.SocketPermissionError):
        return (
            "internal",
            "ICMP sockets are not permitted for this process (needs CAP_NET_RAW or net.ipv4.ping_group_range)",
        )
    if isinstance(exc, mod.NameLookupError):
        return "dns_failure", str(exc)
    if isinstance(exc, mod.TimeoutExceeded):
        return "timeout", str(exc)
    if isinstance(exc, mod.DestinationUnreachable):
        return "unreachable", str(exc)
    return "internal", f"{type(exc).__name__}: {exc}"


def failure_envelope(ctx_started: float, exc: BaseException) -> dict:
    kind, message = classify(exc)
    data = getattr(exc, "data", None)
    address = getattr(exc, "address", None)
    return protocol.result_envelope(False, ms_since(ctx_started), address, data, protocol.error(kind, message))


def rtt_stats(values: list[float]) -> dict:
    """min/avg/max/stddev of round-trip times in ms (ping, TCP/UDP ping, each mtr hop); all None without any."""
    if not values:
        return {"min": None, "avg": None, "max": None, "stddev": None}
    return {
        "min": min(values),
        "avg": round(statistics.fmean(values), 3),
        "max": max(values),
        "stddev": round(statistics.pstdev(values), 3),
    }
