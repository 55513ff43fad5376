"""A small demo site standing in for "the internet" in the local stack.

Serves HTTP on one port with a few useful paths, so a first check has
something real to look at without internet access:
  /            200 with a small HTML page
  /redirect    301 -> /moved (302) -> /
  /slow?ms=N   answers after N ms (at most 10 s)
  /status/N    answers with status N
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGE = b"""<!doctype html><html><head><title>Host Checker demo site</title></head>
<body><h1>Host Checker demo site</h1><p>This page stands in for a real target.</p></body></html>
"""


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "HostCheckerDemo/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per request, to the log file
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
        sys.stdout.flush()

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
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
        url = urlsplit(self.path)
        if url.path == "/":
            return self._send(200, PAGE)
        if url.path == "/redirect":
            return self._send(301, headers={"Location": "/moved"})
        if url.path == "/moved":
            return self._send(302, headers={"Location": "/"})
        if url.path == "/slow":
            ms = min(int(parse_qs(url.query).get("ms", ["500"])[0] or 0), 10_000)
            time.sleep(ms / 1000)
            return self._send(200, PAGE)
        if url.path.startswith("/status/"):
            try:
                status = int(url.path.rsplit("/", 1)[1])
            except ValueError:
                status = 400
            return self._send(status if 200 <= status <= 599 else 400, b"status page\n")
        return self._send(404, b"not found\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Host Checker demo target site (HTTP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    try:
        server = ThreadingHTTPServer((args.host, args.port), DemoHandler)
    except OSError as exc:
        print(f"demo site: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"demo site on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
