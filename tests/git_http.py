"""A git server over HTTP that asks for a token, as GitHub does (tests only).

GitHub cannot exist here. `serve(root, token)` answers git's smart HTTP protocol on loopback with
git's own CGI program (`git http-backend`) over the bare repositories under `root`, and refuses
every request (401 with a Basic challenge) whose `Authorization` is not the Basic pair
`x-access-token:<token>`, the user name GitHub accepts for installation and workflow tokens. It
records each request's path and whether it carried the token, so a test can tell that git
authenticated without the token ever being part of a URL.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

USER = "x-access-token"


@dataclass
class Server:
    """Where it listens, and what it saw: (method, path, authorized) per request."""

    url: str
    root: Path
    token: str
    seen: list[tuple[str, str, bool]] = field(default_factory=list)

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{USER}:{self.token}".encode()).decode()
        return header == f"Basic {expected}"


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows what the test asserts."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        server: Server = self.server.git
        path, _, query = self.path.partition("?")
        allowed = server.authorized(self.headers.get("Authorization"))
        server.seen.append((self.command, path, allowed))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not allowed:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        environ = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": USER,  # http-backend accepts pushes only from an authenticated user
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if self.headers.get("Content-Encoding"):
            environ["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        done = subprocess.run(
            [shutil.which("git") or "git", "http-backend"],
            input=body,
            capture_output=True,
            env=environ,
            check=False,
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def serve(root: Path, token: str) -> Iterator[Server]:
    """The server on 127.0.0.1 (a free port) over the bare repositories in `root`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.git = Server(  # type: ignore[attr-defined]
        url=f"http://127.0.0.1:{httpd.server_address[1]}", root=root, token=token
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.git  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
