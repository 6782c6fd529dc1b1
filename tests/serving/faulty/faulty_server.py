"""ModelServers with one injected fault each, standing for a bug, for the tests of failures.

The real microservice runs them (this directory on PYTHONPATH, in the serving environment):
- `FaultyServer`: a request whose `meta.tags.fail` is set makes `predict_raw` raise a
  RuntimeError with that text;
- `BrokenTelemetryServer`: recording every prediction's telemetry raises;
- `NeverFlushingServer`: telemetry is written only when a worker exits.
"""

from __future__ import annotations

from typing import Any

from modelops_serving.server import ModelServer


class FaultyServer(ModelServer):
    def predict_raw(self, request: Any) -> dict[str, Any]:
        fault = (request.get("meta") or {}).get("tags", {}).get("fail")
        if fault:
            raise RuntimeError(fault)
        return super().predict_raw(request)


class _Exploding:
    """Stands for a feature's bins whose counting fails (a bug in the recorder)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def nonzero(self, values: Any) -> Any:
        raise RuntimeError("injected telemetry fault")


class BrokenTelemetryServer(ModelServer):
    """Every prediction's telemetry raises while counting the first feature's bins."""

    def __init__(self, **parameters: Any) -> None:
        super().__init__(**parameters)
        assert self.telemetry is not None
        feature, children = self.telemetry._bins[0]
        self.telemetry._bins[0] = (_Exploding(feature.name), children)  # type: ignore[assignment]


class NeverFlushingServer(ModelServer):
    """Telemetry's background writes never come: only a worker's exit writes its counts."""

    def __init__(self, **parameters: Any) -> None:
        super().__init__(**parameters)
        assert self.telemetry is not None
        self.telemetry._pending._every = 3600.0
