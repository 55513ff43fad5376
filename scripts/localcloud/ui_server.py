"""Serve the built UI locally when LocalStack's S3 website is not available.

Like the S3 website bucket (error document = index.html), a path that is not
a file gets index.html, so deep links such as /results/<id> load the app.
"""

from __future__ import annotations

from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class SpaHandler(SimpleHTTPRequestHandler):
    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.exists():
            self.path = "/index.html"
        return super().send_head()

    def end_headers(self):
        if self.path.endswith(("index.html", "config.json")) or self.path == "/":
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()


class Server(ThreadingHTTPServer):
    def server_bind(self):
        # HTTPServer.server_bind looks up our FQDN, which can hang without a resolver.
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = self.server_address[:2]
