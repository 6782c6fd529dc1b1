"""Deploy only what the gates passed, whatever path leads to the deploy.

Two ways lead to a deployable model (runbooks/deploy.md, "What a deploy publishes"):

- exact: it is the model the merged commit's gates judged, byte for byte (with a DVC remote,
  deploy.yml pulls the model that commit's `dvc.lock` records, which pr.yml pushed);
- reproduced: no remote had it, so the deploy retrained it from the merged commit. It is
  deployable when its training inputs equal those the merged gates judged and its own gates,
  run again on it, passed.

Anything else, or a model whose enforced gates did not pass, is refused with how to fix it.
"""

from __future__ import annotations

import json
from typing import Literal, TypeAlias

from modelops.errors import ModelopsError, UngatedModelError
from modelops.gates.results import GatesRecord, read_record
from modelops.gitinfo import show_file
from modelops.identity import ModelIdentity
from modelops.paths import GATES_FILE, LOCK_FILE, MODEL_DIR, ProjectPaths

Requirement: TypeAlias = Literal["exact", "merged", "workspace"]
"""`exact`: only the merged gates' model; `merged`: it, or a retrain of its inputs that passed
its own gates; `workspace`: the gates of this checkout passed it (a preview before merging)."""


def check_gated(
    model: ModelIdentity,
    *,
    workspace: GatesRecord | None,
    committed: GatesRecord | None,
    require: Requirement,
) -> str:
    """Say how `model` was gated, or refuse it.

    Args:
        model: the model about to be published.
        workspace: `reports/gates.json` in the checkout (the gates' latest run here).
        committed: `reports/gates.json` as the commit being deployed records it.
        require: how strictly the model must match what the merged gates judged.

    Raises:
        UngatedModelError: what does not match, and what to run.
    """
    judged = _judged(workspace, where=f"{GATES_FILE} in this checkout")
    if judged.model_hash != model.model_hash:
        raise UngatedModelError(
            f"the gates in {GATES_FILE} judged model {judged.describe()}, not this one "
            f"({model.describe()}): run `dvc repro` so that the gates judge the model you deploy"
        )
    if judged.training_inputs != model.training_inputs:
        raise UngatedModelError(
            f"{LOCK_FILE} changed since the gates judged {model.model_hash[:12]}: run `dvc repro`"
        )
    _passed(workspace, model)
    if require == "workspace":
        return f"the gates passed model {model.model_hash[:12]}"
    merged = _judged(committed, where=f"{GATES_FILE} of the commit being deployed")
    _passed(committed, merged)
    if merged.model_hash == model.model_hash:
        return f"model {model.model_hash[:12]} is the one the merged commit's gates passed"
    if require == "exact":
        raise UngatedModelError(
            f"{MODEL_DIR} is {model.model_hash[:12]}, not the model the merged commit's gates "
            f"passed ({merged.model_hash[:12]}): with a DVC remote the deploy takes exactly that "
            "model (`dvc pull train`), which pr.yml pushes after gating it. Push it from the pull "
            "request's branch (`dvc push`), or remove the remote to let the deploy reproduce it"
        )
    if merged.same_inputs(model):
        return (
            f"model {model.model_hash[:12]} was retrained from the inputs the merged commit's "
            f"gates passed ({merged.describe()}) and passed its own gates"
        )
    raise UngatedModelError(
        f"{MODEL_DIR} ({model.describe()}) is neither the model the merged commit's gates "
        f"passed ({merged.describe()}) nor a retrain of its inputs: deploy from the merged "
        "commit with `dvc pull` (a DVC remote) or `dvc repro` (none), and commit "
        f"{GATES_FILE} with {LOCK_FILE} in the pull request"
    )


def _judged(record: GatesRecord | None, *, where: str) -> ModelIdentity:
    if record is None:
        raise UngatedModelError(
            f"{where} does not exist: the gates must judge a model before it is deployed. Run "
            f"`dvc repro` and commit {GATES_FILE} with {LOCK_FILE} (the README's loop, step 4)"
        )
    if record.judged is None:
        raise UngatedModelError(
            f"{where} records no judged model (the model gates did not run): run `dvc repro` "
            f"and commit {GATES_FILE} with {LOCK_FILE}"
        )
    return record.judged


def _passed(record: GatesRecord | None, model: ModelIdentity) -> None:
    assert record is not None
    if record.verdict.status == "fail":
        raise UngatedModelError(
            f"the gates blocked model {model.model_hash[:12]} ({record.verdict.headline}): a "
            "model whose enforced gates did not pass is never deployed. Fix what failed and "
            "merge a pull request whose gates pass"
        )


def workspace_record(paths: ProjectPaths) -> GatesRecord:
    """`reports/gates.json` as this checkout's run wrote it, or what to run first."""
    try:
        document = json.loads(paths.gates_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelopsError(
            f"{paths.show(paths.gates_file)} does not exist; run `dvc repro` first"
        ) from None
    return read_record(document)


def check_head(paths: ProjectPaths, workspace: GatesRecord, *, exact: bool) -> str:
    """`check_committed` against `reports/gates.json` as the checked-out commit (HEAD) has it."""
    committed = show_file(paths.root, "HEAD", paths.show(paths.gates_file))
    recorded = read_record(json.loads(committed)) if committed else None
    return check_committed(workspace, recorded, exact=exact)


def check_committed(workspace: GatesRecord, committed: GatesRecord | None, *, exact: bool) -> str:
    """Check, in a pull request, that the committed gates record is the one this run made.

    What merges is what deploy.yml checks (`check_gated`), so a pull request whose committed
    dvc.lock and reports/gates.json describe another model, or other inputs, or another verdict
    than the run that gated it, fails here, before anyone merges it.

    Raises:
        UngatedModelError: what differs, and what to commit.
    """
    fix = f"run `dvc repro` on the branch and commit {LOCK_FILE} and {GATES_FILE}"
    ran = _judged(workspace, where=f"{GATES_FILE} of this run")
    recorded = _judged(committed, where=f"{GATES_FILE} as committed")
    assert committed is not None
    if exact and recorded.model_hash != ran.model_hash:
        raise UngatedModelError(
            f"the committed {GATES_FILE} judged model {recorded.model_hash[:12]}, this run "
            f"gated {ran.model_hash[:12]}: the deploy takes exactly the committed model from "
            "the DVC remote, so push the model your run made (`dvc push`) and commit its "
            f"{LOCK_FILE} and {GATES_FILE}, or {fix}"
        )
    if recorded.training_inputs != ran.training_inputs:
        raise UngatedModelError(
            f"the committed {GATES_FILE} judged a model trained from other inputs "
            f"({recorded.describe()}) than this branch's files give ({ran.describe()}): {fix}"
        )
    # Timings differ between machines and runs: the latency gate is held to its block only.
    if committed.repeatable.status != workspace.repeatable.status:
        raise UngatedModelError(
            f"the committed {GATES_FILE} says '{committed.verdict.headline}', this run says "
            f"'{workspace.verdict.headline}': {fix}"
        )
    return f"the committed {GATES_FILE} is what this run gated ({ran.describe()})"
