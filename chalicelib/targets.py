"""The target policy (SSRF guard), shared by the API and the agent.

There is exactly one list of blocked ranges, here. The API applies it to
literal addresses in the submitted target; the agent applies it again after
DNS resolution and to the address it actually connects to, which defeats DNS
rebinding. It also says what a check assumes when the target leaves
something open (the last section). The agent imports this module too, so it
depends on nothing but the standard library, `protocol` and `idna` (pure Python, pinned for the Lambda bundle and
the agent alike).

Host names are IDNA 2008 with the UTS 46 mapping (non-transitional), as
browsers and curl resolve them: `Straße.de` is `straße.de` is
`xn--strae-oqa.de`, never `strasse.de` (the standard library's codec is IDNA
2003, which maps ß to ss: a different domain). Labels already in ASCII are
taken as DNS labels (letters, digits, '-' and '_' for SRV-style names), so an
A-label the user typed is used as given and only decoded for display.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import idna

from .protocol import OptionError

MAX_TARGET_LENGTH = 2048
MAX_HOSTNAME_LENGTH = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, reason). Order matters only for the reason reported.
_BLOCKED_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
]
_BLOCKED_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    # Both reach an IPv4 host through a translator on the agent's own network, whatever
    # IPv4 address they embed: refused whole, public embedded address or not.
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "reserved (discard)"),
    ("2001::/23", "reserved (IETF protocol assignments)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
]
BLOCKED_NETWORKS = [(ipaddress.ip_network(n), why) for n, why in _BLOCKED_V4 + _BLOCKED_V6]

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# Legacy inet_aton spellings: decimal, octal or hex parts, 1 to 4 of them.
_IPV4_LEGACY = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)


class TargetError(ValueError):
    """The target is malformed. `field` names the input at fault."""

    def __init__(self, message: str, field: str = "target"):
        super().__init__(message)
        self.field = field
        self.message = message


class BlockedTarget(TargetError):
    """The target is (or resolves to) an address the policy refuses."""

    kind = "blocked_target"


@dataclass(frozen=True)
class Target:
    """A parsed target. `host` is a hostname or a canonical IP literal."""

    raw: str
    host: str
    scheme: str | None = None  # "http"/"https" when the target was a URL
    port: int | None = None
    path: str = "/"
    is_ip: bool = False
    host_unicode: str = ""  # the host for people to read (U-labels); == host for IPs and ASCII names

    def __post_init__(self):
        if not self.host_unicode:
            object.__setattr__(self, "host_unicode", self.host)

    @property
    def url(self) -> str | None:
        if not self.scheme:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{host}{port}{self.path}"


# --- Ranges the tests treat as public ---------------------------------------------
# Everything on a test machine is private (loopback, or the labs' 198.18.0.0/15), so a test
# of "an allowed target that redirects to loopback" needs an allowed target: an explicit
# list of ranges, honoured only on the `test` stage (HC_STAGE=test). Anywhere else it is
# refused when the API's settings or the agent's config are first read, loudly, and a
# check that meets it fails closed.
TEST_PUBLIC_RANGES_ENV = "HC_TEST_PUBLIC_RANGES"
TEST_STAGE = "test"


class UnsafePolicy(RuntimeError):
    """The policy was configured in a way that must never run (a test-only list off the test stage)."""


def test_public_networks(environ=None, stage: str | None = None) -> tuple:
    """The networks HC_TEST_PUBLIC_RANGES (comma-separated CIDRs) treats as public; () when unset.

    `stage` defaults to the environment's HC_STAGE. Raises UnsafePolicy off the test stage or
    for a value that is not a list of networks."""
    environ = os.environ if environ is None else environ
    raw = (environ.get(TEST_PUBLIC_RANGES_ENV) or "").strip()
    if not raw:
        return ()
    return _parse_test_public(raw, environ.get("HC_STAGE", "") if stage is None else stage)


@functools.lru_cache(maxsize=8)
def _parse_test_public(raw: str, stage: str) -> tuple:
    if stage != TEST_STAGE:
        raise UnsafePolicy(
            f"{TEST_PUBLIC_RANGES_ENV} is set on the {stage or '(unset)'!r} stage; it is honoured only on the "
            f"{TEST_STAGE!r} stage (HC_STAGE={TEST_STAGE}): unset it"
        )
    networks = []
    for part in raw.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip()))
        except ValueError:
            raise UnsafePolicy(
                f"{TEST_PUBLIC_RANGES_ENV}: {part.strip()!r} is not a network like 198.18.100.0/24"
            ) from None
    return tuple(networks)


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why `address` may not be probed, or None when it is a public address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if any(ip.version == net.version and ip in net for net in test_public_networks()):
        return None  # the test stage's stand-in for the internet
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in ipaddress.ip_network("::/96") and int(ip) > 1:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # IPv4-compatible, deprecated
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"{inner} (IPv4 embedded in IPv6)" if inner else None
    for network, why in BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return why
    if not ip.is_global:
        return "reserved"
    return None


def check_address(address: str | IPAddress, allow_private: bool) -> None:
    """Raise BlockedTarget when `address` is refused by the policy."""
    if allow_private:
        return
    why = blocked_reason(address)
    if why:
        raise BlockedTarget(f"{address} is a blocked address ({why}); probing it is not allowed")


def _parse_ip_literal(host: str) -> IPAddress | None:
    """An IP literal in any spelling a resolver would accept, or None for a name.

    A non-ASCII host is first mapped as IDNA would map it (UTS 46: fullwidth digits and
    dots become ASCII), so `０ｘ７ｆ０００００１` is the literal it will resolve as.
    """
    if not host.isascii():
        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except idna.IDNAError:
            return None  # not a literal; the hostname check names what is wrong
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        pass
    if _IPV4_LEGACY.match(host):
        # 127.1, 2130706433, 0x7f000001, 0177.0.0.1: what inet_aton and so
        # every libc resolver would turn into an address.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise TargetError(f"{host!r} looks like an IPv4 address but is not a valid one") from None
    return None


def _check_hostname(host: str) -> str:
    """The host name as DNS sees it (A-labels, lower case), or TargetError naming why not."""
    name = host.rstrip(".")
    if not name:
        raise TargetError(f"hostname must be 1 to {MAX_HOSTNAME_LENGTH} characters")
    if not name.isascii():
        name = _to_alabels(host, name)
    name = name.lower()
    if len(name) > MAX_HOSTNAME_LENGTH:
        raise TargetError(f"hostname must be 1 to {MAX_HOSTNAME_LENGTH} characters")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise TargetError(f"{host!r} is not a valid hostname (letters, digits, '-' and '.' only)")
    if labels[-1].isdigit():
        raise TargetError(f"{host!r} is not a valid hostname (top-level label is numeric)")
    return name


def _to_alabels(host: str, name: str) -> str:
    """IDNA 2008 (UTS 46 mapping, non-transitional): Unicode labels become xn-- labels."""
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise TargetError(f"{host!r} is not a valid hostname: {exc}") from None
    out = []
    for label in mapped.rstrip(".").split("."):
        if label.isascii():
            out.append(label)
            continue
        try:
            out.append(idna.alabel(label).decode("ascii"))
        except idna.IDNAError as exc:
            # e.g. an emoji: valid in IDNA 2003, not in IDNA 2008.
            raise TargetError(f"{host!r} is not a valid internationalized hostname (IDNA 2008): {exc}") from None
    return ".".join(out)


def to_unicode(name: str) -> str:
    """A host name for display: its xn-- labels decoded; a label that does not decode is kept as is."""
    labels = []
    for label in name.split("."):
        if label.startswith("xn--"):
            try:
                label = idna.ulabel(label)
            except idna.IDNAError:
                # e.g. an emoji domain typed as its A-label: show it, it is the user's own DNS name
                with suppress(UnicodeError):
                    label = label[4:].encode("ascii").decode("punycode")
        labels.append(label)
    return ".".join(labels)


def ascii_hostname(raw: str) -> str:
    """A host name (not a URL or literal) in the form DNS and getaddrinfo need; raises TargetError."""
    return _check_hostname(raw.strip())


def parse_target(raw: object, allow_private: bool = False) -> Target:
    """Parse a hostname, IP literal or http(s) URL, and apply the policy to literals.

    Names are not resolved here; the agent resolves and checks again.
    """
    if not isinstance(raw, str):
        raise TargetError("target must be a string")
    text = raw.strip()
    if not text:
        raise TargetError("target is required")
    if len(text) > MAX_TARGET_LENGTH:
        raise TargetError(f"target is longer than {MAX_TARGET_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise TargetError("target must not contain spaces or control characters")

    scheme = port = None
    path = "/"
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # e.g. an unbalanced or invalid [IPv6] host
            raise TargetError(f"target is not a valid URL: {exc}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise TargetError(f"URL scheme {parts.scheme!r} is not supported (use http or https)")
        scheme = parts.scheme.lower()
        if parts.username or parts.password:
            raise TargetError("URLs with credentials are not accepted")
        host = parts.hostname or ""
        if parts.netloc.startswith("[") and host:
            host = f"[{host}]"
        try:
            port = parts.port
        except ValueError:
            raise TargetError("URL port must be a number from 1 to 65535") from None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
    else:
        host = text
        if host.startswith("["):  # [v6] or [v6]:port
            end = host.find("]")
            if end < 0:
                raise TargetError("unbalanced '[' in IPv6 target")
            rest, host = host[end + 1 :], host[: end + 1]
            if rest:
                if not rest.startswith(":") or not rest[1:].isdigit():
                    raise TargetError("expected [IPv6]:port")
                port = int(rest[1:])
        elif host.count(":") == 1:
            host, _, port_text = host.partition(":")
            if not port_text.isdigit():
                raise TargetError("port after ':' must be a number from 1 to 65535")
            port = int(port_text)
        if "/" in host:
            raise TargetError("a path needs a URL: start the target with http:// or https://")
    if port is not None and not 1 <= port <= 65535:
        raise TargetError("port must be a number from 1 to 65535")
    if not host:
        raise TargetError("target has no host")

    ip = _parse_ip_literal(host)
    if ip is not None:
        check_address(ip, allow_private)
        return Target(raw=text, host=str(ip), scheme=scheme, port=port, path=path, is_ip=True)

    name = _check_hostname(host)
    if not allow_private and (name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)):
        raise BlockedTarget(f"{name} is a local name; probing it is not allowed")
    return Target(raw=text, host=name, scheme=scheme, port=port, path=path, is_ip=False, host_unicode=to_unicode(name))


def resolve(host: str, allow_private: bool, family: int = 0) -> list[str]:
    """Resolve `host` and return its addresses, in resolver order, when the policy allows them all.

    Raises BlockedTarget when any address is refused, and socket.gaierror
    when the name does not resolve. Callers connect to one of the returned
    addresses directly and never resolve the name a second time.
    """
    ip = _parse_ip_literal(host)
    if ip is not None:
        check_address(ip, allow_private)
        return [str(ip)]
    if not host.isascii():
        host = _check_hostname(host)  # getaddrinfo would apply IDNA 2003 (ß -> ss)
    infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = info[4][0].split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if allow_private:
        return addresses
    # One blocked address refuses the name: whoever answers for it is pointing it inside (a
    # rebinding setup, or a leak of internal addresses), and an answer is no promise of which
    # address a second lookup, a retry or another client would use.
    blocked = [(a, blocked_reason(a)) for a in addresses if blocked_reason(a)]
    if blocked:
        address, why = blocked[0]
        raise BlockedTarget(
            f"{host} resolves to {', '.join(addresses)}; {address} is a blocked address ({why}); "
            "probing it is not allowed"
        )
    return addresses


# --- What a check assumes when the target leaves something open ---------------
# Made explicit, in one home for these decisions, used by the API (so the stored options and
# the request say what will happen) and by the agent (so every result says
# what it assumed):
#
# - **Scheme and port of a bare host** (`example.com`, `example.com:8443`):
#   https, port 443, for http *and* tcp. A user who types a bare name expects
#   what a browser does with it, which today is HTTPS; an http check and a
#   tcp check of the same target must measure the same port, or their
#   numbers cannot be compared (before, http assumed https while tcp assumed
#   port 80). check-host.net asks for the port; Globalping's http defaults to
#   HTTPS. A URL target says its own scheme (http -> 80, https -> 443), and a
#   port given in the target or in the options wins.
# - **DNS of an IP target** is a PTR lookup of its reverse name. The API
#   stores `record_type: "PTR"` so the options line and the result say so; an
#   explicitly requested other type on an IP target is a 400 naming
#   `options.dns.record_type`, since it has no meaningful answer.
# - **ip_version** (4 or 6) must fit an IP literal it applies to (the target,
#   or for dns the resolver); a 400 naming `options.<type>.ip_version`
#   otherwise. Unset, the first address getaddrinfo answers wins.

DEFAULT_SCHEME = "https"
DEFAULT_PORTS = {"http": 80, "https": 443}


def http_endpoint(target: Target, options: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(scheme, port, assumed) of an http check's first request; `assumed` holds what the user did not say.

    A URL target is fetched as written (options.scheme/port apply to bare hosts only, as initial_url does).
    """
    if target.scheme:
        if target.port:
            return target.scheme, target.port, {}
        return target.scheme, DEFAULT_PORTS[target.scheme], {"port": DEFAULT_PORTS[target.scheme]}
    assumed: dict[str, Any] = {}
    scheme = options.get("scheme") or DEFAULT_SCHEME
    if scheme == DEFAULT_SCHEME:
        assumed["scheme"] = scheme  # the default (stored options cannot tell it from an explicit "https")
    port = options.get("port") or target.port
    if not port:
        port = DEFAULT_PORTS[scheme]
        assumed["port"] = port
    return scheme, port, assumed


def tcp_port(target: Target, options: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(port, assumed) of a tcp check: options.port, else the target's, else its scheme's default, else 443."""
    if options.get("port"):
        return int(options["port"]), {}
    if target.port:
        return target.port, {}
    port = DEFAULT_PORTS[target.scheme or DEFAULT_SCHEME]
    return port, {"port": port}


# The port a UDP probe goes to when neither options nor target name one: traceroute's classic
# base port, which nothing listens on, so the target answers with ICMP port unreachable.
UDP_PROBE_PORT = 33434


def probe_port(target: Target, options: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """(port, assumed) of a ping/traceroute/mtr probe: None for ICMP; for tcp as the tcp check
    (options.port, the target's, its scheme's default, else 443); for udp options.port, the
    target's, else UDP_PROBE_PORT."""
    proto = options.get("protocol") or "icmp"
    if proto == "tcp":
        return tcp_port(target, options)
    if proto == "udp":
        if options.get("port"):
            return int(options["port"]), {}
        if target.port:
            return target.port, {}
        return UDP_PROBE_PORT, {"port": UDP_PROBE_PORT}
    return None, {}


def assumed_for(check_type: str, target: Target, options: dict[str, Any]) -> dict[str, Any]:
    """What `check_type` assumes for `target` with these (normalized) options; {} when nothing."""
    if check_type == "http":
        return http_endpoint(target, options)[2]
    if check_type == "tcp":
        return tcp_port(target, options)[1]
    if check_type in ("ping", "traceroute", "mtr"):
        return probe_port(target, options)[1]
    if check_type == "dns" and target.is_ip:
        return {"record_type": "PTR", "query": "reverse name of the IP address"}
    return {}


def _ip_version_of(literal: str) -> int | None:
    try:
        return ipaddress.ip_address(literal.strip("[]")).version
    except ValueError:
        return None


def apply_assumptions(
    check_type: str, target: Target, given: dict[str, Any] | None, options: dict[str, Any], allow_private: bool = False
) -> dict[str, Any]:
    """The options to store for `check_type`, with the assumptions written in; raises OptionError,
    or BlockedTarget (field `options.dns.resolver`) for a resolver the policy refuses.

    `given` is what the request said (before defaults), `options` the normalized result.
    """
    given = given or {}
    prefix = f"options.{check_type}"
    out = dict(options)
    if check_type == "dns":
        if target.is_ip:
            asked = given.get("record_type")
            if asked is not None and str(asked).upper() != "PTR":
                raise OptionError(
                    f"{prefix}.record_type",
                    f"the target {target.host} is an IP address, which is looked up by its PTR record; "
                    f"use record_type PTR (or leave it out), or give a hostname for {str(asked).upper()}",
                )
            out["record_type"] = "PTR"
        if out.get("resolver"):
            out["resolver"] = _resolver(out["resolver"], f"{prefix}.resolver", allow_private)
        peer = out.get("resolver")
    elif check_type == "http" and out.get("headers"):
        _check_host_header(out["headers"], f"{prefix}.headers", allow_private)
        peer = target.host if target.is_ip else None
    else:
        peer = target.host if target.is_ip else None
    wanted = out.get("ip_version")
    have = _ip_version_of(peer) if peer else None
    if wanted and have and wanted != have:
        what = "the resolver" if check_type == "dns" else "the target"
        raise OptionError(
            f"{prefix}.ip_version", f"ip_version {wanted} does not fit {what} {peer}, an IPv{have} address"
        )
    return out


def _resolver(value: str, field: str, allow_private: bool, what: str = "resolver") -> str:
    """A resolver option: an IP literal as given, or a host name in its A-label form.

    The target policy applies to it as to a target: a literal in a blocked range (127.0.0.1,
    169.254.169.254) or a local name is refused here; a name is resolved and checked again
    by the agent.
    """
    value = value.strip()
    try:
        ip = _parse_ip_literal(value)
    except TargetError as exc:
        raise OptionError(field, f"must be an IP address or a hostname: {exc.message}") from exc
    try:
        if ip is not None:
            check_address(ip, allow_private)
            return str(ip)
        name = ascii_hostname(value)
        if not allow_private and (name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)):
            raise BlockedTarget(f"{name} is a local name; using it as the {what} is not allowed")
        return name
    except BlockedTarget as exc:
        raise BlockedTarget(f"{what} {exc.message}", field=field) from exc
    except TargetError as exc:
        raise OptionError(field, f"must be an IP address or a hostname: {exc.message}") from exc


def _check_host_header(headers: dict[str, str], field: str, allow_private: bool) -> None:
    """A Host header may name another virtual host of the checked server, never a private one:
    the target policy applies to its value as to a target (the connection still goes only to
    the checked address)."""
    for name, value in headers.items():
        if name.lower() != "host":
            continue
        host = value.strip()
        if host.startswith("["):
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        if not host:
            raise OptionError(f"{field}.{name}", "must name a host")
        _resolver(host, f"{field}.{name}", allow_private, what="Host header")


def target_view(raw: str, check_types: list[str], options: dict[str, Any] | None) -> dict[str, Any]:
    """For GET /api/checks/{id}: how the target reads (A-label and Unicode) and what each type assumed."""
    try:
        target = parse_target(raw, allow_private=True)  # it passed the policy when the check was created
    except TargetError:
        return {"target_info": None, "assumed": {}}
    info = {
        "host": target.host,
        "host_unicode": target.host_unicode,
        "is_ip": target.is_ip,
        "scheme": target.scheme,
        "port": target.port,
    }
    assumed = {t: assumed_for(t, target, (options or {}).get(t) or {}) for t in check_types}
    return {"target_info": info, "assumed": {t: a for t, a in assumed.items() if a}}
