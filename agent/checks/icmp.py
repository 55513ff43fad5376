"""ICMP sockets for the ICMP ping, on top of icmplib's socket classes (traceroute and mtr
use agent/checks/probes.py, which needs raw sockets for every protocol anyway).

ping drives the socket itself instead of calling icmplib.ping, because that waits
`timeout` per packet with no overall deadline (4 lost packets at 10 s = 40 s). Here
every packet has a unique (id, sequence) and the check's deadline bounds every wait;
an unprivileged ICMP socket is used where raw ones are not allowed.
"""

from __future__ import annotations

from icmplib import ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import SocketPermissionError
from icmplib.utils import unique_identifier

from .base import CheckFailure

# Echo reply, destination unreachable, time exceeded.
ACCEPTED_TYPES = {4: (0, 3, 11), 6: (129, 1, 3)}
ECHO_REPLY = {4: 0, 6: 129}
TIME_EXCEEDED = {4: 11, 6: 3}

NO_ICMP = (
    "ICMP is not available to this agent: raw sockets need root or CAP_NET_RAW, "
    "and unprivileged ICMP is off (net.ipv4.ping_group_range); protocol tcp or udp needs neither"
)


def open_socket(address: str):
    """An icmplib socket for `address`'s family: raw if allowed, else unprivileged."""
    cls = ICMPv6Socket if ":" in address else ICMPv4Socket
    try:
        return cls(privileged=True)
    except SocketPermissionError:
        pass
    try:
        return cls(privileged=False)
    except SocketPermissionError:
        raise CheckFailure("internal", NO_ICMP) from None


def new_identifier() -> int:
    return unique_identifier()


def family_of(address: str) -> int:
    return 6 if ":" in address else 4
