"""dns depth: DNS over TLS and over HTTPS, DNSSEC, and the trace from the root.

Transports (options.dns.protocol), all over a socket the check opens itself to the
resolver address the target policy approved (connect_checked_async), so the
connect-only-to-the-checked-address rule holds for them as for udp/tcp. Like the rest of
the dns check they run on the agent's event loop: TLS is asyncio's own over that socket,
and every wait is bounded by the check's deadline (asyncio.timeout_at in dns.py).
- dot: RFC 7858, TCP + TLS on port 853; the two-byte length framing of DNS over TCP.
- doh: RFC 8484, an HTTP/1.1 POST of the wire-format query (application/dns-message) over
  TLS to https://<resolver>:443<doh_path>.
Both verify the resolver's certificate against the system trust store (SSL_CERT_FILE is
honoured) and the resolver as the user named it: its host name, else its IP address.
`data.transport` carries {connect_ms, tls_ms, tls_version, alpn} (and http_status for doh).

DNSSEC (options.dns.dnssec): the query sets the DO and AD bits. `data.dnssec` says
- `ad`: the resolver's own claim that it validated the answer (the AD flag);
- `rrsigs`: the signatures that came with the answer (signer, key tag, algorithm, expiry);
- `validation`: the agent's own check of the answer's signatures against the signer zone's
  DNSKEY set, fetched from the same server, and of that DNSKEY set's own signature.
  status `secure` (every answer rrset verified), `bogus` (a signature does not verify:
  the message names which), `insecure` (no signatures: an unsigned zone, or a resolver
  that strips them). This checks the zone's own keys; the chain of trust from the root
  (DS records in each parent) is checked only with trace, whose steps carry the DS.

Trace (options.dns.trace): as `dig +trace`, non-recursive queries from the root down: each
step asks one server of the current zone, follows the referral (NS in the authority
section, addresses from the glue) until an authoritative answer. The start is
options.dns.resolver when given (a root server of one's own, as the tests have), else the
IANA root servers. Every server asked is an address the target policy must allow, on
options.dns.port. `data.trace` lists the steps: {zone, server, server_name, rcode,
referral: [ns names], ds: [...], answers, query_time_ms}. The queries go out through the
exchange dns.py gives (its connected UDP socket, or TCP), and a server name without glue is
resolved with resolve_checked_async, under the target policy.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import os
import ssl
import struct
import time
from collections.abc import Awaitable, Callable

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from chalicelib import targets

from .base import USER_AGENT, CheckContext, CheckFailure, connect_checked_async, ms_since, resolve_checked_async

# a.root-servers.net ... m (IANA root hints, IPv4)
ROOT_SERVERS = (
    "198.41.0.4",
    "170.247.170.2",
    "192.33.4.12",
    "199.7.91.13",
    "192.203.230.10",
    "192.5.5.241",
    "192.112.36.4",
    "198.97.190.53",
    "192.36.148.17",
    "192.58.128.30",
    "193.0.14.129",
    "199.7.83.42",
    "202.12.27.33",
)
MAX_TRACE_STEPS = 16
DOH_RESPONSE_CAP = 1 << 17  # a DNS message is at most 64 KB; this leaves room for the HTTP head

_contexts: dict[tuple, ssl.SSLContext] = {}


def _tls_context(alpn: list[str] | None) -> ssl.SSLContext:
    key = (tuple(alpn or ()), os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _contexts.get(key)
    if context is None:
        context = ssl.create_default_context()
        if alpn:
            context.set_alpn_protocols(alpn)
        _contexts[key] = context
    return context


async def _tls_connect(
    ctx: CheckContext, server: str, port: int, name: str, alpn, transport: dict
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TLS to `server` (checked by the policy again as it is connected), verified against `name`.

    The caller closes the writer; a failure here closes the socket.
    """
    mark = time.monotonic()
    sock, _ = await connect_checked_async(ctx, [server], port)
    transport["connect_ms"] = ms_since(mark)
    mark = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=_tls_context(alpn), server_hostname=name, limit=DOH_RESPONSE_CAP
        )
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise CheckFailure(
            "tls_error", f"resolver {name} port {port}: certificate verification failed: {exc.verify_message}"
        ) from exc
    except BaseException:
        sock.close()
        raise
    tls = writer.get_extra_info("ssl_object")
    transport.update(tls_ms=ms_since(mark), tls_version=tls.version(), alpn=tls.selected_alpn_protocol())
    return reader, writer


def _close(writer: asyncio.StreamWriter) -> None:
    """Close without waiting for the peer's close_notify: the answer is in, the deadline runs."""
    writer.close()


async def query_dot(ctx: CheckContext, query: dns.message.Message, server: str, port: int, name: str, transport: dict):
    reader, writer = await _tls_connect(ctx, server, port, name, None, transport)
    try:
        wire = query.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        try:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return dns.message.from_wire(await reader.readexactly(size))
        except asyncio.IncompleteReadError as exc:
            raise dns.exception.DNSException("the resolver closed the connection mid-answer") from exc
    finally:
        _close(writer)


class _Reader:
    def __init__(self, raw: bytes):
        self._file = io.BytesIO(raw)

    def makefile(self, *_args, **_kwargs):
        return self._file


async def query_doh(
    ctx: CheckContext, query: dns.message.Message, server: str, port: int, name: str, path: str, transport: dict
):
    reader, writer = await _tls_connect(ctx, server, port, name, ["http/1.1"], transport)
    try:
        wire = query.to_wire()
        authority = f"[{name}]" if ":" in name else name
        if port != 443:
            authority += f":{port}"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
            f"Content-Length: {len(wire)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + wire)
        await writer.drain()
        raw = bytearray()
        while len(raw) < DOH_RESPONSE_CAP:  # Connection: close, so the answer ends at the close
            chunk = await reader.read(DOH_RESPONSE_CAP - len(raw))
            if not chunk:
                break
            raw += chunk
    finally:
        _close(writer)
    response = http.client.HTTPResponse(_Reader(bytes(raw)), method="POST")
    response.begin()
    transport["http_status"] = response.status
    body = response.read(65535)
    if response.status != 200:
        raise CheckFailure(
            "dns_failure",
            f"DoH resolver https://{authority}{path} answered HTTP {response.status} {response.reason}",
        )
    kind = response.headers.get("content-type", "")
    if kind.split(";")[0].strip() != "application/dns-message":
        raise CheckFailure("dns_failure", f"DoH resolver answered {kind or 'no content type'}, not a DNS message")
    return dns.message.from_wire(body)


# ---- DNSSEC


def _rrsig_view(rrsigs: list[dns.rrset.RRset]) -> list[dict]:
    out = []
    for rrset in rrsigs:
        for sig in rrset:
            out.append(
                {
                    "covers": dns.rdatatype.to_text(sig.type_covered),
                    "signer": sig.signer.to_text(),
                    "key_tag": sig.key_tag,
                    "algorithm": dns.dnssec.algorithm_to_text(sig.algorithm),
                    "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sig.expiration)),
                }
            )
    return out


async def dnssec_view(response: dns.message.Message, fetch_dnskey) -> dict:
    """`data.dnssec` for a response to a DO query; `await fetch_dnskey(name)` -> the DNSKEY response."""
    sigs = [r for r in response.answer if r.rdtype == dns.rdatatype.RRSIG]
    signed = [r for r in response.answer if r.rdtype != dns.rdatatype.RRSIG]
    view = {"ad": bool(response.flags & dns.flags.AD), "rrsigs": _rrsig_view(sigs), "validation": None}
    if not sigs:
        view["validation"] = {"status": "insecure", "signer": None, "key_tags": [], "error": "the answer is unsigned"}
        return view
    signer = next(iter(sigs[0])).signer
    validation = {"status": "secure", "signer": signer.to_text(), "key_tags": [], "error": None}
    view["validation"] = validation
    try:
        keys_response = await fetch_dnskey(signer)
        keys = next((r for r in keys_response.answer if r.rdtype == dns.rdatatype.DNSKEY), None)
        if keys is None:
            raise dns.dnssec.ValidationFailure(f"{signer} has no DNSKEY records")
        validation["key_tags"] = sorted(dns.dnssec.key_id(k) for k in keys)
        key_sig = next((r for r in keys_response.answer if r.rdtype == dns.rdatatype.RRSIG), None)
        if key_sig is None:
            raise dns.dnssec.ValidationFailure(f"the DNSKEY set of {signer} is unsigned")
        dns.dnssec.validate(keys, key_sig, {signer: keys})
        for rrset in signed:
            sig = next((s for s in sigs if s.name == rrset.name and s.covers == rrset.rdtype), None)
            if sig is None:
                raise dns.dnssec.ValidationFailure(
                    f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} has no signature"
                )
            try:
                dns.dnssec.validate(rrset, sig, {signer: keys})
            except dns.dnssec.ValidationFailure as exc:
                raise dns.dnssec.ValidationFailure(
                    f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: {exc}"
                ) from exc
    except dns.dnssec.ValidationFailure as exc:
        validation.update(status="bogus", error=str(exc))
    except (dns.exception.DNSException, OSError) as exc:
        validation.update(status="indeterminate", error=f"fetching the DNSKEY of {signer} failed: {exc}")
    return view


# ---- trace


def _records(rrsets) -> list[dict]:
    return [
        {"name": r.name.to_text(), "type": dns.rdatatype.to_text(r.rdtype), "ttl": r.ttl, "value": rd.to_text()}
        for r in rrsets
        for rd in r
    ]


Exchange = Callable[[dns.message.Message, str], Awaitable[dns.message.Message]]


async def trace(
    ctx: CheckContext, qname: dns.name.Name, rdtype: int, start: list[str], exchange: Exchange, dnssec: bool
):
    """Walk the delegations from `start` to an authoritative answer; (steps, last response).

    `await exchange(query, address)` asks one server (dns.py's UDP or TCP exchange, on the
    port the options give).
    """
    steps: list[dict] = []
    servers = [(addr, None) for addr in start]
    zone = "."
    for _ in range(MAX_TRACE_STEPS):
        query = dns.message.make_query(qname, rdtype, want_dnssec=dnssec)
        query.flags &= ~dns.flags.RD
        response, step = None, None
        for address, name in servers:
            targets.check_address(address, ctx.allow_private)
            step = {"zone": zone, "server": address, "server_name": name, "rcode": None, "referral": [], "ds": []}
            steps.append(step)
            started = time.monotonic()
            try:
                response = await exchange(query, address)
                step["query_time_ms"] = ms_since(started)
                break
            except (dns.exception.DNSException, OSError) as exc:
                step.update(query_time_ms=ms_since(started), error=f"{type(exc).__name__}: {exc}")
        if response is None:
            raise CheckFailure("dns_failure", f"trace: no server of {zone} answered ({steps[-1].get('error')})")
        step["rcode"] = dns.rcode.to_text(response.rcode())
        step["answers"] = _records(response.answer)
        ns_sets = [r for r in response.authority if r.rdtype == dns.rdatatype.NS]
        if response.answer or response.rcode() != dns.rcode.NOERROR or not ns_sets:
            return steps, response
        referral = ns_sets[0]
        step["referral"] = sorted(ns.target.to_text() for ns in referral)
        step["ds"] = [rd.to_text() for r in response.authority if r.rdtype == dns.rdatatype.DS for rd in r]
        glue = {
            r.name: [rd.address for rd in r]
            for r in response.additional
            if r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        }
        servers = [(addr, ns.target.to_text()) for ns in referral for addr in glue.get(ns.target, [])]
        if not servers:  # no glue: resolve the server names under the policy
            for ns in referral:
                try:
                    servers += [(a, ns.target.to_text()) for a in await resolve_checked_async(ctx, ns.target.to_text())]
                except (OSError, targets.TargetError):
                    continue
        if not servers:
            raise CheckFailure("dns_failure", f"trace: the referral to {referral.name} names no reachable server")
        zone = referral.name.to_text()
    raise CheckFailure("dns_failure", f"trace: no answer after {MAX_TRACE_STEPS} delegations")
