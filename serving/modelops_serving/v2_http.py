"""The Open Inference Protocol's endpoints, on seldon-core's Flask app beside Seldon's own.

| method and path | answers |
| --- | --- |
| `GET /v2` | the server's name, version and extensions (none) |
| `GET /v2/health/live` | `{"live": true}` while the process answers (as `/health/ping`) |
| `GET /v2/health/ready` | `{"ready": true}` once the verified model is loaded and scores its input
  example (as `/health/status`); 503 before |
| `GET /v2/models/<name>[/versions/<version>]` | the model's metadata (`v2.model_metadata`) |
| `GET /v2/models/<name>[/versions/<version>]/ready` | `{"name": ..., "ready": true}`, as above |
| `POST /v2/models/<name>[/versions/<version>]/infer` | `ModelServer.infer` |

A path naming another model or version is a 404 whose message names the served one. Errors
are the protocol's `{"error": "<what and how to fix>"}` with the same statuses, reasons and
counters as Seldon's (`modelops_serving.errors` shapes them by path); an inference counts in
the same series, as `endpoint="predict"` (`modelops_serving.telemetry`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, jsonify, request

from modelops_serving import telemetry, v2

if TYPE_CHECKING:
    from modelops_serving.server import ModelServer

DISTRIBUTION = "modelops-serving"
_VERSIONED = "/versions/<version>"


def install(app: Flask, model: ModelServer) -> None:
    """Add the `/v2` routes for `model` to seldon-core's REST app."""

    def served(name: str, version: str | None) -> None:
        v2.check_model(name, version, name=model.model_name, version=model.tags()["model_version"])

    def server_metadata() -> Response:
        version = metadata.version(DISTRIBUTION)
        return jsonify({"name": v2.SERVER_NAME, "version": version, "extensions": []})

    def live() -> Response:
        return jsonify({"live": True})

    def ready() -> Response:
        model.health_status()  # 503 (SeldonMicroserviceException) until the model is loaded
        return jsonify({"ready": True})

    def model_metadata(name: str, version: str | None = None) -> Response:
        served(name, version)
        return jsonify(model.v2_metadata())

    def model_ready(name: str, version: str | None = None) -> Response:
        served(name, version)
        model.health_status()
        return jsonify({"name": name, "ready": True})

    def infer(name: str, version: str | None = None) -> Response:
        # Parsed once already, by `errors.blueprint` (body.loads): no Content-Type is JSON here.
        payload: Any = request.get_json(force=True)
        setattr(g, telemetry.ROWS, v2.row_count(payload))
        served(name, version)
        return jsonify(model.infer(payload))

    models = f"{v2.PREFIX}/models/<name>"
    routes: list[tuple[str, Callable[..., Response], str]] = [
        (v2.PREFIX, server_metadata, "GET"),
        (f"{v2.PREFIX}/health/live", live, "GET"),
        (f"{v2.PREFIX}/health/ready", ready, "GET"),
        (models, model_metadata, "GET"),
        (models + _VERSIONED, model_metadata, "GET"),
        (f"{models}/ready", model_ready, "GET"),
        (f"{models}{_VERSIONED}/ready", model_ready, "GET"),
        (f"{models}/infer", infer, "POST"),
        (f"{models}{_VERSIONED}/infer", infer, "POST"),
    ]
    for rule, view, method in routes:
        endpoint = f"modelops_v2_{view.__name__}"
        app.add_url_rule(rule, endpoint, view, methods=[method], strict_slashes=False)
