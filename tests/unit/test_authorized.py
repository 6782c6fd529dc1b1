"""Credentials go to the configured address only: no redirect to another origin is followed.

Two real HTTP servers on loopback (threads, stopped at the end of each test); different ports
are different origins.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from modelops.errors import GitHubError, PrometheusError
from modelops.github import GitHub
from modelops.telemetry.prometheus import Prometheus

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


@contextmanager
def _server(location: str | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server that redirects every request to `location` (or answers an empty vector),
    and the headers of each request it received."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            if self.path.startswith("/moved/"):  # within this origin
                self.send_response(301)
                self.send_header("Location", self.path.removeprefix("/moved"))
                self.end_headers()
                return
            if location is not None:
                self.send_response(302)
                self.send_header("Location", location + self.path)
                self.end_headers()
                return
            body = json.dumps(EMPTY).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_prometheus_token_never_follows_a_redirect_to_another_origin() -> None:
    with _server() as (elsewhere, stolen), _server(elsewhere) as (configured, _):
        prometheus = Prometheus(configured, headers={"Authorization": "Bearer secret"})
        with pytest.raises(PrometheusError, match="refused a redirect to another origin"):
            prometheus.query("up")
    assert stolen == [], "the other origin received nothing"


def test_a_redirect_within_the_same_origin_is_followed_with_the_token() -> None:
    with _server() as (target, seen):
        prometheus = Prometheus(f"{target}/moved", headers={"Authorization": "Bearer secret"})
        assert prometheus.query("up") == []
    assert [headers["Authorization"] for headers in seen] == ["Bearer secret"] * 2


def test_a_github_token_never_follows_a_redirect_to_another_origin() -> None:
    with _server() as (elsewhere, stolen), _server(elsewhere) as (configured, _):
        github = GitHub(api_url=configured, repository="octo/repo", token="secret")
        with pytest.raises(GitHubError, match="refused a redirect to another origin"):
            github.find_pull_request("retrain/production")
    assert stolen == [], "the other origin received nothing"
