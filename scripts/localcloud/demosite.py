"""A small demo site: HTTP, HTTPS (its own self-signed certificate) and DNS.

It stands in for "the internet" in the local stack (run inside the demo
namespace that scripts/netlab.py builds) and serves the agent's check tests.
Importable (`DemoSite(...).start()` / `.stop()`, or the single servers) and a
CLI (`python scripts/demosite.py --help`).

HTTP paths (on both HTTP and HTTPS):
    /                  200, a small page
    /ok                200
    /r/301, /r/302     301 -> /r/302 -> 302 -> /ok (a redirect chain)
    /loop              302 -> /loop, forever
    /to?url=U          302 -> U
    /status/NNN        that status
    /slow?ms=N         waits N ms before answering
    /big?bytes=N       a body of N bytes (Content-Length), streamed
DNS: the zone given, with CNAME chasing inside it, NXDOMAIN for other names,
over UDP and TCP.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CHUNK = 64 * 1024


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HostCheckerDemo/1.0"

    def log_message(self, *_args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path in ("/", "/ok"):
            self._send(200, b"Host Checker demo site\n")
        elif path == "/r/301":
            self._send(301, b"", {"Location": "/r/302"})
        elif path == "/r/302":
            self._send(302, b"", {"Location": "/ok"})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif path == "/to":
            self._send(302, b"", {"Location": query.get("url", "/")})
        elif path.startswith("/status/") and path[8:].isdigit():
            status = int(path[8:])
            self._send(status, f"status {status}\n".encode())
        elif path == "/slow":
            time.sleep(int(query.get("ms", "1000")) / 1000)
            self._send(200, b"slow\n")
        elif path == "/big":
            size = int(query.get("bytes", str(10 * 1024 * 1024)))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            block = b"x" * CHUNK
            try:
                while size > 0:
                    self.wfile.write(block[: min(CHUNK, size)])
                    size -= CHUNK
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client stopped reading (as the capped check does)
        else:
            self._send(404, b"not found\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, tls: ssl.SSLContext | None = None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.tls = tls
        self.accepted_from: list = []  # client address of each TCP connection accepted, in order (tests count them)
        super().__init__(address, handler)

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that
        # hangs for the resolver's timeout inside a namespace without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, addr = super().get_request()
        self.accepted_from.append(addr[:2])  # only the serving thread accepts
        if self.tls is not None:
            # Handshake on the handler thread, so a slow client blocks only itself.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls is not None:
            try:
                request.settimeout(10)
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # e.g. a client that rejected our certificate
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-response are normal here


def self_signed_certificate(names: list[str], days: int = 90) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM): a self-signed certificate for DNS names and IP addresses."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Host Checker demo"),
        ]
    )
    alt = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_tls_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


def serve_http(host: str, port: int = 0, tls: ssl.SSLContext | None = None) -> _HTTPServer:
    """An HTTP(S) server with the demo paths, running on a daemon thread."""
    server = _HTTPServer((host, port), DemoHandler, tls)
    threading.Thread(target=server.serve_forever, name="demo-http", daemon=True).start()
    return server


# --- DNS ---------------------------------------------------------------------


def default_zone(name: str, address: str) -> dict[str, list[tuple[str, int, str]]]:
    """{owner name: [(type, ttl, value)]} for a demo domain."""
    name = name.rstrip(".") + "."
    return {
        name: [
            ("A", 300, address),
            ("AAAA", 300, "2001:db8::10"),
            ("MX", 300, f"10 mail.{name}"),
            ("TXT", 300, '"v=spf1 -all"'),
            ("NS", 300, f"ns.{name}"),
            ("SOA", 300, f"ns.{name} hostmaster.{name} 1 3600 600 86400 60"),
        ],
        f"www.{name}": [("CNAME", 300, name)],
        f"mail.{name}": [("A", 300, address)],
        f"ns.{name}": [("A", 300, address)],
    }


def bind_udp_tcp_pair(host: str, port: int, attempts: int = 20) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on one port number.

    With port 0 the kernel picks a free UDP port, and the same number may already be
    taken on TCP (by a listener or a connection's local end), so a taken pair is
    given back and another is tried."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts if port == 0 else 1):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            udp.bind((host, port))
            tcp.bind((host, udp.getsockname()[1]))
            return udp, tcp
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE or port != 0:
                raise
    raise OSError(errno.EADDRINUSE, f"no port free on both UDP and TCP at {host} after {attempts} tries")


class DNSServer:
    """An authoritative-looking server for one small zone, on UDP and TCP."""

    def __init__(self, host: str, port: int = 0, zone: dict | None = None):
        import dns.rdatatype  # noqa: F401 - fail early when dnspython is missing

        self.zone = {k.lower().rstrip(".") + ".": v for k, v in (zone or {}).items()}
        self.udp, self.tcp = bind_udp_tcp_pair(host, port)
        self.port = self.udp.getsockname()[1]
        self.tcp.listen(16)
        self.address = host
        self._stopped = False
        for target, name in ((self._serve_udp, "demo-dns-udp"), (self._serve_tcp, "demo-dns-tcp")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def answer(self, wire: bytes) -> bytes:
        import dns.flags
        import dns.message
        import dns.name
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset

        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        qname, qtype = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        seen = set()
        while qname not in seen:
            seen.add(qname)
            records = self.zone.get(qname)
            if records is None:
                if not response.answer:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                    soa = self._soa_for(qname)
                    if soa:
                        response.authority.append(soa)
                break
            matching = [r for r in records if r[0] == qtype]
            cname = [r for r in records if r[0] == "CNAME"]
            if matching or not cname or qtype == "CNAME":
                for rtype, ttl, value in matching:
                    response.answer.append(dns.rrset.from_text(qname, ttl, "IN", rtype, value))
                break
            _, ttl, value = cname[0]
            response.answer.append(dns.rrset.from_text(qname, ttl, "IN", "CNAME", value))
            qname = value.lower()
        return response.to_wire()

    def _soa_for(self, qname: str):
        import dns.rrset

        for owner, records in self.zone.items():
            if qname.endswith("." + owner) or qname == owner:
                for rtype, ttl, value in records:
                    if rtype == "SOA":
                        return dns.rrset.from_text(owner, ttl, "IN", "SOA", value)
        return None

    def _serve_udp(self):
        while not self._stopped:
            try:
                wire, peer = self.udp.recvfrom(65535)
                self.udp.sendto(self.answer(wire), peer)
            except OSError:
                if self._stopped:
                    return
            except Exception:  # noqa: BLE001 - a malformed query must not stop the server
                continue

    def _serve_tcp(self):
        while not self._stopped:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    size = struct.unpack("!H", _recv_exact(conn, 2))[0]
                    reply = self.answer(_recv_exact(conn, size))
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except Exception:  # noqa: BLE001
                    continue

    def stop(self):
        self._stopped = True
        for sock in (self.udp, self.tcp):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("short read")
        data += chunk
    return data


class DemoSite:
    """HTTP, HTTPS and DNS for `name` on `address`; ports 0 pick free ones."""

    def __init__(
        self,
        address: str,
        name: str = "demo.hostchecker.test",
        http_port: int = 0,
        https_port: int = 0,
        dns_port: int = 0,
    ):
        self.address, self.name = address, name
        self.ports = {"http": http_port, "https": https_port, "dns": dns_port}
        self.servers: list = []
        self.cert_pem = b""

    def start(self) -> DemoSite:
        self.cert_pem, key_pem = self_signed_certificate([self.name, f"www.{self.name}", self.address])
        http = serve_http(self.address, self.ports["http"])
        https = serve_http(self.address, self.ports["https"], server_tls_context(self.cert_pem, key_pem))
        dns_server = DNSServer(self.address, self.ports["dns"], default_zone(self.name, self.address))
        self.servers = [http, https, dns_server]
        self.ports = {"http": http.server_address[1], "https": https.server_address[1], "dns": dns_server.port}
        return self

    def stop(self) -> None:
        for server in self.servers:
            if isinstance(server, DNSServer):
                server.stop()
            else:
                server.shutdown()
                server.server_close()
        self.servers = []

    def describe(self) -> dict:
        return {
            "address": self.address,
            "name": self.name,
            "ports": self.ports,
            "urls": [f"http://{self.address}:{self.ports['http']}/", f"https://{self.address}:{self.ports['https']}/"],
        }
