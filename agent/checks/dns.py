"""dns: one query, as `dig` would send it, and the answer as the resolver gave it.

- The name queried is the target's host (a URL's host) in its A-label form.
  An IP target is looked up in reverse: a PTR query for its reverse name
  (in-addr.arpa / ip6.arpa). The API stores record_type PTR for it; a task
  asking another type for an IP still gets the PTR query, and `note` says so.
- "No PTR record" is an answer about the address, not a failure of the
  target: a reverse lookup answered NXDOMAIN or NOERROR-without-records is a
  success with an empty `answers` and `note: "no PTR record for <ip>"`.
- options.ip_version picks the family of the resolver: a named resolver is
  resolved to that family, system resolvers of the other family are skipped.
  `ip_version` in the data is that of the resolver that answered.
- Resolver: options.resolver (an IP, or a name resolved under the target
  policy) on options.port, or None for the system resolver: the nameservers
  in /etc/resolv.conf, tried in order until one answers. A resolver the user
  names is subject to the target policy like any address we connect to; the
  operator's own resolv.conf is not (it is often 127.0.0.53).
- UDP falls back to TCP when the answer is truncated.
- success: rcode NOERROR with at least one answer record (or a reverse lookup
  with no PTR record, above). NXDOMAIN, SERVFAIL, REFUSED and empty answers
  fail with `dns_failure`, and the data (rcode, authority section, timing) is
  still reported.
- `address`: the first A/AAAA value in the answer, so per-agent results show
  which address each region was given; for a reverse lookup, the IP itself.
- Private answers: unless private targets are allowed, an A/AAAA answer in a
  range the target policy blocks (10/8, 127/8, fd00::/8, ...) is withheld (its
  value replaced by `withheld (<why>)`) and the check fails `blocked_target`.
  An agent's own resolver may serve private zones (on AWS, Route 53 private
  hosted zones): this keeps a public service from mapping the agent's network.
  Other record types are shown as answered.

It runs on the agent's event loop (`run` is a coroutine): the query goes out
on a connected non-blocking socket and the check awaits the answer, up to
its deadline, without holding a thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

from chalicelib import protocol, targets

from .base import CheckContext, CheckFailure, ip_version_of, ms_since, resolve_checked_async


def _records(rrsets) -> list[dict]:
    out = []
    for rrset in rrsets:
        for rdata in rrset:
            out.append(
                {
                    "name": rrset.name.to_text(),
                    "type": dns.rdatatype.to_text(rrset.rdtype),
                    "ttl": rrset.ttl,
                    "value": rdata.to_text(),
                }
            )
    return out


async def _resolvers(ctx: CheckContext) -> list[str]:
    chosen = ctx.options.get("resolver")
    if chosen:
        try:
            ip = ipaddress.ip_address(chosen.strip("[]"))
        except ValueError:
            return await resolve_checked_async(ctx, chosen)  # a resolver by name: resolved and checked
        targets.check_address(ip, ctx.allow_private)
        return [str(ip)]
    try:
        servers = dns.resolver.Resolver(configure=True).nameservers
    except dns.resolver.NoResolverConfiguration:
        servers = []
    servers = [s for s in servers if isinstance(s, str)]
    if not servers:
        raise CheckFailure("internal", "no system resolver is configured (/etc/resolv.conf has no nameserver)")
    version = ctx.options.get("ip_version")
    if version:
        servers = [s for s in servers if ip_version_of(s) == version]
        if not servers:
            raise CheckFailure("internal", f"no IPv{version} system resolver is configured (ip_version {version})")
    return servers


def withhold_blocked(answers: list[dict], allow_private: bool) -> str | None:
    """Replace, in place, every A/AAAA value the target policy blocks; the first reason, or None."""
    first = None
    if allow_private:
        return None
    for answer in answers:
        if answer["type"] not in ("A", "AAAA"):
            continue
        why = targets.blocked_reason(answer["value"])
        if why:
            answer["value"] = f"withheld ({why})"
            first = first or why
    return first


_IP_RECVERR, _IPV6_RECVERR = 11, 25


def _connected_udp_socket(server: str, port: int) -> socket.socket:
    """A non-blocking UDP socket connected to the resolver, as dig uses.

    On an unconnected socket (dnspython's default) the kernel drops the ICMP
    errors, so a resolver with nothing on the port, or a router saying the
    network is unreachable, would only show up as a timeout at the deadline;
    connected, they come back at once as ECONNREFUSED / EHOSTUNREACH and the
    check reports `refused` / `unreachable`.
    """
    v6 = ":" in server
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        try:
            # Linux passes "host/net unreachable" to a UDP socket only with RECVERR
            # (port unreachable it passes anyway). Not in the socket module: 11 / 25.
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        except OSError:
            pass  # not Linux: those errors then show up as a timeout
        sock.connect((server, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _udp_exchange(query: dns.message.Message, server: str, port: int) -> tuple[dns.message.Message, bool]:
    """The query over UDP, and over TCP when the answer is truncated (as dig); (response, used TCP)."""
    loop = asyncio.get_running_loop()
    with _connected_udp_socket(server, port) as sock:
        await loop.sock_sendall(sock, query.to_wire())
        while True:
            wire = await loop.sock_recv(sock, 65535)
            try:
                response = dns.message.from_wire(wire, raise_on_truncation=True)
            except dns.message.Truncated as truncated:
                if query.is_response(truncated.message()):
                    return await _tcp_exchange(query, server, port), True
                continue
            if query.is_response(response):
                return response, False
            # Anything else (a late answer to another query on this port) is not ours: wait on.


async def _tcp_exchange(query: dns.message.Message, server: str, port: int) -> dns.message.Message:
    """The query over TCP: two length-prefixed messages on one connection."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (server, port))
        wire = query.to_wire()
        await loop.sock_sendall(sock, len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(await _recv_exactly(loop, sock, 2), "big")
        response = dns.message.from_wire(await _recv_exactly(loop, sock, size))
    if not query.is_response(response):
        raise dns.query.BadResponse
    return response


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ConnectionResetError("the resolver closed the TCP connection mid-answer")
        data += chunk
    return bytes(data)


async def run(ctx: CheckContext) -> dict:
    opts = ctx.options
    record_type = opts["record_type"]
    t = ctx.target
    note = None
    if t.is_ip:
        qname = dns.reversename.from_address(t.host)
        if record_type != "PTR":
            note = f"{t.host} is an IP address: looked up by its PTR record, not {record_type}"
        record_type = "PTR"
    else:
        qname = dns.name.from_text(t.host)
    servers = await _resolvers(ctx)
    port = int(opts["port"])
    query = dns.message.make_query(qname, dns.rdatatype.from_text(record_type))
    data = {
        "query": qname.to_text(),
        "record_type": record_type,
        "resolver": servers[0],
        "port": port,
        "protocol": opts["protocol"],
        "rcode": None,
        "answers": [],
        "authority": [],
        "query_time_ms": None,
        "truncated_retried": False,
        "ip_version": ip_version_of(servers[0]),
        "note": note,
    }

    response = last_error = None
    for server in servers:
        data["resolver"], data["ip_version"] = server, ip_version_of(server)
        ctx.remaining()  # the deadline is spent: a timeout, not a try of the next resolver
        started = time.monotonic()
        try:
            async with asyncio.timeout_at(ctx.deadline):
                if opts["protocol"] == "tcp":
                    response = await _tcp_exchange(query, server, port)
                else:
                    response, data["truncated_retried"] = await _udp_exchange(query, server, port)
            data["query_time_ms"] = ms_since(started)
            break
        except TimeoutError:
            data["query_time_ms"] = ms_since(started)
            last_error = dns.exception.Timeout()
            if opts.get("resolver"):
                break
        except OSError as exc:
            data["query_time_ms"] = ms_since(started)
            last_error = exc  # try the next system resolver, if any
            if opts.get("resolver"):
                break
    if response is None:
        if isinstance(last_error, dns.exception.Timeout):
            raise CheckFailure(
                "timeout", f"no answer from {data['resolver']} port {port} within {ctx.timeout_s:g} s", data=data
            )
        raise CheckFailure(
            "unreachable" if not isinstance(last_error, ConnectionRefusedError) else "refused",
            f"resolver {data['resolver']} port {port}: {last_error}",
            data=data,
        )

    rcode = dns.rcode.to_text(response.rcode())
    data["rcode"] = rcode
    data["answers"] = _records(response.answer)
    data["authority"] = _records(response.authority)
    data["authoritative"] = bool(response.flags & dns.flags.AA)
    blocked = withhold_blocked(data["answers"], ctx.allow_private)
    if blocked:
        raise CheckFailure(
            "blocked_target",
            f"{qname} {record_type}: the answer holds an address in a blocked range "
            f"({blocked}); such answers are withheld unless private targets are allowed",
            data=data,
        )
    address = next((a["value"] for a in data["answers"] if a["type"] in ("A", "AAAA")), None)
    if t.is_ip:
        address = t.host  # a reverse lookup is about this address
    if t.is_ip and rcode in ("NXDOMAIN", "NOERROR") and not data["answers"]:
        no_ptr = f"no PTR record for {t.host} ({rcode} for {qname})"
        data["note"] = f"{note}; {no_ptr}" if note else no_ptr
        return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
    if rcode != "NOERROR":
        raise CheckFailure(
            "dns_failure", f"{qname} {record_type}: {rcode} from {data['resolver']}", data=data, address=address
        )
    if not data["answers"]:
        raise CheckFailure(
            "dns_failure", f"{qname} has no {record_type} records (NOERROR, empty answer)", data=data, address=address
        )
    return protocol.result_envelope(True, ctx.elapsed_ms(), address, data)
