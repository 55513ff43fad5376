"""dns depth: DNS over TLS and over HTTPS, DNSSEC, and the trace from the root.

Transports (options.dns.protocol), all over a socket the check opens itself to the
resolver address the target policy approved (connect_checked), so the
connect-only-to-the-checked-address rule holds for them as for udp/tcp:
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
referral: [ns names], ds: [...], answers, query_time_ms}.
"""

from __future__ import annotations

import http.client
import os
import ssl
import struct
import time

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from chalicelib import targets

from .base import USER_AGENT, CheckContext, CheckFailure, connect_checked, ms_since

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


def _tls_connect(ctx: CheckContext, server: str, port: int, name: str, alpn, transport: dict) -> ssl.SSLSocket:
    mark = time.monotonic()
    sock, _ = connect_checked(ctx, [server], port)
    transport["connect_ms"] = ms_since(mark)
    mark = time.monotonic()
    tls = ctx.track(_tls_context(alpn).wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False))
    try:
        tls.settimeout(ctx.remaining())
        tls.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        raise CheckFailure(
            "tls_error", f"resolver {name} port {port}: certificate verification failed: {exc.verify_message}"
        ) from exc
    transport.update(tls_ms=ms_since(mark), tls_version=tls.version(), alpn=tls.selected_alpn_protocol())
    return tls


def query_dot(ctx: CheckContext, query: dns.message.Message, server: str, port: int, name: str, transport: dict):
    tls = _tls_connect(ctx, server, port, name, None, transport)
    try:
        wire = query.to_wire()
        tls.sendall(struct.pack("!H", len(wire)) + wire)
        size = struct.unpack("!H", _read(ctx, tls, 2))[0]
        return dns.message.from_wire(_read(ctx, tls, size))
    finally:
        ctx.close(tls)


def _read(ctx: CheckContext, sock, size: int) -> bytes:
    out = b""
    while len(out) < size:
        sock.settimeout(ctx.remaining())
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise dns.exception.DNSException("the resolver closed the connection mid-answer")
        out += chunk
    return out


class _Reader:
    def __init__(self, sock):
        self._file = sock.makefile("rb")

    def makefile(self, *_args, **_kwargs):
        return self._file


def query_doh(
    ctx: CheckContext, query: dns.message.Message, server: str, port: int, name: str, path: str, transport: dict
):
    tls = _tls_connect(ctx, server, port, name, ["http/1.1"], transport)
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
        tls.settimeout(ctx.remaining())
        tls.sendall(head.encode("ascii") + wire)
        response = http.client.HTTPResponse(_Reader(tls), method="POST")
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
    finally:
        ctx.close(tls)


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


def dnssec_view(response: dns.message.Message, fetch_dnskey) -> dict:
    """`data.dnssec` for a response to a DO query; fetch_dnskey(name) -> the DNSKEY response."""
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
        keys_response = fetch_dnskey(signer)
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


def trace(ctx: CheckContext, qname: dns.name.Name, rdtype: int, start: list[str], port: int, tcp: bool, dnssec: bool):
    """Walk the delegations from `start` to an authoritative answer; (steps, last response)."""
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
                if tcp:
                    response = dns.query.tcp(query, address, port=port, timeout=ctx.remaining())
                else:
                    response = dns.query.udp(query, address, port=port, timeout=ctx.remaining())
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
                    servers += [
                        (a, ns.target.to_text()) for a in targets.resolve(ns.target.to_text(), ctx.allow_private)
                    ]
                except (OSError, targets.TargetError):
                    continue
        if not servers:
            raise CheckFailure("dns_failure", f"trace: the referral to {referral.name} names no reachable server")
        zone = referral.name.to_text()
    raise CheckFailure("dns_failure", f"trace: no answer after {MAX_TRACE_STEPS} delegations")
