"""A retraining that comes back through review: a branch with fresh data, reproduced, as a PR.

On the monitor's retrain decision `modelops retrain --env production` (monitor.yml runs it):

1. refuses a dirty checkout, and does nothing when a retraining pull request for the
   environment is open already (it comments there instead: one PR per environment);
2. starts the branch `retrain/<env>` from the checked-out commit (main);
3. refreshes the data, the first way that applies: `dvc update` of every imported source
   (`dvc import` / `dvc import-url`, a .dvc file with a dependency); else
   `monitoring.retrain.refresh_command` (e.g. an export script); else, for a URL source,
   preparing again (`dvc repro --force --single-item prepare`); else, for the built-in synthetic
   data, the next `prepare.synthetic.seed` (a new sample, as new data would be). A local file
   that nothing refreshes is refused with the ways to make it refreshable;
4. reproduces the pipeline (`dvc repro`: train, evaluate, gates) and commits what the README's
   loop commits, plus the refreshed .dvc files;
5. pushes the branch and opens the pull request, whose body says why (the monitor's reasons)
   and what changed in the data; the checkout is left on the commit it started from, with that
   commit's outputs. `pr.yml` then gates and reports it like any other change;
   nothing merges it but a person.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.errors import GitHubError, RetrainError
from modelops.github import GitHub, connect_if_configured
from modelops.io import JSONObject
from modelops.monitoring.report import DecisionDocument
from modelops.monitoring.watch import read_report
from modelops.params import PARAMS_FILE, Params, load_params
from modelops.paths import DATA_METRICS, DVC_FILE, LOCK_FILE, ProjectPaths

BRANCH = "retrain/{environment}"
PR_LABEL = "retraining"


@dataclass(frozen=True)
class Retrained:
    """What `retrain` did."""

    branch: str
    refreshed: tuple[str, ...]
    commit: str | None
    pull_request: str | None
    note: str


def reasons_to_retrain(decision: DecisionDocument, *, force: bool) -> list[str] | None:
    """Why to retrain: the monitor's reasons, or the request (`force`); None when the monitor
    decided not to and nobody forced it (pure)."""
    if not decision["retrain"] and not force:
        return None
    return list(decision["reasons"]) or ["retraining requested (--force)"]


def from_report(
    paths: ProjectPaths,
    environment: str,
    *,
    folder: Path | None = None,
    remote: str | None = None,
    force: bool = False,
) -> Retrained | None:
    """Retrain when the environment's latest monitor report says to (or `force`); None when
    it does not. With a `remote`, push; then open the pull request where a repository and a
    token are set ($GITHUB_REPOSITORY, $GITHUB_TOKEN: in Actions), else leave it to the user."""
    document, markdown = read_report(paths, folder, environment)
    reasons = reasons_to_retrain(document["decision"], force=force)
    if reasons is None:
        return None
    return retrain(
        paths.root,
        load_params(paths.params_file),
        environment,
        reasons=reasons,
        report=markdown,
        remote=remote,
        github=connect_if_configured() if remote is not None else None,
    )


def to_text(done: Retrained | None, environment: str) -> str:
    """What `modelops retrain` prints: the branch and what became of it, or nothing to do."""
    if done is None:
        return f"retrain: {environment}: the monitor decided not to retrain; nothing to do"
    lines = [f"retrain: {environment}: branch {done.branch}, {done.note}"]
    refreshed = "; ".join(done.refreshed)
    if refreshed:
        lines.append(f"  data: {refreshed}")
    if done.pull_request:
        lines.append(f"  pull request: {done.pull_request}")
    return "\n".join(lines)


def imported_sources(root: Path) -> list[str]:
    """Tracked .dvc files that import data (they have a dependency `dvc update` refreshes)."""
    listed = _git(root, "ls-files", "*.dvc", "**/*.dvc").split()
    found = []
    for name in sorted(set(listed)):
        document = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
        if isinstance(document, dict) and document.get("deps"):
            found.append(name)
    return found


def refresh(root: Path, params: Params) -> list[str]:
    """Refresh the training data in the working tree; what was done, for the PR body."""
    imports = imported_sources(root)
    if imports:
        _run(root, "dvc", "update", *imports)
        return [f"`dvc update {' '.join(imports)}`"]
    command = params.monitoring.retrain.refresh_command
    if command:
        _run(root, "bash", "-e", "-o", "pipefail", "-c", command)
        return [f"monitoring.retrain.refresh_command: `{command}`"]
    source = params.prepare.source
    if re.match(r"^https?://", source):
        _run(root, "dvc", "repro", "--force", "--single-item", "prepare")
        return [f"prepared again from {source}"]
    if source == "synthetic":
        seed = params.prepare.synthetic.seed + 1
        _set_synthetic_seed(root / PARAMS_FILE, seed)
        return [f"a new synthetic sample: prepare.synthetic.seed {seed - 1} -> {seed}"]
    raise RetrainError(
        f"nothing refreshes {source}: import it with `dvc import-url` (then `dvc update` "
        "refreshes it), or set monitoring.retrain.refresh_command to the command that "
        "exports new data there"
    )


def retrain(
    root: Path,
    params: Params,
    environment: str,
    *,
    reasons: list[str],
    report: str,
    remote: str | None,
    github: GitHub | None,
    base: str = "main",
) -> Retrained:
    """Make the branch, refresh, reproduce, commit; push and open the PR when given a remote."""
    branch = BRANCH.format(environment=environment)
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        raise RetrainError(f"the checkout has uncommitted changes, commit or stash them:\n{dirty}")
    if github is not None:
        existing = github.find_pull_request(branch)
        if existing is not None:
            github.comment(existing.number, _still(reasons))
            return Retrained(branch, (), None, existing.url, f"open already: {existing.url}")
    start = _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    data_before = _read_json(root / DATA_METRICS)
    _git(root, "switch", "--force-create", branch, check=True)
    try:
        refreshed = refresh(root, params)
        _run(root, "dvc", "repro")
        _git(root, "add", "--", *_committed(root), check=True)
        if not _git(root, "status", "--porcelain", "--untracked-files=no").strip():
            raise RetrainError(
                "the refreshed data changed nothing the pipeline records: no new data yet"
            )
        data_after = _read_json(root / DATA_METRICS)
        message = _message(environment, reasons, refreshed, data_before, data_after)
        _git(root, "commit", "--quiet", "--message", message, check=True)
        commit = _git(root, "rev-parse", "HEAD").strip()
        url = None
        if remote is not None:
            if _has_dvc_remote(root):
                _run(root, "dvc", "push")
            _git(root, "push", "--quiet", "--force", remote, f"{branch}:{branch}", check=True)
            if github is None:
                note = (
                    f"pushed to {remote}: open a pull request from {branch} (set "
                    "$GITHUB_REPOSITORY and $GITHUB_TOKEN to have it opened)"
                )
                return Retrained(branch, tuple(refreshed), commit, None, note)
            try:
                url = github.create_pull_request(
                    head=branch,
                    base=base,
                    title=message.splitlines()[0],
                    body=_body(message, report),
                ).url
            except GitHubError as exc:
                raise RetrainError(
                    f"{branch} is pushed to {remote}, but GitHub refused the pull request "
                    f"({exc}): open it from {branch} by hand"
                ) from None
        return Retrained(branch, tuple(refreshed), commit, url, "opened" if url else "committed")
    finally:
        # Back where it started, with that commit's outputs (the branch's stay in DVC's cache).
        _git(root, "switch", "--force", start)
        subprocess.run(["dvc", "checkout", "--force", "--quiet"], cwd=root, check=False)


def _committed(root: Path) -> list[str]:
    """What the README's loop commits (params, dvc.lock, outputs kept in git), and .dvc files."""
    stages = yaml.safe_load((root / DVC_FILE).read_text(encoding="utf-8"))["stages"]
    paths = {PARAMS_FILE, LOCK_FILE}
    for spec in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in spec.get(kind, []):
                path, options = (
                    next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                )
                if options.get("cache") is False:
                    paths.add(path)
    tracked = _git(root, "ls-files", "*.dvc", "**/*.dvc", "*.gitignore", "**/.gitignore").split()
    return sorted(p for p in {*paths, *tracked} if (root / p).exists())


def _message(
    environment: str,
    reasons: list[str],
    refreshed: list[str],
    before: JSONObject | None,
    after: JSONObject | None,
) -> str:
    why = "\n".join(f"- {r}" for r in reasons) or "- retraining requested"
    rows = _rows_change(before, after)
    return (
        f"Retrain {environment}: fresh data after production drift\n\n"
        f"Why (modelops monitor):\n{why}\n\nData: {'; '.join(refreshed)}{rows}.\n\n"
        "Opened by the drift monitor; pr.yml gates and reports it. Merge only after review.\n"
    )


def _rows_change(before: JSONObject | None, after: JSONObject | None) -> str:
    if not before or not after:
        return ""
    keys = ("rows", "train_rows", "test_rows", "positive_rate")
    changes = [f"{k} {before[k]} -> {after[k]}" for k in keys if k in before and k in after]
    return f" ({', '.join(changes)})" if changes else ""


def _body(message: str, report: str) -> str:
    return (
        f"{message.split(chr(10), 1)[1].strip()}\n\n<details><summary>The monitor's report"
        f"</summary>\n\n{report}\n\n</details>\n"
    )


def _still(reasons: list[str]) -> str:
    why = "\n".join(f"- {r}" for r in reasons)
    return f"The drift monitor still decides to retrain:\n{why}\n\nThis PR is the retraining."


def _set_synthetic_seed(path: Path, seed: int) -> None:
    """Change prepare.synthetic.seed in place, keeping the file's comments."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"(\n  synthetic:\n(?:    .*\n)*?    seed: )(\d+)")
    if not pattern.search(text):
        raise RetrainError("params.yaml has no prepare.synthetic.seed line to change")
    path.write_text(pattern.sub(lambda m: f"{m.group(1)}{seed}", text, count=1), encoding="utf-8")


def _has_dvc_remote(root: Path) -> bool:
    done = subprocess.run(
        ["dvc", "remote", "list"], cwd=root, capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and bool(done.stdout.strip())


def _read_json(path: Path) -> JSONObject | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _run(root: Path, *command: str) -> None:
    done = subprocess.run(
        command, cwd=root, capture_output=True, text=True, check=False, env=os.environ.copy()
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RetrainError(
            f"`{' '.join(command)}` failed (exit {done.returncode}); nothing was pushed:\n"
            + "\n".join(tail)
        )


def _git(root: Path, *args: str, check: bool = False) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RetrainError(f"`git {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout
