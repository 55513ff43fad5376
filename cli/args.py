"""The command line. Every check type's flags are generated from the protocol's option
specs (names, defaults, bounds, choices), so they are the API's own options under the
same names: `--count`, `--record-type`, `--max-hops`, ... For `check`, which runs several
types, each is prefixed with its type: `--ping-count`, `--dns-record-type`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .protocol import CHECK_TYPES, OPTION_SPECS, OptionError, normalize_options

OPTION_DEST = "opt__{check_type}__{name}"
DESCRIPTIONS = {
    "http": "an HTTP(S) request: status, phase timings, redirects, TLS",
    "ping": "ICMP echo (or --protocol tcp/udp with --port): loss and round-trip times",
    "dns": "a DNS query: answers, rcode, query time",
    "tcp": "a TCP connect (the port from host:port or --port, else the API's default)",
    "traceroute": "the hops to the target (--protocol icmp/tcp/udp)",
    "mtr": "the hops probed over rounds: per-hop loss, RTT statistics and jitter",
}


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _converter(check_type: str, name: str, spec) -> Any:
    """argparse `type=`: convert, then validate with the protocol's own rules (the same
    message the API would give, naming the option)."""
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)

    def convert(text: str):
        try:
            if dict in kinds:
                value = json.loads(text)
            elif int in kinds and float in kinds:
                value = _number(text)
            elif int in kinds and str not in kinds:
                value = int(text)
            else:
                value = text
        except ValueError:
            what = "a JSON object" if dict in kinds else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if name == "body":
            return value  # its rules depend on --method; the API checks them together
        try:
            normalized = normalize_options(check_type, {name: value}, alone=True)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        # keep what the user typed (the API normalizes the same way), except a choice's case
        return normalized[name] if spec.choices else value

    convert.__name__ = name
    return convert


def _help(name: str, spec) -> str:
    parts = []
    if spec.choices:
        parts.append("/".join(map(str, spec.choices)))
    if spec.low is not None:
        parts.append(f"{spec.low:g}–{spec.high:g}")
    if spec.default is not None:
        parts.append(f"default {spec.default}")
    if spec.kind is dict:
        parts.append("JSON, as the API's option")
    return name.replace("_", " ") + (f" ({', '.join(parts)})" if parts else "")


def add_type_options(parser: argparse.ArgumentParser, check_type: str, prefixed: bool) -> None:
    group = parser.add_argument_group(f"{check_type} options (the API's options.{check_type}, same names and bounds)")
    for name, spec in OPTION_SPECS[check_type].items():
        flag = "--" + (f"{check_type}-" if prefixed else "") + name.replace("_", "-")
        flags = [flag]
        if check_type == "dns" and name == "record_type" and not prefixed:
            flags.append("--type")  # `hostchecker dns example.com --type MX`
        if check_type == "http" and name == "headers":
            group.add_argument(
                *(("--http-header",) if prefixed else ("-H", "--header")),
                dest=HEADER_DEST,
                action="append",
                type=_header_line,
                metavar="'NAME: VALUE'",
                help="a request header, as curl -H (repeatable; joins --headers)",
            )
        dest = OPTION_DEST.format(check_type=check_type, name=name)
        if spec.kind is bool:
            group.add_argument(
                *flags, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=_help(name, spec)
            )
        else:
            group.add_argument(
                *flags,
                dest=dest,
                type=_converter(check_type, name, spec),
                default=None,
                metavar=name.upper(),
                help=_help(name, spec),
            )


HEADER_DEST = "opt_http_header_lines"


def _header_line(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: a header is 'Name: value'")
    return name.strip(), value.strip()


def check_types_arg(text: str) -> list[str]:
    types = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [t for t in types if t not in CHECK_TYPES]
    if unknown or not types:
        raise argparse.ArgumentTypeError(
            f"unknown check type {', '.join(unknown) or repr(text)} (known: {', '.join(CHECK_TYPES)})"
        )
    return list(dict.fromkeys(types))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _at_least_one(text: str) -> int:
    value = _positive(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0.1 and 86400 seconds")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-url", help="the API's base URL (else HOSTCHECKER_API_URL, else the checkout's .local/stack.env)"
    )
    common.add_argument("--json", action="store_true", help="print the API's JSON and nothing else")
    return common


def _check_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("where and how")
    group.add_argument(
        "--from",
        dest="sources",
        metavar="WHERE",
        help="agents by name, id, region or location, comma-separated (GET /api/agents)",
    )
    group.add_argument("--limit", type=_at_least_one, help="at most this many agents")
    group.add_argument("--latency", action="store_true", help="print only the headline figures")
    group.add_argument("--share", action="store_true", help="print the UI permalink of the check")
    group.add_argument(
        "--repeat",
        type=_positive,
        metavar="N",
        help="run N times on the same agents (0: until Ctrl-C), with min/avg/max per agent",
    )
    group.add_argument(
        "--every", type=_seconds, metavar="SECONDS", help="seconds between runs (default 1); alone, repeat until Ctrl-C"
    )
    group.add_argument("--no-live", action="store_true", help="poll GET /api/checks/{id} instead of the live WebSocket")
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostchecker",
        description="Check a host from the Host Checker agents: HTTP, ping, DNS, TCP, traceroute, mtr.",
        epilog="exit codes: 0 every task succeeded, 1 a task failed, 2 usage or input error, "
        "3 API unreachable or 5xx, 4 rate limited",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common, check_flags = _common(), _check_flags()
    for check_type in CHECK_TYPES:
        p = sub.add_parser(
            check_type,
            parents=[common, check_flags],
            help=DESCRIPTIONS[check_type],
            description=f"Run {DESCRIPTIONS[check_type]}.",
        )
        p.add_argument("target", help="hostname, IP address or URL")
        add_type_options(p, check_type, prefixed=False)
        p.set_defaults(check_types=[check_type])
    p = sub.add_parser(
        "check",
        parents=[common, check_flags],
        help="several check types, one verdict",
        description="Run several check types against one target.",
    )
    p.add_argument("target", help="hostname, IP address or URL")
    p.add_argument(
        "--type",
        dest="check_types",
        type=check_types_arg,
        default=["http"],
        metavar="TYPES",
        help=f"comma-separated: {','.join(CHECK_TYPES)} (default http)",
    )
    for check_type in CHECK_TYPES:
        add_type_options(p, check_type, prefixed=True)
    sub.add_parser("agents", parents=[common], help="who is online, where, with latency stats")
    p = sub.add_parser("show", parents=[common], help="a past check")
    p.add_argument("check_id")
    p.add_argument("--share", action="store_true", help="print the UI permalink of the check")
    p.add_argument("--latency", action="store_true", help="print only the headline figures")
    p = sub.add_parser("history", parents=[common], help="past checks, newest first")
    p.add_argument("--target", help="only checks of this target (as the API stored it)")
    p.add_argument("--status", help="only checks in this status")
    p.add_argument("--limit", type=_at_least_one, default=20, help="how many (default 20)")
    sub.add_parser("limits", parents=[common], help="the rate-limit state, from the X-RateLimit headers")
    return parser


def type_options(ns: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The options the user gave, per requested check type (the API fills in the defaults)."""
    out: dict[str, dict[str, Any]] = {}
    values = vars(ns)
    for check_type in ns.check_types:
        given = {
            name: values[OPTION_DEST.format(check_type=check_type, name=name)]
            for name in OPTION_SPECS[check_type]
            if values.get(OPTION_DEST.format(check_type=check_type, name=name)) is not None
        }
        if check_type == "http" and values.get(HEADER_DEST):
            given["headers"] = {**(given.get("headers") or {}), **dict(values[HEADER_DEST])}
        if given:
            out[check_type] = given
    return out


def given_options_for_unrequested_types(ns: argparse.Namespace) -> list[str]:
    """`check --type http --ping-count 3`: flags for a type that is not run (a usage error)."""
    values = vars(ns)
    return sorted(
        f"--{t}-{name.replace('_', '-')}"
        for t in CHECK_TYPES
        if t not in ns.check_types
        for name in OPTION_SPECS[t]
        if values.get(OPTION_DEST.format(check_type=t, name=name)) is not None
    )
