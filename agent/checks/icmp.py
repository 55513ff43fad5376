"""ICMP sockets for ping and traceroute, on top of icmplib's socket classes.

Both checks drive the socket themselves instead of calling icmplib.ping /
icmplib.traceroute, because those wait `timeout` per packet with no overall
deadline (4 lost packets at 10 s = 40 s), and traceroute drops silent hops and
reuses sequence numbers across TTLs (a late reply gets credited to the wrong
hop). Here every probe has a unique (id, sequence) and the check's deadline
bounds every wait.
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
    "and unprivileged ICMP is off (net.ipv4.ping_group_range)"
)


def open_socket(address: str, *, raw_only: bool = False):
    """An icmplib socket for `address`'s family: raw if allowed, else unprivileged."""
    cls = ICMPv6Socket if ":" in address else ICMPv4Socket
    try:
        return cls(privileged=True)
    except SocketPermissionError:
        if raw_only:
            raise CheckFailure(
                "internal", "traceroute needs raw ICMP sockets (root or CAP_NET_RAW); this agent has none"
            ) from None
    try:
        return cls(privileged=False)
    except SocketPermissionError:
        raise CheckFailure("internal", NO_ICMP) from None


def new_identifier() -> int:
    return unique_identifier()


def family_of(address: str) -> int:
    return 6 if ":" in address else 4
