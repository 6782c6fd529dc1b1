"""What a model pod tells the server besides the model: its parameters and ports, as seldon-core
reads them.

seldon-core's microservice (which `modelops-microservice` runs) reads its component's parameters
(`model_hash`, `threshold`, `experiment`, ...) as a JSON list of `{name, type, value}` from
PARAMETERS_ENV, and its ports from HTTP_PORT_ENV and METRICS_PORT_ENV. On Seldon Core the
operator sets them from the SeldonDeployment (the graph's `parameters`, the ports it gives the
container); the rendered KServe InferenceService sets them on its container itself, with the
same list and the ports it declares; the rehearsal and the tests set them on the servers they
start. One form everywhere, so the server starts, and checks the model's hash, the same way on
either platform.
"""

from __future__ import annotations

PARAMETERS_ENV = "PREDICTIVE_UNIT_PARAMETERS"
"""The environment variable holding the server's parameters (seldon-core's name)."""
HTTP_PORT_ENV = "PREDICTIVE_UNIT_HTTP_SERVICE_PORT"
"""Where seldon-core's microservice serves REST (predictions, health): 9000 unless set."""
METRICS_PORT_ENV = "PREDICTIVE_UNIT_METRICS_SERVICE_PORT"
"""Where it serves its metrics (`/prometheus`): 6000 unless set."""
