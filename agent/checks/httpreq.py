"""The request an http check sends: method, custom headers, basic auth and a small body
(options validated by chalicelib/httpopts.py), for HTTP/1.1 (bytes on the wire) and
HTTP/2 (a header list for h2).

Following redirects, as curl -L and browsers do:
- 303, and 301/302 after a POST, turn the request into a GET without a body; 307 and 308
  repeat the method and body;
- credentials (auth, an Authorization or Cookie header) and a Host override go only to the
  first request's origin (scheme, host, port): a redirect elsewhere does not carry them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from chalicelib import httpopts, targets

from .base import USER_AGENT

# Only to the first request's origin (see the module docstring).
ORIGIN_ONLY = frozenset(("authorization", "proxy-authorization", "cookie", "host"))


@dataclass
class Request:
    method: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the user's
    auth: dict[str, str] | None = None
    origin: tuple | None = None  # of the first request

    @classmethod
    def from_options(cls, opts: dict) -> Request:
        body = opts.get("body")
        return cls(
            method=opts["method"],
            body=body.encode("utf-8") if body is not None else None,
            headers=dict(opts.get("headers") or {}),
            auth=opts.get("auth"),
        )

    def after_redirect(self, status: int) -> Request:
        """The request to send to a redirect's Location."""
        if status == 303 or (status in (301, 302) and self.method == "POST"):
            return Request("HEAD" if self.method == "HEAD" else "GET", None, self.headers, self.auth, self.origin)
        return self

    def header_list(self, t: targets.Target, *, http2: bool = False) -> list[tuple[str, str]]:
        """The header fields after the request line (HTTP/1.1) or the pseudo-headers (HTTP/2)."""
        https = t.scheme == "https"
        origin = (t.scheme, t.host, t.port or (443 if https else 80))
        if self.origin is None:
            self.origin = origin
        same_origin = origin == self.origin
        host = f"[{t.host}]" if ":" in t.host else t.host
        if t.port and t.port != (443 if https else 80):
            host += f":{t.port}"
        custom = {k: v for k, v in self.headers.items() if same_origin or k.lower() not in ORIGIN_ONLY}
        host = httpopts.header(custom, "host") or host
        fields: list[tuple[str, str]] = []
        if not http2:
            fields.append(("Host", host))
        defaults = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        for name, value in defaults.items():
            if httpopts.header(custom, name) is None:
                fields.append((name, value))
        fields.extend((k, v) for k, v in custom.items() if k.lower() != "host")
        if self.auth and same_origin:
            token = base64.b64encode(f"{self.auth['username']}:{self.auth['password']}".encode()).decode()
            fields.append(("Authorization", f"Basic {token}"))
        if self.body is not None:
            if httpopts.header(custom, "content-type") is None:
                fields.append(("Content-Type", "application/x-www-form-urlencoded"))  # curl -d's
            fields.append(("Content-Length", str(len(self.body))))
        if http2:
            pseudo = [(":method", self.method), (":scheme", t.scheme), (":authority", host), (":path", t.path)]
            return pseudo + [(k.lower(), v) for k, v in fields if k.lower() != "content-length" or self.body]
        return fields

    def http11(self, t: targets.Target, request_target: str) -> bytes:
        lines = [f"{self.method} {request_target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.header_list(t)]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (self.body or b"")

    def view(self) -> dict:
        """What a result says about the request: never the password or a secret header's value."""
        return {
            "method": self.method,
            "headers": httpopts.redact_http({"headers": self.headers})["headers"],
            "body_bytes": len(self.body) if self.body is not None else None,
            "basic_auth_user": self.auth["username"] if self.auth else None,
        }
