"""The types skops may trust when the server loads a model: reviewed by people, kept in code.

Never read from the model directory: its `MLmodel` file travels with the artifact, so trusting
the list in it would let whoever can change the artifact choose what gets deserialized.
This must equal `REVIEWED_SKOPS_TYPES` in the pipeline's src/modelops/model.py (training fails
on a type outside it); tests/unit/test_skops_types.py checks they are the same.
"""

from __future__ import annotations

REVIEWED_SKOPS_TYPES = frozenset(
    {
        "functools.partial",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
        "sklearn.utils.validation.check_array",
    }
)
