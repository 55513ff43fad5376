"""What a check assumes when the target leaves something open, made explicit.

One home for these decisions, used by the API (so the stored options and
the request say what will happen) and by the agent (so every result says
what it assumed):

- **Scheme and port of a bare host** (`example.com`, `example.com:8443`):
  https, port 443, for http *and* tcp. A user who types a bare name expects
  what a browser does with it, which today is HTTPS; an http check and a
  tcp check of the same target must measure the same port, or their
  numbers cannot be compared (before, http assumed https while tcp assumed
  port 80). check-host.net asks for the port; Globalping's http defaults to
  HTTPS. A URL target says its own scheme (http -> 80, https -> 443), and a
  port given in the target or in the options wins.
- **DNS of an IP target** is a PTR lookup of its reverse name. The API
  stores `record_type: "PTR"` so the options line and the result say so; an
  explicitly requested other type on an IP target is a 400 naming
  `options.dns.record_type`, since it has no meaningful answer.
- **ip_version** (4 or 6) must fit an IP literal it applies to (the target,
  or for dns the resolver); a 400 naming `options.<type>.ip_version`
  otherwise. Unset, the first address getaddrinfo answers wins.

Pure: imports only the protocol and target-policy modules.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from .protocol import OptionError
from .targets import Target, TargetError, ascii_hostname, parse_target

DEFAULT_SCHEME = "https"
DEFAULT_PORTS = {"http": 80, "https": 443}


def http_endpoint(target: Target, options: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(scheme, port, assumed) of an http check's first request; `assumed` holds what the user did not say."""
    assumed: dict[str, Any] = {}
    scheme = target.scheme
    if not scheme:
        scheme = options.get("scheme") or DEFAULT_SCHEME
        if options.get("scheme") in (None, DEFAULT_SCHEME):
            assumed["scheme"] = scheme  # the default, or the option's default value
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


def assumed_for(check_type: str, target: Target, options: dict[str, Any]) -> dict[str, Any]:
    """What `check_type` assumes for `target` with these (normalized) options; {} when nothing."""
    if check_type == "http":
        return http_endpoint(target, options)[2]
    if check_type == "tcp":
        return tcp_port(target, options)[1]
    if check_type == "dns" and target.is_ip:
        return {"record_type": "PTR", "query": "reverse name of the IP address"}
    return {}


def _ip_version_of(literal: str) -> int | None:
    try:
        return ipaddress.ip_address(literal.strip("[]")).version
    except ValueError:
        return None


def apply(check_type: str, target: Target, given: dict[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    """The options to store for `check_type`, with the assumptions written in; raises OptionError.

    `given` is what the request said (before defaults), `options` the normalized result.
    """
    given = given or {}
    prefix = f"options.{check_type}"
    out = dict(options)
    if check_type == "dns":
        if target.is_ip:
            asked = given.get("record_type")
            if asked is not None and str(asked).upper() != "PTR":
                raise OptionError(f"{prefix}.record_type",
                                  f"the target {target.host} is an IP address, which is looked up by its PTR record; "
                                  f"use record_type PTR (or leave it out), or give a hostname for {str(asked).upper()}")
            out["record_type"] = "PTR"
        if out.get("resolver"):
            out["resolver"] = _resolver(out["resolver"], f"{prefix}.resolver")
        peer = out.get("resolver")
    else:
        peer = target.host if target.is_ip else None
    wanted = out.get("ip_version")
    have = _ip_version_of(peer) if peer else None
    if wanted and have and wanted != have:
        what = "the resolver" if check_type == "dns" else "the target"
        raise OptionError(f"{prefix}.ip_version", f"is {wanted}, but {what} {peer} is an IPv{have} address")
    return out


def _resolver(value: str, field: str) -> str:
    """A resolver option: an IP literal as given, or a host name in its A-label form."""
    value = value.strip()
    if _ip_version_of(value):
        return value.strip("[]")
    try:
        return ascii_hostname(value)
    except TargetError as exc:
        raise OptionError(field, f"must be an IP address or a hostname: {exc.message}")


def target_view(raw: str, check_types: list[str], options: dict[str, Any] | None) -> dict[str, Any]:
    """For GET /api/checks/{id}: how the target reads (A-label and Unicode) and what each type assumed."""
    try:
        target = parse_target(raw, allow_private=True)  # it passed the policy when the check was created
    except TargetError:
        return {"target_info": None, "assumed": {}}
    info = {"host": target.host, "host_unicode": target.host_unicode, "is_ip": target.is_ip,
            "scheme": target.scheme, "port": target.port}
    assumed = {t: assumed_for(t, target, (options or {}).get(t) or {}) for t in check_types}
    return {"target_info": info, "assumed": {t: a for t, a in assumed.items() if a}}
