"""The TLS view of one handshake: every certificate the server presented, whether it stapled
an OCSP response, and whether the leaf names the host, so regions can be compared
(the Results page flags agents that saw different certificates).

    chain      [{subject, issuer, not_before, not_after, key_type, key_bits, curve,
                 signature_algorithm, serial, fingerprint_sha256, is_ca}], leaf first, as sent
    ocsp       {stapled, status, cert_status, this_update, next_update, produced_at};
               stapled is null when this Python cannot ask (see request_ocsp)
    hostname_match   {matched, host, by}: the leaf's SAN (or, without one, its CN) against the
               host the check asked for, RFC 6125 rules (a wildcard stands for one leftmost label)

OCSP stapling (only with options.http.ocsp, see protocol.py for why): the standard
library's ssl module neither asks for a stapled response nor exposes one. OpenSSL does
both (SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE before the handshake,
SSL_CTRL_GET_TLSEXT_STATUS_REQ_OCSP_RESP after it), so they are called through ctypes on
the SSL object the ssl module made. The http check's ssl.SSLObject (TLS through memory BIOs
on the event loop) wraps the same _ssl._SSLSocket C object an SSLSocket does, as
`sslobj._sslobj`, so this works on either. Finding that object relies on CPython's layout of
_ssl._SSLSocket (the SSL* right after the weak reference to the socket); it is used only
when SSL_get_servername on it gives back the SNI name we set (or, with no SNI, its
SSL_CTX is the context's), so a different layout turns OCSP reporting off (stapled null)
instead of touching the wrong memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp

log = logging.getLogger(__name__)

_SET_STATUS_TYPE, _GET_OCSP_RESP, _STATUSTYPE_OCSP = 65, 70, 1
_SSL_PTR_OFFSET = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD, then Socket


def _load_libssl():
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # its symbol lookup reaches the libssl it links
        lib.SSL_ctrl.restype = ctypes.c_long
        lib.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_get_servername.restype = ctypes.c_char_p
        lib.SSL_get_servername.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        return lib
    except (OSError, AttributeError) as exc:  # a static build, another TLS library
        log.info("OCSP stapling is not reported: %s", exc)
        return None


_lib = _load_libssl()


def _ssl_pointer(tls_sock: ssl.SSLSocket | ssl.SSLObject, server_hostname: str | None) -> int | None:
    """The SSL* under `tls_sock`, confirmed: it carries the SNI name we set, or (an IP target
    sends none) it belongs to the SSL_CTX under the socket's context (that one's SSL_CTX*
    comes first after PyObject_HEAD in _ssl._SSLContext)."""
    obj = getattr(tls_sock, "_sslobj", None)
    if _lib is None or obj is None:
        return None
    ptr = ctypes.c_void_p.from_address(id(obj) + _SSL_PTR_OFFSET).value
    if not ptr:
        return None
    name = _lib.SSL_get_servername(ptr, 0)
    if name is not None:
        return ptr if name.decode("ascii", "replace") == server_hostname else None
    ctx_ptr = ctypes.c_void_p.from_address(id(tls_sock.context) + object.__basicsize__).value
    return ptr if ctx_ptr and _lib.SSL_get_SSL_CTX(ptr) == ctx_ptr else None


def request_ocsp(tls_sock: ssl.SSLSocket | ssl.SSLObject, server_hostname: str | None) -> bool:
    """Ask for a stapled OCSP response in the coming handshake; False when we cannot ask."""
    ptr = _ssl_pointer(tls_sock, server_hostname)
    if ptr is None:
        return False
    return _lib.SSL_ctrl(ptr, _SET_STATUS_TYPE, _STATUSTYPE_OCSP, None) == 1


def stapled_ocsp(tls_sock: ssl.SSLSocket | ssl.SSLObject, server_hostname: str | None) -> bytes | None:
    ptr = _ssl_pointer(tls_sock, server_hostname)
    if ptr is None:
        return None
    data = ctypes.c_char_p()
    length = _lib.SSL_ctrl(ptr, _GET_OCSP_RESP, 0, ctypes.cast(ctypes.byref(data), ctypes.c_void_p))
    if length <= 0 or not data.value:
        return b""
    return ctypes.string_at(data, length)


def ocsp_view(asked: bool, der: bytes | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "stapled": None if not asked or der is None else bool(der),
        "status": None,
        "cert_status": None,
        "this_update": None,
        "next_update": None,
        "produced_at": None,
    }
    if not der:
        return view
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        view["status"] = f"unreadable: {exc}"
        return view
    view["status"] = response.response_status.name.lower()
    if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
        view.update(
            cert_status=response.certificate_status.name.lower(),
            this_update=response.this_update_utc.isoformat(),
            next_update=response.next_update_utc.isoformat() if response.next_update_utc else None,
            produced_at=response.produced_at_utc.isoformat(),
        )
    return view


def _key(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # an algorithm cryptography does not know
        return "unknown", None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, None, None


def cert_view(der: bytes) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)
    key_type, key_bits, curve = _key(cert)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        signature = cert.signature_algorithm_oid._name
    except AttributeError:
        signature = None
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "key_type": key_type,
        "key_bits": key_bits,
        "curve": curve,
        "signature_algorithm": signature,
        "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "is_ca": is_ca,
    }


def chain_view(chain: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for der in chain:
        try:
            out.append(cert_view(der))
        except ValueError as exc:
            out.append({"error": f"unreadable certificate: {exc}"})
    return out


def _names(cert: x509.Certificate) -> tuple[list[str], list[str], str]:
    """(DNS names, IP addresses, where they came from)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)], "san"
    except x509.ExtensionNotFound:
        cns = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        return [str(c) for c in cns], [], "cn"


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[2:]:
        return False
    head, _, rest = host.partition(".")
    return bool(head) and rest == pattern[2:] and rest.count(".") >= 1


def hostname_match(leaf_der: bytes | None, host: str) -> dict[str, Any]:
    view: dict[str, Any] = {"host": host, "matched": None, "by": None}
    if not leaf_der:
        return view
    cert = x509.load_der_x509_certificate(leaf_der)
    dns_names, ips, source = _names(cert)
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        hit = next((a for a in ips if ipaddress.ip_address(a) == ip), None)
    else:
        hit = next((n for n in dns_names if _dns_match(n, host)), None)
    view["matched"] = hit is not None
    view["by"] = f"{source}:{hit}" if hit else None
    return view


def extend(
    info: dict[str, Any], tls_sock: ssl.SSLSocket | ssl.SSLObject, chain: list[bytes], host: str, ocsp_asked: bool
) -> None:
    """Add the chain, OCSP and hostname views to http's tls details (in place)."""
    info["chain"] = chain_view(chain)
    der = None
    if ocsp_asked:
        with contextlib.suppress(OSError, ValueError):
            der = stapled_ocsp(tls_sock, host)
    info["ocsp"] = ocsp_view(ocsp_asked, der)
    info["hostname_match"] = hostname_match(chain[0] if chain else None, host)
    leaf = info["chain"][0] if info["chain"] else {}
    info["key_type"], info["key_bits"] = leaf.get("key_type"), leaf.get("key_bits")
