"""What the server and the pipeline share about feedback: where the signing key comes from, and
where a prediction's id travels.

The server signs an id into every prediction's answer (`meta.tags[PREDICTION_ID_TAG]`) with the
deployment's key and counts feedback only for an answer it can verify
(serving/README.md#feedback). Every predictor and replica of one deployment must read the same
key from FEEDBACK_KEY_ENV: the rendered SeldonDeployment sets it from a Kubernetes Secret, and
the rehearsal gives its stable, canary and shadow servers one key.
"""

from __future__ import annotations

FEEDBACK_KEY_ENV = "MODELOPS_FEEDBACK_KEY"
"""The environment variable holding the deployment's key for prediction ids."""
PREDICTION_ID_TAG = "prediction_id"
"""The `meta.tags` entry of a prediction's answer that holds its signed id."""
