"""Probes over ICMP, TCP or UDP, optionally with a TTL, and what answered each one.

One engine for ping (over tcp/udp), traceroute and mtr, so the three protocols
are matched and timed the same way:

- **icmp**: an echo request on a raw ICMP socket (id, sequence); answered by
  an echo reply from the target, or by a router's Time Exceeded or
  Destination Unreachable that quotes it.
- **tcp**: a kernel TCP socket per probe, non-blocking connect (one SYN),
  keyed by its source port. The target answers with SYN-ACK (the connect
  completes: port open) or RST (ECONNREFUSED: port closed); either proves it
  is up, so a TCP ping passes networks that drop ICMP echo. The socket is
  closed with SO_LINGER 0 (an RST, no FIN handshake, no TIME_WAIT).
- **udp**: a connected UDP socket per probe, keyed by its source port. The
  target answers with a datagram (a service such as an echo or DNS server) or
  with ICMP Port Unreachable (ECONNREFUSED on the socket).

With a TTL (traceroute, mtr), the routers' ICMP Time Exceeded messages about
TCP and UDP probes come only to a raw ICMP socket, matched by the quoted
header's protocol, destination and source port. So every mode needs raw ICMP
(root or CAP_NET_RAW) and nothing more: TCP and UDP probes are ordinary
sockets. Without a TTL (ping over tcp/udp) no raw socket is opened at all, so
TCP and UDP ping need no privilege.
"""

from __future__ import annotations

import errno
import os
import random
import selectors
import socket
import struct
import time
from dataclasses import dataclass

from .base import CheckFailure

# ICMP types and codes, per family: echo request/reply, time exceeded, destination unreachable
# and its port-unreachable code.
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
TIME_EXCEEDED = {4: 11, 6: 3}
DEST_UNREACHABLE = {4: 3, 6: 1}
PORT_UNREACHABLE = {4: 3, 6: 4}
IPPROTO = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "icmp": None}
PAYLOAD = b"HostChecker probe"

_SOFT_TCP_ERRORS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def needs_raw_message(protocol: str, check_type: str) -> str:
    """What a probe mode needs, said plainly when the agent lacks it."""
    if protocol == "icmp":
        return f"{check_type} over ICMP needs a raw ICMP socket (root or CAP_NET_RAW); this agent has none"
    return (
        f"{check_type} over {protocol.upper()} needs a raw ICMP socket (root or CAP_NET_RAW) to hear the routers' "
        f"Time Exceeded replies; this agent has none ({protocol.upper()} ping needs no privilege)"
    )


@dataclass
class Answer:
    """What answered one probe: `kind` is reply (the target), ttl_exceeded (a router) or unreachable."""

    key: int
    ttl: int | None
    responder: str | None
    kind: str
    detail: str
    rtt_ms: float


@dataclass
class _Probe:
    key: int
    ttl: int | None
    sent: float
    sock: socket.socket | None = None
    match: int | None = None  # the source port (tcp/udp) or the echo sequence (icmp)


def family_of(address: str) -> int:
    return 6 if ":" in address else 4


class Prober:
    """Sends probes to one address and collects the answers (see the module docstring).

    `with_ttl` opens the raw ICMP socket that TTL-limited probes need (CheckFailure
    `internal`, naming CAP_NET_RAW, when it cannot); ICMP probes always need it.
    """

    def __init__(self, address: str, protocol: str, port: int | None, *, with_ttl: bool, check_type: str):
        self.address = address
        self.protocol = protocol
        self.port = port
        self.family = family_of(address)
        self._af = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        self._probes: dict[int, _Probe] = {}  # outstanding, by key
        self._by_match: dict[int, int] = {}  # source port or echo sequence -> key
        self._keys = 0
        self._ident = (os.getpid() ^ random.getrandbits(16)) & 0xFFFF
        self._selector = selectors.DefaultSelector()
        self._icmp: socket.socket | None = None
        if protocol == "icmp" or with_ttl:
            proto = socket.IPPROTO_ICMPV6 if self.family == 6 else socket.IPPROTO_ICMP
            try:
                self._icmp = socket.socket(self._af, socket.SOCK_RAW, proto)
            except PermissionError:
                raise CheckFailure("internal", needs_raw_message(protocol, check_type)) from None
            self._icmp.setblocking(False)
            self._selector.register(self._icmp, selectors.EVENT_READ, None)

    # sending ------------------------------------------------------------------------
    def send(self, ttl: int | None = None) -> int:
        """Send one probe (with `ttl` when given); returns its key. Errors of the send itself
        (ENETUNREACH, EHOSTUNREACH) propagate as OSError."""
        self._keys += 1
        key = self._keys
        probe = self._send_echo(key, ttl) if self.protocol == "icmp" else self._send_socket(key, ttl)
        self._probes[key] = probe
        self._by_match[probe.match] = key
        return key

    def _set_ttl(self, sock: socket.socket, ttl: int | None) -> None:
        if ttl is None:
            return
        if self.family == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)

    def _send_echo(self, key: int, ttl: int | None) -> _Probe:
        seq = key & 0xFFFF
        header = struct.pack("!BBHHH", ECHO_REQUEST[self.family], 0, 0, self._ident, seq)
        packet = header + PAYLOAD
        if self.family == 4:  # the kernel computes the ICMPv6 checksum itself
            packet = header[:2] + struct.pack("!H", _checksum(packet)) + header[4:] + PAYLOAD
        self._set_ttl(self._icmp, ttl)
        sent = time.monotonic()
        self._icmp.sendto(packet, (self.address, 0))
        return _Probe(key, ttl, sent, None, seq)

    def _send_socket(self, key: int, ttl: int | None) -> _Probe:
        kind = socket.SOCK_STREAM if self.protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(self._af, kind)
        try:
            self._set_ttl(sock, ttl)
            sock.setblocking(False)
            if self.protocol == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sent = time.monotonic()
                code = sock.connect_ex((self.address, self.port))
                if code not in (0, errno.EINPROGRESS):
                    raise OSError(code, os.strerror(code))
                events = selectors.EVENT_WRITE
            else:
                sock.connect((self.address, self.port))
                sent = time.monotonic()
                sock.send(PAYLOAD)
                events = selectors.EVENT_READ
        except BaseException:
            sock.close()
            raise
        probe = _Probe(key, ttl, sent, sock, sock.getsockname()[1])
        self._selector.register(sock, events, key)
        return probe

    # receiving ----------------------------------------------------------------------
    def poll(self, until: float) -> list[Answer]:
        """Wait until the monotonic time `until` for answers; returns those that came (maybe
        none) as soon as there is at least one. Each probe is answered at most once."""
        while True:
            left = until - time.monotonic()
            if left <= 0 or not self._probes:
                return []
            answers: list[Answer] = []
            events = self._selector.select(left)
            now = time.monotonic()
            # The raw socket first: a TCP probe's socket reports a router's Time Exceeded as
            # EHOSTUNREACH, and only the ICMP message says which router sent it.
            for sel_key, _ in sorted(events, key=lambda e: e[0].data is not None):
                if sel_key.data is None:
                    answers.extend(self._read_icmp(now))
                elif sel_key.data in self._probes:
                    answer = self._read_socket(self._probes[sel_key.data], now)
                    if answer:
                        answers.append(answer)
            if answers:
                return answers

    def expire(self, key: int) -> None:
        """Give up on a probe (lost): its socket closes and late answers are ignored."""
        probe = self._probes.pop(key, None)
        if probe is not None:
            self._by_match.pop(probe.match, None)
            self._close_probe(probe)

    def outstanding(self) -> dict[int, float]:
        """{key: send time} of the probes not yet answered."""
        return {k: p.sent for k, p in self._probes.items()}

    def close(self) -> None:
        for key in list(self._probes):
            self.expire(key)
        if self._icmp is not None:
            self._selector.unregister(self._icmp)
            self._icmp.close()
        self._selector.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _answered(self, probe: _Probe, responder: str | None, kind: str, detail: str, now: float) -> Answer:
        self.expire(probe.key)
        return Answer(probe.key, probe.ttl, responder, kind, detail, round((now - probe.sent) * 1000, 3))

    def _close_probe(self, probe: _Probe) -> None:
        if probe.sock is not None:
            self._selector.unregister(probe.sock)
            probe.sock.close()

    def _read_socket(self, probe: _Probe, now: float) -> Answer | None:
        sock = probe.sock
        if self.protocol == "tcp":
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                if _syn_retransmitted(sock):
                    self.expire(probe.key)  # the answer is to the kernel's retry, 1 s on: the first SYN was lost
                    return None
                return self._answered(probe, self.address, "reply", "syn_ack", now)
            if code == errno.ECONNREFUSED:
                return self._answered(probe, self.address, "reply", "rst", now)
            if code in _SOFT_TCP_ERRORS and self._icmp is not None:
                # The ICMP message (read first, above) has said who; if it was not ours, drop it.
                self._selector.unregister(sock)
                probe.sock = None
                sock.close()
                return None
            return self._answered(probe, None, "unreachable", os.strerror(code), now)
        try:
            sock.recv(2048)
        except ConnectionRefusedError:
            return self._answered(probe, self.address, "reply", "port_unreachable", now)
        except BlockingIOError:
            return None
        except OSError as exc:
            if self._icmp is not None:
                return None
            return self._answered(probe, None, "unreachable", exc.strerror or str(exc), now)
        return self._answered(probe, self.address, "reply", "udp_reply", now)

    def _read_icmp(self, now: float) -> list[Answer]:
        answers = []
        while True:
            try:
                packet, source = self._icmp.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return answers
            answer = self._match_icmp(packet, source[0], now)
            if answer:
                answers.append(answer)

    def _match_icmp(self, packet: bytes, source: str, now: float) -> Answer | None:
        if self.family == 4:  # a raw IPv4 socket hands over the IP header too
            packet = packet[(packet[0] & 0x0F) * 4 :] if packet else b""
        if len(packet) < 8:
            return None
        icmp_type, code = packet[0], packet[1]
        if icmp_type == ECHO_REPLY[self.family]:
            if self.protocol != "icmp":
                return None
            ident, seq = struct.unpack("!HH", packet[4:8])
            probe = self._probe_for(seq) if ident == self._ident else None
            return self._answered(probe, source, "reply", "echo_reply", now) if probe else None
        if icmp_type not in (TIME_EXCEEDED[self.family], DEST_UNREACHABLE[self.family]):
            return None
        match = self._quoted_match(packet[8:])
        probe = self._probe_for(match) if match is not None else None
        if probe is None:
            return None
        if icmp_type == TIME_EXCEEDED[self.family]:
            return self._answered(probe, source, "ttl_exceeded", "time_exceeded", now)
        if code == PORT_UNREACHABLE[self.family] and self.protocol == "udp" and source == self.address:
            return self._answered(probe, source, "reply", "port_unreachable", now)
        return self._answered(probe, source, "unreachable", f"destination unreachable (code {code})", now)

    def _probe_for(self, match: int) -> _Probe | None:
        key = self._by_match.get(match)
        return self._probes.get(key) if key is not None else None

    def _quoted_match(self, quoted: bytes) -> int | None:
        """The source port (tcp/udp) or echo sequence (icmp) of the probe an ICMP error quotes,
        when that probe was ours: same protocol and destination."""
        if self.family == 4:
            if len(quoted) < 20:
                return None
            header_len = (quoted[0] & 0x0F) * 4
            proto, dest = quoted[9], socket.inet_ntop(socket.AF_INET, quoted[16:20])
        else:
            if len(quoted) < 40:
                return None
            header_len = 40
            proto, dest = quoted[6], socket.inet_ntop(socket.AF_INET6, quoted[24:40])
        inner = quoted[header_len : header_len + 8]
        if dest != self.address or len(inner) < 8:
            return None
        if self.protocol == "icmp":
            icmp_proto = socket.IPPROTO_ICMPV6 if self.family == 6 else socket.IPPROTO_ICMP
            ident, seq = struct.unpack("!HH", inner[4:8])
            return (
                seq if proto == icmp_proto and inner[0] == ECHO_REQUEST[self.family] and ident == self._ident else None
            )
        sport, dport = struct.unpack("!HH", inner[:4])
        return sport if proto == IPPROTO[self.protocol] and dport == self.port else None


_TCPI_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info (linux/tcp.h)


def _syn_retransmitted(sock: socket.socket) -> bool:
    """Whether the kernel had to resend the SYN (its first retry is 1 s on, RFC 6298)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return False
    return len(info) >= 104 and struct.unpack_from("I", info, _TCPI_TOTAL_RETRANS)[0] > 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
