"""Authoritative DNS servers for the dns check's depth tests: zones built with dnspython
(optionally DNSSEC-signed), served over UDP, TCP, DNS over TLS and DNS over HTTPS, with
delegations answered as referrals so a trace can walk root -> TLD -> zone.

Not the demo site's DNSServer (scripts/localcloud/demosite.py): that one answers a flat
dict of records; these answer from dns.zone.Zone objects, with RRSIGs when the query sets
the DO bit, every rrset for ANY, and NS referrals with glue below a zone cut.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ed25519

from scripts.localcloud.demosite import bind_udp_tcp_pair


def make_zone(origin: str, text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=origin, relativize=False)


def sign(zone: dns.zone.Zone) -> dns.rrset.RRset:
    """Sign `zone` in place with a fresh Ed25519 key (KSK and ZSK in one, flags 257); returns its DS."""
    key = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], lifetime=86400)
    ds = dns.dnssec.make_ds(zone.origin, dnskey, "SHA256")
    return dns.rrset.from_rdata(zone.origin, 3600, ds)


def _rrset(zone, name, rdtype, covers=dns.rdatatype.NONE):
    node = zone.get_node(name)
    if node is None:
        return None
    rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype, covers)
    if rdataset is None:
        return None
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype, covers)
    rrset.update(rdataset)
    return rrset


def answer(zone: dns.zone.Zone, wire: bytes) -> bytes:
    """An authoritative answer (or a referral) from `zone` to one query."""
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    dnssec_ok = bool(query.ednsflags & dns.flags.DO)
    question = query.question[0]
    qname, qtype = question.name, question.rdtype

    def add(section, name, rdtype):
        rrset = _rrset(zone, name, rdtype)
        if rrset is None:
            return False
        section.append(rrset)
        if dnssec_ok:
            sig = _rrset(zone, name, dns.rdatatype.RRSIG, rdtype)
            if sig is not None:
                section.append(sig)
        return True

    if not qname.is_subdomain(zone.origin):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    cut = _zone_cut(zone, qname)
    if cut is not None and not (
        qtype == dns.rdatatype.DS and cut == qname
    ):  # DS is the parent's own  # below a delegation: refer, with glue (and the DS when signed)
        add(response.authority, cut, dns.rdatatype.NS)
        add(response.authority, cut, dns.rdatatype.DS)
        for ns in _rrset(zone, cut, dns.rdatatype.NS) or ():
            add(response.additional, ns.target, dns.rdatatype.A)
        return response.to_wire()
    response.flags |= dns.flags.AA
    node = zone.get_node(qname)
    if node is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        add(response.authority, zone.origin, dns.rdatatype.SOA)
        return response.to_wire()
    if qtype == dns.rdatatype.ANY:
        for rdataset in node.rdatasets:
            if rdataset.rdtype != dns.rdatatype.RRSIG:
                add(response.answer, qname, rdataset.rdtype)
    elif not add(response.answer, qname, qtype):
        add(response.authority, zone.origin, dns.rdatatype.SOA)
        if dnssec_ok:
            add(response.authority, qname, dns.rdatatype.NSEC)
    return response.to_wire()


def _zone_cut(zone: dns.zone.Zone, qname: dns.name.Name) -> dns.name.Name | None:
    """The delegation point at or above qname (below the origin), if any."""
    name = qname
    while name != zone.origin and name.is_subdomain(zone.origin):
        if _rrset(zone, name, dns.rdatatype.NS) is not None:
            return name
        name = name.parent()
    return None


class ZoneServer:
    """One zone on UDP and TCP at host:port (port 0: any free one, the same number on both)."""

    def __init__(self, zone: dns.zone.Zone, host: str = "127.0.0.1", port: int = 0):
        self.zone = zone
        self.udp, self.tcp = bind_udp_tcp_pair(host, port)  # a UDP port taken on TCP is given back
        self.port = self.udp.getsockname()[1]
        self.tcp.listen(16)
        self.host = host
        self.queries: list[tuple[str, str]] = []  # (qname, qtype) in order
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_stream, args=(self.tcp, None), daemon=True).start()

    def respond(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
        return answer(self.zone, wire)

    def _serve_udp(self):
        while True:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            with contextlib.suppress(Exception):
                self.udp.sendto(self.respond(wire), peer)

    def _serve_stream(self, listener, tls: ssl.SSLContext | None):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._stream_conn, args=(conn, tls), daemon=True).start()

    def _stream_conn(self, conn, tls):
        with contextlib.suppress(Exception), conn:
            conn.settimeout(10)
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True)
            while True:
                head = _recv(conn, 2)
                if not head:
                    return
                reply = self.respond(_recv(conn, struct.unpack("!H", head)[0]))
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def serve_dot(self, tls: ssl.SSLContext) -> int:
        """DNS over TLS (RFC 7858) on another port of the same host; returns the port."""
        listener = socket.create_server((self.host, 0))
        self._dot = listener
        threading.Thread(target=self._serve_stream, args=(listener, tls), daemon=True).start()
        return listener.getsockname()[1]

    def serve_doh(self, tls: ssl.SSLContext, path: str = "/dns-query") -> int:
        """DNS over HTTPS (RFC 8484, POST) on another port; returns the port."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != path or self.headers.get("Content-Type") != "application/dns-message":
                    self.send_response(415 if self.path == path else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                reply = server.respond(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/dns-message")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        httpd = ThreadingHTTPServer((self.host, 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        self._doh = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd.server_address[1]

    def stop(self):
        for sock in (self.udp, self.tcp, getattr(self, "_dot", None)):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        if getattr(self, "_doh", None) is not None:
            self._doh.shutdown()
            self._doh.server_close()


def _recv(conn, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = conn.recv(size - len(out))
        if not chunk:
            return out
        out += chunk
    return out
