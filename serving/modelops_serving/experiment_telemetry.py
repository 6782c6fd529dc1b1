"""An A/B experiment's own series: rows and units per variant, processes, the covariate's sums.

Everything else a variant does (its predictions, feedback, requests) is counted in the usual
series under the variant's own model_version, by its own `Telemetry`; this adds what an
experiment's analysis needs besides (serving/README.md#ab-experiments-sticky-assignment):

- `modelops_experiment_assignments_total`: rows per variant, and the rows without a unit;
- `modelops_experiment_units_total`: a unit counted the first time this process sees it
  (`UnitMemory`), so a sample-ratio check can compare units, not rows;
- `modelops_experiment_processes`: 1 per process, so a reader knows how many processes may
  each have counted one unit;
- `modelops_experiment_feedback_rows_total`: feedback rows with a unit per variant and
  confusion cell, the comparison's labelled rows (stable's usual series also hold its rows
  without a unit);
- with a covariate, per variant and confusion cell of those rows: the rows with a value, the
  value's sum (its parts above and below zero) and the sum of its squares (CUPED).

Increments go through the control's `Telemetry` (written twice a second with its own); a
failure is counted and logged there, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from modelops_contract import (
    ABOVE_ZERO,
    BELOW_ZERO,
    CELLS,
    EXPERIMENT_ASSIGNMENTS,
    EXPERIMENT_COVARIATE,
    EXPERIMENT_COVARIATE_ROWS,
    EXPERIMENT_COVARIATE_SQUARES,
    EXPERIMENT_FEEDBACK_ROWS,
    EXPERIMENT_PROCESSES,
    EXPERIMENT_UNITS,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    FEEDBACK,
    PREDICT,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    Experiment,
    flag,
)

from modelops_serving.assignment import UnitMemory
from modelops_serving.telemetry import Increment, Telemetry, metric


def cells(
    actual: Sequence[str],
    positive_scores: npt.NDArray[np.float64],
    *,
    threshold: float,
    positive: str,
) -> npt.NDArray[Any]:
    """Each feedback row's cell of the confusion matrix at `threshold`."""
    predicted = positive_scores >= threshold
    is_actual = np.fromiter((label == positive for label in actual), dtype=bool, count=len(actual))
    return np.where(
        predicted,
        np.where(is_actual, TRUE_POSITIVE, FALSE_POSITIVE),
        np.where(is_actual, FALSE_NEGATIVE, TRUE_NEGATIVE),
    )


class ExperimentTelemetry:
    """The experiment's series; every method records and never raises."""

    def __init__(self, experiment: Experiment, *, recorder: Telemetry) -> None:
        self.experiment = experiment
        self._recorder = recorder
        self.memory = UnitMemory()
        names = [v.name for v in experiment.variants]
        versions = [v.model_version for v in experiment.variants]
        assignments = metric(EXPERIMENT_ASSIGNMENTS)
        self._assignments = {
            (endpoint, index, assigned): assignments.labels(
                versions[index], endpoint, names[index], flag(assigned)
            )
            for endpoint in (PREDICT, FEEDBACK)
            for index in range(len(names))
            for assigned in (True, False)
        }
        units = metric(EXPERIMENT_UNITS)
        self._units = [units.labels(v, n) for v, n in zip(versions, names, strict=True)]
        # Its sample is made by the processes that serve (`started`): a sample made here, in
        # the process that forks the workers, would stay at 0 beside theirs.
        self._processes = metric(EXPERIMENT_PROCESSES)
        rows, total, squares = (
            metric(EXPERIMENT_COVARIATE_ROWS),
            metric(EXPERIMENT_COVARIATE),
            metric(EXPERIMENT_COVARIATE_SQUARES),
        )
        feedback = metric(EXPERIMENT_FEEDBACK_ROWS)
        self._cells = {
            (index, cell): feedback.labels(versions[index], names[index], cell)
            for index in range(len(names))
            for cell in CELLS
        }
        self._covariate = {
            (index, cell): (
                rows.labels(versions[index], names[index], cell),
                total.labels(versions[index], names[index], cell, ABOVE_ZERO),
                total.labels(versions[index], names[index], cell, BELOW_ZERO),
                squares.labels(versions[index], names[index], cell),
            )
            for index in range(len(names))
            for cell in CELLS
        }

    def started(self) -> None:
        """Mark this process as running the experiment (each worker, once loaded)."""
        try:
            self._processes.labels(self.experiment.control.model_version).set(1)
        except Exception as exc:  # recording never fails a request, nor a start
            self._recorder.failed(exc)

    def rows(
        self,
        endpoint: str,
        positions: npt.NDArray[np.intp],
        assigned: npt.NDArray[np.bool_],
    ) -> None:
        """Count rows per variant (`positions`: index of each row's variant), with a unit or not."""

        def adds() -> list[Increment]:
            counted: list[Increment] = []
            for index in np.unique(positions).tolist():
                of_variant = positions == index
                with_unit = int(np.count_nonzero(of_variant & assigned))
                without = int(np.count_nonzero(of_variant)) - with_unit
                counted.append((self._assignments[(endpoint, index, True)], with_unit))
                counted.append((self._assignments[(endpoint, index, False)], without))
            return counted

        self._safely(adds)

    def units(self, units: Sequence[tuple[int, int]]) -> None:
        """Count the units ((variant index, `unit_key`) of each row with one) that this process
        sees for the first time."""

        def adds() -> list[Increment]:
            new = [0] * len(self._units)
            first_time = self.memory.first_time
            for index, key in units:
                if first_time(key):
                    new[index] += 1
            return [(self._units[i], count) for i, count in enumerate(new) if count]

        self._safely(adds)

    def feedback(
        self,
        index: int,
        actual: Sequence[str],
        positive_scores: npt.NDArray[np.float64],
        assigned: npt.NDArray[np.bool_],
        covariates: npt.NDArray[np.float64] | None,
    ) -> None:
        """Count one variant's feedback rows that have a unit by their cell at the threshold,
        and add those with a covariate (NaN: none) to the covariate's sums: rows without a unit
        are outside the comparison."""

        def adds() -> list[Increment]:
            recorder = self._recorder
            row_cells = cells(
                actual,
                positive_scores,
                threshold=recorder.threshold,
                positive=recorder.positive_label,
            )
            known = assigned if covariates is None else assigned & ~np.isnan(covariates)
            counted: list[Increment] = []
            for cell in CELLS:
                of_cell = assigned & (row_cells == cell)
                counted.append((self._cells[(index, cell)], int(np.count_nonzero(of_cell))))
                if covariates is None:
                    continue
                chosen = covariates[known & of_cell]
                rows, above, below, squares = self._covariate[(index, cell)]
                counted += [
                    (rows, int(chosen.size)),
                    (above, float(chosen[chosen > 0].sum())),
                    (below, float(-chosen[chosen < 0].sum())),
                    (squares, float(np.square(chosen).sum())),
                ]
            return counted

        self._safely(adds)

    def _safely(self, adds: Callable[[], list[Increment]]) -> None:
        try:
            self._recorder.record(adds())
        except Exception as exc:  # recording never fails a request
            self._recorder.failed(exc)
