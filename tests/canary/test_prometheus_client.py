"""The Prometheus client and the error-budget check, against a local HTTP server.

The server answers as Prometheus's `/api/v1/query` does (a stub of its HTTP API only: the
judge's queries run against a real Prometheus in tests/rehearsal/test_canary_e2e.py). It listens
on loopback, records what it was asked, and is shut down by the test that started it.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modelops.errors import PrometheusError
from modelops.observability.budget import check_budget
from modelops.telemetry.prometheus import Prometheus, connect

ANSWERS: dict[str, tuple[int, Any]] = {}
ASKED: list[tuple[str, dict[str, str]]] = []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        promql = query.get("query", [""])[0]
        ASKED.append((promql, dict(self.headers)))
        status, body = ANSWERS.get(promql, (200, _vector([])))
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        return


def _vector(samples: list[tuple[dict[str, str], str]]) -> dict[str, Any]:
    result = [{"metric": m, "value": [0, v]} for m, v in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.fixture
def server() -> Iterator[str]:
    ANSWERS.clear()
    ASKED.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_query_returns_the_vector_and_sends_the_token(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ANSWERS["up"] = (200, _vector([({"track": "canary"}, "1")]))
    monkeypatch.setenv("MODELOPS_PROMETHEUS_TOKEN", "secret")
    prometheus = connect(server, None)
    assert prometheus.query("up") == [{"metric": {"track": "canary"}, "value": [0, "1"]}]
    assert ASKED[-1][1]["Authorization"] == "Bearer secret"


def test_basic_auth_needs_both_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPS_PROMETHEUS_TOKEN", raising=False)
    monkeypatch.setenv("MODELOPS_PROMETHEUS_USER", "ops")
    monkeypatch.delenv("MODELOPS_PROMETHEUS_PASSWORD", raising=False)
    with pytest.raises(PrometheusError, match="set both, or neither"):
        connect("http://127.0.0.1:9", None)
    monkeypatch.setenv("MODELOPS_PROMETHEUS_PASSWORD", "pw")
    assert connect("http://127.0.0.1:9", None).headers["Authorization"].startswith("Basic ")


def test_no_url_anywhere_says_where_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    with pytest.raises(PrometheusError, match="give --prometheus URL"):
        connect(None, None)


def test_refusals_and_unreachable_servers_are_clear_errors(server: str) -> None:
    ANSWERS["bad("] = (400, {"status": "error", "error": "parse error at char 4"})
    ANSWERS["locked"] = (401, "unauthorized")
    ANSWERS["html"] = (200, "<html>not the API</html>")
    prometheus = Prometheus(server)
    with pytest.raises(PrometheusError, match=r"answered 400 .* parse error at char 4"):
        prometheus.query("bad(")
    with pytest.raises(PrometheusError, match="check \\$MODELOPS_PROMETHEUS_TOKEN"):
        prometheus.query("locked")
    with pytest.raises(PrometheusError, match="did not answer JSON"):
        prometheus.query("html")
    with pytest.raises(PrometheusError, match=r"cannot reach Prometheus at http://127\.0\.0\.1:9"):
        Prometheus("http://127.0.0.1:9", timeout=2).query("up")


def test_a_spent_budget_is_named_and_an_unknown_one_is_only_a_note(server: str) -> None:
    query = 'modelops:slo_error_budget_remaining:ratio{namespace="ns"}'
    ANSWERS[query] = (
        200,
        _vector([({"slo": "availability"}, "-0.35"), ({"slo": "latency"}, "0.8")]),
    )
    check = check_budget(Prometheus(server), "ns")
    assert not check.allows
    assert check.spent == ("availability -35%",)
    assert check_budget(Prometheus(server), "other").note.startswith("error budget not checked")
    assert check_budget(None, "ns").allows
    assert "no Prometheus" in check_budget(None, "ns").note
