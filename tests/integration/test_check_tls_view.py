"""The http check's TLS view against local servers with trustme certificates: the full chain
(subject, issuer, validity, key, fingerprint per certificate), OCSP stapling present or
not, the ALPN protocol and the SAN/hostname match, each against what the server was given."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from agent.checks import run_check
from scripts.localcloud.demosite import serve_http


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A root, an intermediate and an RSA leaf for localhost; the agent trusts the root."""
    root = trustme.CA(key_type=trustme.KeyType.RSA)
    intermediate = root.create_child_ca(key_type=trustme.KeyType.ECDSA)
    leaf = intermediate.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA)
    bundle = tmp_path_factory.mktemp("ca") / "root.pem"
    bundle.write_bytes(root.cert_pem.bytes())
    return root, intermediate, leaf, str(bundle)


@pytest.fixture()
def trusted(pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", pki[3])
    return pki


def _serve(context):
    server = serve_http("127.0.0.1", 0, context)
    return server, f"https://localhost:{server.server_address[1]}/ok"


def test_the_full_chain_is_reported_certificate_by_certificate(trusted):
    _, intermediate, leaf, _ = trusted
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    server, url = _serve(context)
    try:
        result = run_check("http", url, {}, allow_private=True)
    finally:
        server.shutdown()
    assert result["success"] is True, result["error"]
    tls = result["data"]["tls"]
    sent = [_cert(blob.bytes()) for blob in leaf.cert_chain_pems]  # leaf, then the intermediate
    assert len(sent) == 2 and tls["chain_length"] == 2
    for seen, cert in zip(tls["chain"], sent, strict=True):
        assert seen["subject"] == cert.subject.rfc4514_string()
        assert seen["issuer"] == cert.issuer.rfc4514_string()
        assert seen["not_before"] == cert.not_valid_before_utc.isoformat()
        assert seen["not_after"] == cert.not_valid_after_utc.isoformat()
        assert seen["fingerprint_sha256"] == _fingerprint(cert)
        assert seen["serial"] == format(cert.serial_number, "x")
    leaf_view, intermediate_view = tls["chain"]
    assert (leaf_view["key_type"], leaf_view["key_bits"], leaf_view["is_ca"]) == ("RSA", 2048, False)
    assert (intermediate_view["key_type"], intermediate_view["is_ca"]) == ("EC", True)
    assert intermediate_view["curve"] == _cert(intermediate.cert_pem.bytes()).public_key().curve.name
    assert tls["fingerprint_sha256"] == leaf_view["fingerprint_sha256"]
    assert (tls["key_type"], tls["key_bits"]) == ("RSA", 2048)
    assert tls["hostname_match"] == {"host": "localhost", "matched": True, "by": "san:localhost"}
    assert tls["alpn"] == "http/1.1" or tls["alpn"] is None  # the demo server does not negotiate ALPN
    assert tls["ocsp"]["stapled"] is None  # not asked: ocsp is off by default
    server, url = _serve(context)
    try:
        asked = run_check("http", url, {"ocsp": True}, allow_private=True)
    finally:
        server.shutdown()
    assert asked["data"]["tls"]["ocsp"]["stapled"] is False  # asked, and the stdlib server staples nothing


def test_a_certificate_for_another_name_reports_no_hostname_match_and_still_the_chain(pki):
    root = trustme.CA()
    leaf = root.issue_cert("other.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    server, url = _serve(context)
    try:
        failed = run_check("http", url, {}, allow_private=True)
        unverified = run_check("http", url, {"verify_tls": False}, allow_private=True)
    finally:
        server.shutdown()
    assert failed["error"]["kind"] == "tls_error"
    for result in (failed, unverified):
        tls = result["data"]["tls"]
        assert tls["hostname_match"] == {"host": "localhost", "matched": False, "by": None}
        assert tls["chain"][0]["fingerprint_sha256"] == _fingerprint(_cert(leaf.cert_chain_pems[0].bytes()))
    assert unverified["success"] is True


def test_the_alpn_protocol_the_server_chose_is_reported(trusted):
    _, _, leaf, _ = trusted
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    server, url = _serve(context)
    try:
        result = run_check("http", url, {}, allow_private=True)
    finally:
        server.shutdown()
    assert result["data"]["tls"]["alpn"] == "http/1.1"


def _ocsp_response(leaf_pem: bytes, issuer, this_update: dt.datetime) -> bytes:
    cert = _cert(leaf_pem)
    issuer_cert = _cert(issuer.cert_pem.bytes())
    issuer_key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), None)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer_cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=this_update,
            next_update=this_update + dt.timedelta(days=7),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer_cert)
    )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_stapled_ocsp_response_is_reported_with_its_status(trusted):
    from OpenSSL import SSL  # pyOpenSSL (requirements-dev): the stdlib ssl module cannot staple

    _, intermediate, leaf, _ = trusted
    this_update = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    staple = _ocsp_response(leaf.cert_chain_pems[0].bytes(), intermediate, this_update)
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.use_certificate(_cert(leaf.cert_chain_pems[0].bytes()))
    context.add_extra_chain_cert(_load_pyopenssl_cert(leaf.cert_chain_pems[1].bytes()))
    context.use_privatekey(serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None))
    context.set_ocsp_server_callback(lambda _conn, _data: staple)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=_serve_once_pyopenssl, args=(listener, context), daemon=True)
    thread.start()
    try:
        result = run_check("http", f"https://localhost:{port}/", {"ocsp": True}, allow_private=True)
    finally:
        listener.close()
        thread.join(10)
    assert result["success"] is True, result["error"]
    assert result["data"]["tls"]["ocsp"] == {
        "stapled": True,
        "status": "successful",
        "cert_status": "good",
        "this_update": this_update.isoformat(),
        "next_update": (this_update + dt.timedelta(days=7)).isoformat(),
        "produced_at": result["data"]["tls"]["ocsp"]["produced_at"],
    }


def _load_pyopenssl_cert(pem: bytes):
    from OpenSSL import crypto

    return crypto.X509.from_cryptography(_cert(pem))


def _serve_once_pyopenssl(listener: socket.socket, context) -> None:
    from OpenSSL import SSL

    try:
        sock, _ = listener.accept()
    except OSError:
        return
    conn = SSL.Connection(context, sock)
    conn.set_accept_state()
    try:
        conn.do_handshake()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.shutdown()
    except SSL.Error:
        pass
    finally:
        sock.close()
