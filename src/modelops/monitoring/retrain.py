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

Steps 1 to 4 need no token and 5 no pipeline: without a remote it stops after 4 (the branch is
committed, nothing leaves the machine), and `--push-only` does 5 alone for the branch an earlier
run committed on this checkout's commit. monitor.yml runs the two in separate steps, so the
retraining token is in the environment of the push alone. Whichever runs, no child process that
does not talk to GitHub (DVC, the pipeline, the refresh command) gets a GitHub token in its
environment, and git pushes with it through a credential helper, never a URL.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops.errors import GitHubError, RetrainError
from modelops.github import GitHub, connect_if_configured, git_push_environ, without_tokens
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
    push_only: bool = False,
) -> Retrained | None:
    """Retrain when the environment's latest monitor report says to (or `force`); None when
    it does not. With a `remote`, push; then open the pull request where a repository and a
    token are set ($GITHUB_REPOSITORY, $GITHUB_TOKEN: in Actions), else leave it to the user.
    With `push_only`, only push the branch an earlier call without a remote committed."""
    document, markdown = read_report(paths, folder, environment)
    reasons = reasons_to_retrain(document["decision"], force=force)
    if reasons is None:
        return None
    github = connect_if_configured() if remote is not None else None
    if push_only:
        if remote is None:
            raise RetrainError("--push-only pushes the branch to a remote: give --remote")
        return push_branch(
            paths.root, environment, reasons=reasons, report=markdown, remote=remote, github=github
        )
    return retrain(
        paths.root,
        load_params(paths.params_file),
        environment,
        reasons=reasons,
        report=markdown,
        remote=remote,
        github=github,
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
    open_already = _before_branching(root, branch, reasons, github)
    if open_already is not None:
        return open_already
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
        if remote is None:
            return Retrained(branch, tuple(refreshed), commit, None, "committed")
        url = _publish(root, branch, message, report, remote=remote, github=github, base=base)
        return Retrained(branch, tuple(refreshed), commit, url, _published(url, branch, remote))
    finally:
        # Back where it started, with that commit's outputs (the branch's stay in DVC's cache).
        _git(root, "switch", "--force", start)
        subprocess.run(
            ["dvc", "checkout", "--force", "--quiet"], cwd=root, check=False, env=without_tokens()
        )


def push_branch(
    root: Path,
    environment: str,
    *,
    reasons: list[str],
    report: str,
    remote: str,
    github: GitHub | None,
    base: str = "main",
) -> Retrained:
    """Push the branch that `retrain` (without a remote) committed on the checked-out commit,
    with its DVC outputs, and open its pull request: no refresh, no pipeline, only what needs
    the token. A retraining pull request open already is commented on instead (its branch is
    left as its reviewers see it)."""
    branch = BRANCH.format(environment=environment)
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}").strip()
    if not commit:
        raise RetrainError(
            f"no branch {branch} to push: run `modelops retrain --env {environment}` first"
        )
    parent = _git(root, "rev-parse", "--verify", "--quiet", f"{branch}~1").strip()
    if parent != _git(root, "rev-parse", "HEAD").strip():
        raise RetrainError(
            f"{branch} was not committed on the checked-out commit: run `modelops retrain "
            f"--env {environment}` again here"
        )
    open_already = _before_branching(root, branch, reasons, github)
    if open_already is not None:
        return open_already
    message = _git(root, "log", "-1", "--format=%B", branch, check=True)
    start = _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    # Only git's files change: DVC pushes the outputs the branch's dvc.lock names from its cache.
    _git(root, "switch", "--quiet", branch, check=True)
    try:
        url = _publish(root, branch, message, report, remote=remote, github=github, base=base)
    finally:
        _git(root, "switch", "--quiet", "--force", start)
    return Retrained(branch, (), commit, url, _published(url, branch, remote))


def _before_branching(
    root: Path, branch: str, reasons: list[str], github: GitHub | None
) -> Retrained | None:
    """Refuse a checkout with uncommitted changes; a retraining pull request open already is
    commented on (its branch is left as its reviewers see it) and returned instead."""
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        raise RetrainError(f"the checkout has uncommitted changes, commit or stash them:\n{dirty}")
    if github is None:
        return None
    existing = github.find_pull_request(branch)
    if existing is None:
        return None
    github.comment(existing.number, _still(reasons))
    return Retrained(branch, (), None, existing.url, f"open already: {existing.url}")


def _publish(
    root: Path,
    branch: str,
    message: str,
    report: str,
    *,
    remote: str,
    github: GitHub | None,
    base: str,
) -> str | None:
    """Push the checked-out branch (its DVC outputs first) and open its pull request; the
    pull request's address, or None without GitHub."""
    if _has_dvc_remote(root):
        _run(root, "dvc", "push")
    push = ["git", "push", "--quiet", "--force", remote, f"{branch}:{branch}"]
    environ = git_push_environ(github.token) if github is not None else without_tokens()
    done = subprocess.run(push, cwd=root, capture_output=True, text=True, env=environ, check=False)
    if done.returncode != 0:
        raise RetrainError(f"`{' '.join(push)}` failed: {done.stderr.strip()}")
    if github is None:
        return None
    try:
        return github.create_pull_request(
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


def _published(url: str | None, branch: str, remote: str) -> str:
    if url is not None:
        return "opened"
    return (
        f"pushed to {remote}: open a pull request from {branch} (set "
        "$GITHUB_REPOSITORY and $GITHUB_TOKEN to have it opened)"
    )


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
        ["dvc", "remote", "list"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=without_tokens(),
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
        command, cwd=root, capture_output=True, text=True, check=False, env=without_tokens()
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RetrainError(
            f"`{' '.join(command)}` failed (exit {done.returncode}); nothing was pushed:\n"
            + "\n".join(tail)
        )


def _git(root: Path, *args: str, check: bool = False) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, env=without_tokens()
    )
    if check and done.returncode != 0:
        raise RetrainError(f"`git {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout
