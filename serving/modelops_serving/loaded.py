"""A model loaded for scoring: the verified artifact, its pipeline and the fastest exact path.

The server (one per gunicorn worker) and a batch run load a model the same way, so a row gets
the same score from either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops_serving.artifact import Artifact, ArtifactError, load_pipeline
from modelops_serving.scoring import Scoring, scoring
from modelops_serving.validation import Batch, to_batch


@dataclass(frozen=True)
class LoadedModel:
    """`proba` gives class probabilities in `artifact.classes` order."""

    artifact: Artifact
    pipeline: Any
    scoring: Scoring
    _order: tuple[int, ...]

    def proba(self, columns: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        """Probabilities of each class (columns in `artifact.classes` order) for columns of rows."""
        ordered: npt.NDArray[np.float64] = self.scoring.predict_proba(columns)[:, self._order]
        return ordered

    def positive_scores(self, columns: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        """The positive class's probability for each row."""
        positive = self._order[self.artifact.classes.index(self.artifact.positive_label)]
        scores: npt.NDArray[np.float64] = self.scoring.predict_proba(columns)[:, positive]
        return scores


def example_batch(artifact: Artifact) -> Batch:
    """The training input example, validated like any request."""
    rows = [list(row) for row in artifact.example_rows]
    request = {"data": {"names": list(artifact.names), "ndarray": rows}}
    return to_batch(request, artifact.columns, max_rows=len(rows))


def load_model(artifact: Artifact, *, threads: int = 1) -> LoadedModel:
    """Deserialize the verified bytes and choose the scoring path; raises ArtifactError.

    `threads` walk the trees of a call (`scoring.scoring`): 1 in a server worker, which
    answers one request at a time; every core in a batch run.
    """
    pipeline = load_pipeline(artifact)
    predicted = [str(c) for c in pipeline.classes_]
    missing = set(artifact.classes) - set(predicted)
    if missing:
        raise ArtifactError(f"{artifact.path}: the model does not predict {sorted(missing)}")
    chosen = scoring(
        pipeline, artifact.names, probe=example_batch(artifact).columns, threads=threads
    )
    order = tuple(predicted.index(name) for name in artifact.classes)
    return LoadedModel(artifact, pipeline, chosen, order)
