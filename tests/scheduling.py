"""How pytest-xdist hands out the suite (`--dist loadscope`): the slowest scopes first, and the
scopes that wait on the clock beside the ones that compute.

A scope is a test module, or a class where a module has test classes (the runbook stories are
two classes, told side by side); its tests stay in one process, so its module and class
fixtures are built once. xdist hands scopes out in collection order, which can leave a slow
module for the end while the other worker idles. Here:

- the scope with the most seconds to run goes next (longest first: the workers finish at about
  the same time);
- the rehearsals (real servers, Prometheus and Alertmanager in real time; a batch
  environment's Pushgateway and scheduled runs) and the batch push test (a Pushgateway and
  Prometheus firing alerts) mostly wait: they go
  to one worker, the last, one after the other, while the others compute; that worker computes
  too once they are done, and the others take a rehearsal only when nothing else is left. With
  a worker more than cores (`make test`), the rehearsals' waiting costs no core;
- the deploy tests are one scope: their modules share three trained models (a session
  fixture) that each process would otherwise train again;
- a worker gets its next scope only once it holds a single unfinished test, the one it keeps
  until it knows what follows (it cannot run it before): a scope queued earlier behind a long
  test could have gone to another worker.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

# Seconds a scope took (its fixtures included) in a run of the whole suite on two cores, the
# stages started warm (tests/warm.py); the order is what matters. A scope not listed counts a
# second per test.
SECONDS = {
    "tests/deploy/": 127,
    "tests/rehearsal/test_canary_e2e.py": 123,
    "tests/rehearsal/test_monitor_e2e.py": 119,
    "tests/rehearsal/test_alerts_e2e.py": 117,
    "tests/pipeline/test_champion_freshness.py": 82,
    "tests/pipeline/test_dvc_pipeline.py": 81,
    "tests/docs/test_runbook_commands.py::TestTheTrainingStory": 66,
    "tests/serving/test_spark_engine.py": 63,
    "tests/monitoring/test_rules.py": 59,
    "tests/gates/test_sample_sizes.py": 59,
    "tests/edge/test_export.py": 54,
    "tests/monitoring/test_retrain.py": 46,
    "tests/gates/test_champion.py": 42,
    "tests/capacity/test_capacity_cli.py": 42,
    "tests/serving/test_telemetry.py": 41,
    "tests/rehearsal/test_experiment_e2e.py": 40,
    "tests/serving/test_experiment_server.py": 34,
    "tests/docs/test_runbook_commands.py::TestTheReleaseStory": 31,
    "tests/gates/test_gate_scenarios.py": 30,
    "tests/rehearsal/test_batch_up_e2e.py": 30,
    "tests/serving/test_spark_image.py": 30,
    "tests/serving/test_v2_protocol.py": 30,
    "tests/serving/test_batch_push.py": 29,
    "tests/workflows/test_commit_and_push.py": 27,
    "tests/serving/test_reference_telemetry.py": 25,
    "tests/pipeline/test_gated_deploy.py": 24,
    "tests/rehearsal/test_up_down.py": 20,
}
# Scopes whose time is mostly waiting on the clock, not computing.
WAITING = ("tests/rehearsal/", "tests/serving/test_batch_push.py")
# Folders whose modules share a session fixture that each process would build again (the
# deploy tests' three trained models, whose MLflow runs live in the process's own store): one
# scope, so that one process builds it.
TOGETHER = ("tests/deploy/",)


def seconds(scope: str, tests: int) -> float:
    """What running `scope` (of `tests` tests) is expected to cost."""
    return SECONDS.get(scope, float(tests))


def waits(scope: str) -> bool:
    return scope.startswith(WAITING)


class _Queue(OrderedDict[str, dict[str, bool]]):
    """xdist's queue of scopes; gives out the slowest one of the kind the worker prefers."""

    prefer_waiting = False

    def popitem(self, last: bool = True) -> tuple[str, dict[str, bool]]:
        scope = max(
            self,
            key=lambda name: (
                waits(name) == self.prefer_waiting,
                seconds(name, len(self[name])),
            ),
        )
        return scope, self.pop(scope)


class SlowestFirstScheduling(LoadScopeScheduling):
    """`--dist loadscope`, the slowest scope first, the rehearsals on the last worker."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.workqueue: _Queue = _Queue()

    def _split_scope(self, nodeid: str) -> str:
        together = next((folder for folder in TOGETHER if nodeid.startswith(folder)), None)
        return together or super()._split_scope(nodeid)

    def _assign_work_unit(self, node: WorkerController) -> None:
        workers = sorted((len(n.gateway.id), n.gateway.id) for n in self.nodes)  # gw0, gw1, ...
        last = workers[-1][1]
        self.workqueue.prefer_waiting = len(workers) > 1 and node.gateway.id == last
        super()._assign_work_unit(node)

    def _reschedule(self, node: WorkerController) -> None:
        # xdist tops a worker up at two unfinished tests: one may be long, and the next scope
        # would wait behind it. At one, the worker is idle until it gets more.
        if node.shutting_down or not self.workqueue:
            super()._reschedule(node)
        elif self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)
