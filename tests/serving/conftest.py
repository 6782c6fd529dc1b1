"""The server's pure modules (artifact, validation, launch) import in the pipeline's environment.

The server itself runs in its own environment (serving/.venv): the HTTP tests start the real
`seldon-core-microservice` from there.
"""

from __future__ import annotations

import sys

from tests.support import REPO_ROOT

SERVING_DIR = REPO_ROOT / "serving"
SERVING_BIN = SERVING_DIR / ".venv" / "bin"
if str(SERVING_DIR) not in sys.path:
    sys.path.insert(0, str(SERVING_DIR))
