"""The one place that talks to Prometheus's HTTP API (instant queries), with clear errors.

Where: `--prometheus`, else `$MODELOPS_PROMETHEUS_URL`, else `monitoring.prometheus_url`.
Credentials come from the environment only, never from params.yaml:
`$MODELOPS_PROMETHEUS_TOKEN` (a bearer token), or `$MODELOPS_PROMETHEUS_USER` and
`$MODELOPS_PROMETHEUS_PASSWORD` (basic auth).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelops.authorized import open_authorized
from modelops.errors import PrometheusError
from modelops.telemetry.promql import Vector

URL_ENV = "MODELOPS_PROMETHEUS_URL"
TOKEN_ENV = "MODELOPS_PROMETHEUS_TOKEN"
USER_ENV, PASSWORD_ENV = "MODELOPS_PROMETHEUS_USER", "MODELOPS_PROMETHEUS_PASSWORD"
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Prometheus:
    """A Prometheus server, and the headers that authenticate to it."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = TIMEOUT_SECONDS

    def query(self, promql: str, *, at: float | None = None) -> Vector:
        """An instant query's result vector (evaluated at `at`, seconds since the epoch)."""
        arguments = {"query": promql}
        if at is not None:
            arguments["time"] = f"{at:.3f}"
        address = f"{self.url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(arguments)}"
        request = urllib.request.Request(address, headers=dict(self.headers))
        try:
            with open_authorized(request, timeout=self.timeout) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            detail = _error_detail(error.read())
            hint = (
                " (check $MODELOPS_PROMETHEUS_TOKEN or $MODELOPS_PROMETHEUS_USER/_PASSWORD)"
                if error.code in (401, 403)
                else ""
            )
            raise PrometheusError(
                f"Prometheus at {self.url} answered {error.code} to {promql!r}: {detail}{hint}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url} ({reason}): check the URL "
                f"(--prometheus, ${URL_ENV} or monitoring.prometheus_url) and that it is up"
            ) from None
        return _vector(body, promql, self.url)


def add_prometheus_option(parser: argparse.ArgumentParser) -> None:
    """`--prometheus URL`, the flag `connect` tries first."""
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        default=None,
        help=f"Prometheus to ask (default: ${URL_ENV}, then monitoring.prometheus_url)",
    )


def connect(flag: str | None, configured: str | None) -> Prometheus:
    """The Prometheus to ask, from the flag, the environment or params, with credentials."""
    url = flag or os.environ.get(URL_ENV) or configured
    if not url:
        raise PrometheusError(
            "no Prometheus to ask: give --prometheus URL, set $MODELOPS_PROMETHEUS_URL, or set "
            "monitoring.prometheus_url in params.yaml (`make up` rehearses one at "
            "http://127.0.0.1:9090)"
        )
    if not url.startswith(("http://", "https://")):
        raise PrometheusError(
            f"the Prometheus URL must start with http:// or https://, got {url!r}"
        )
    return Prometheus(url=url, headers=_credentials())


def _credentials() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password is not None:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    if user:
        raise PrometheusError(f"${USER_ENV} is set without ${PASSWORD_ENV}: set both, or neither")
    return {}


def _vector(body: bytes, promql: str, url: str) -> Vector:
    try:
        answer = json.loads(body)
    except ValueError:
        raise PrometheusError(
            f"{url} did not answer JSON to {promql!r}: is it Prometheus's API root?"
        ) from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        detail = answer.get("error") if isinstance(answer, dict) else answer
        raise PrometheusError(f"Prometheus refused {promql!r}: {detail}")
    data = answer.get("data") or {}
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise PrometheusError(f"{promql!r} did not give an instant vector: {data!r:.200}")
    result: Vector = data["result"]
    return result


def _error_detail(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    return str(answer.get("error", answer)) if isinstance(answer, dict) else str(answer)[:200]
