"""Training and serving trust the same reviewed skops types.

The two environments cannot import each other's packages (seldon-core and Deepchecks cannot
share one), so the serving list is read from its module file, which imports nothing.
"""

from __future__ import annotations

import importlib.util

from modelops.model import REVIEWED_SKOPS_TYPES
from tests.support import REPO_ROOT

SERVING_TYPES = REPO_ROOT / "serving" / "modelops_serving" / "skops_types.py"


def test_the_server_trusts_exactly_the_types_training_reviewed() -> None:
    spec = importlib.util.spec_from_file_location("serving_skops_types", SERVING_TYPES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.REVIEWED_SKOPS_TYPES == REVIEWED_SKOPS_TYPES, (
        "src/modelops/model.py and serving/modelops_serving/skops_types.py must list the same "
        f"types; only in training: {sorted(REVIEWED_SKOPS_TYPES - module.REVIEWED_SKOPS_TYPES)}, "
        f"only in serving: {sorted(module.REVIEWED_SKOPS_TYPES - REVIEWED_SKOPS_TYPES)}"
    )
