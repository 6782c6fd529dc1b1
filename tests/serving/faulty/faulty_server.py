"""A ModelServer with one injected fault, standing for a bug in the tests of unexpected errors.

The real microservice runs it (this directory on PYTHONPATH, in the serving environment): a
request whose `meta.tags.fail` is set makes `predict_raw` raise a RuntimeError with that text.
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
