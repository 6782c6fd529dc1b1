"""The runbooks, followed literally: every ```bash block in README.md and runbooks/ runs here.

Each block is classified by its commands (the tables below). A block whose commands need what
these machines lack (a cluster, GitHub, a cloud store, a running server) is not run, and the
table says why. Every other block runs in one of two stories, each in its own copy of the trained
template (tests/shared.py), that two test processes tell side by side: `TRAINING_STORY`, where
those very blocks inspect, interrupt, restore and experiment on the pipeline, and
`RELEASE_STORY`, where they deploy, start a canary, promote, roll back and restore. A block must
exit 0, and when the runbook shows its output (the untagged block right after it) the key lines
must appear, in order, in what it printed: hashes, times and decimals may differ, the rest must
be as written.

A new block fails `test_every_block_is_run_or_says_why_not` until it is either a step of a story
(`STORY`) or made only of commands `NOT_RUNNABLE` explains. What differs from a user's machine,
and only this: `/tmp/msg` is a file of the story's own (the machine is shared); the runbooks'
example model ids (`18a6b0185466` the stable model, `b0159f2672d4` the new one) are the story's
real ones (`Story.command`, `line_pattern`); their bucket `s3://acme-models/` is the template's
local `model-store/`; `git push` goes to a local bare repository that stands in for GitHub, as
`alice` (`GITHUB_ACTOR`); `make` in the copy uses this checkout's environments (linked) and
never reinstalls them. The release story's new model is made by a hook (`_a_new_model`), as the
training story's `dvc exp apply` makes one, so that the two need not wait for each other.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shared import copy_project
from tests.support import REPO_ROOT, command_path, git, venv_bin, write_params

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "runbooks").glob("*.md"))]
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"

# A command (as the shell splits it, quotes removed) matching one of these cannot run here.
NOT_RUNNABLE = {
    r"kubectl\b": "needs a Kubernetes cluster",
    r"argocd\b": "needs Argo CD and a cluster",
    r"curl\b": "needs a running model server (the cluster's, or `make serve`)",
    r"make (serve|mlflow-ui)\b": "starts a server that runs until stopped",
    r"make (up|down)\b": "servers that run until `make down`: tests/rehearsal runs both for real",
    r"make demo\b": "ends by serving a request from serving/.venv (its pipeline steps run below)",
    r"make test\b": "the whole test suite, this test included",
    r"make bench\b": "minutes of full load on a shared machine; run by hand",
    r"(gh|cml)\b": "needs GitHub",
    r"(aws|gcloud|gsutil|az)\b": "needs a cloud account",
    r"dvc (push|pull|fetch)\b": "needs a DVC remote (a cloud store)",
    r"(prometheus|promtool|alertmanager|amtool)\b": "needs a running Prometheus or its tools",
    r"docker\b": "no Docker engine on these machines",
    r"make spark-image\b": "builds an image: no Docker engine on these machines",
    r"(serving/\.venv/bin/)?spark-submit\b": "submits to a Spark cluster (k8s://...): needs a "
    "Kubernetes cluster; tests/serving/test_spark_image.py runs the image's spark-submit locally",
    r"uv (add|lock)\b": "changes the locked dependencies and needs the network",
    r"modelops release .*--object-store-only": "refuses the local store: needs a bucket",
    r"modelops score .*(s3|gs)://": "reads a cloud store",
    r"modelops score .*--candidate": "its exit code is the verdict (0 take over, 1 reject, 3 "
    "hold): tests/cli/test_score.py runs all three",
    r"modelops canary\b": "asks a running Prometheus about a running canary: "
    "tests/rehearsal/test_canary_e2e.py runs it for real",
    r"modelops experiment\b": "asks a running Prometheus about a running experiment: "
    "tests/rehearsal/test_experiment_e2e.py runs it for real",
    r"modelops release \S+ .*(--bundle|--env devices)\b": "an edge environment and a bundle "
    "from the exporter: tests/deploy/test_fleet.py deploys, promotes and rolls back a fleet "
    "through the CLI",
    r"modelops release experiment\b": "needs a candidate published by an earlier release: "
    "tests/deploy/test_walk_experiment.py runs start, conclude and stop through the CLI",
    r"modelops export\b|make install-edge\b|edge/\.venv/bin/|openssl\b": "builds edge/.venv "
    "(~580 MB), compiles C and makes keys: tests/edge/test_export.py runs export, verify and "
    "the key commands for real",
    r"modelops-device\b": "a device's commands: a fleet manifest, signed bundles and a "
    "Pushgateway; tests/edge/test_device_fleet.py runs update, score and report for real",
    r"modelops capacity\b": "minutes of load on a shared machine, and the peak from a running "
    "Prometheus: tests/capacity/test_capacity_cli.py runs it on a small budget",
    r"modelops (monitor|monitor-issues|retrain)\b": "asks a running Prometheus, a server's "
    "request log or GitHub: tests/rehearsal/test_monitor_e2e.py, "
    "tests/monitoring/test_fleet_monitor.py and tests/monitoring/test_retrain.py run them for "
    "real",
}
# Everything else must be one of these: they run in the story's copy of the template.
RUNNABLE = (
    r"dvc\b",
    r"git\b",
    r"modelops\b",
    r"make (repro|report|status|render|lint|exp-show|help)\b",
)
# The runbooks' example ids: the stable model before a change, and the model the change brings.
OLD, NEW = "18a6b0185466", "b0159f2672d4"
# Output lines that differ here by nature, with the reason; the rest of a shown output is checked.
LOOSE = {"Merge pull request": "GitHub's merge commits; the story commits by hand"}
# Shown outputs use a bucket; the copy publishes to the template's local folder.
EXAMPLE_STORE = ("s3://acme-models/", "model-store/")
OPERATORS = {"&&", "||", ";", "|", "&"}


# --- reading the docs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A ```bash block of a doc, and the output the doc shows for it (if any)."""

    doc: str
    line: int
    text: str
    output: str | None

    @property
    def commands(self) -> list[str]:
        return shell_commands(self.text)

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line} {self.commands[0][:50]}"


def _fences(path: Path) -> Iterator[tuple[int, int, str, str]]:
    """(first line, last line, language, text) of each fenced block, dedented to its fence."""
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^( *)```(\S*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        indent, language = len(opening.group(1)), opening.group(2)
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [
            line[indent:] if line[:indent].isspace() else line for line in lines[index + 1 : end]
        ]
        yield index + 1, end + 1, language, "\n".join(body) + "\n"
        index = end + 1


def doc_blocks(path: Path) -> list[Block]:
    """The bash blocks of a doc; an untagged block right after one is the output it shows."""
    fences = list(_fences(path))
    lines = path.read_text().splitlines()
    blocks = []
    for position, (first, last, language, text) in enumerate(fences):
        if language not in ("bash", "sh"):
            continue
        output = None
        if position + 1 < len(fences):
            next_first, _, next_language, next_text = fences[position + 1]
            between = lines[last : next_first - 1]
            if next_language == "" and all(not line.strip() for line in between):
                output = next_text
        relative = str(path.relative_to(REPO_ROOT))
        blocks.append(Block(doc=relative, line=first, text=text, output=output))
    return blocks


def shell_commands(text: str) -> list[str]:
    """The simple commands of a shell snippet, without comments, quotes or operators."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in OPERATORS:
                commands.append(" ".join(current))
                current = []
            else:
                current.append(token)
        commands.append(" ".join(current))
    return [command for command in commands if command]


def classify(block: Block) -> tuple[bool, str, list[str]]:
    """(runnable, why not, commands no table knows)."""
    reasons = {
        reason
        for command in block.commands
        for pattern, reason in NOT_RUNNABLE.items()
        if re.match(pattern, command)
    }
    unknown = [
        command
        for command in block.commands
        if not any(re.match(p, command) for p in (*RUNNABLE, *NOT_RUNNABLE))
    ]
    return not reasons, "; ".join(sorted(reasons)), unknown


BLOCKS = [block for doc in DOCS for block in doc_blocks(doc)]


# --- the story: every runnable block, in an order in which each makes sense -------------------


@dataclass
class Run:
    """One run of a block in the story."""

    command: str
    returncode: int
    output: str
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class Story:
    """The copy of the template the blocks run in, and what each run printed."""

    root: Path
    scratch: Path
    env: dict[str, str]
    versions: dict[str, str] = field(default_factory=dict)
    runs: dict[Block, list[Run]] = field(default_factory=dict)
    history: list[Run] = field(default_factory=list)
    failed: str | None = None

    def command(self, block: Block) -> str:
        """The block as it runs here: the substitutions the module docstring lists."""
        text = block.text.replace("/tmp/msg", str(self.scratch / "msg"))
        for example, real in self.versions.items():
            text = text.replace(example, real)
        return text

    def sh(self, *args: str) -> str:
        done = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def release(self, environment: str) -> dict[str, Any]:
        path = self.root / "manifests" / "releases" / f"{environment}.yaml"
        loaded: dict[str, Any] = yaml.safe_load(path.read_text())
        return loaded


@dataclass(frozen=True)
class Step:
    """Run the block of `doc` whose first command starts with `starts`."""

    doc: str
    starts: str
    check_output: bool = True
    before: Callable[[Story], None] | None = None
    after: Callable[[Story], list[str]] | None = None

    def block(self) -> Block:
        found = [b for b in BLOCKS if b.doc == self.doc and b.commands[0].startswith(self.starts)]
        assert len(found) == 1, f"{self.doc}: {len(found)} blocks start with {self.starts!r}"
        return found[0]


def _interrupt_a_run(story: Story) -> None:
    """A tuning run stopped by Ctrl-C while the model gates run, after train and evaluate."""
    params = story.root / "params.yaml"
    text = params.read_text()
    assert "learning_rate: 0.1\n" in text
    params.write_text(text.replace("learning_rate: 0.1\n", "learning_rate: 0.3\n"))
    with subprocess.Popen(
        [str(venv_bin() / "dvc"), "repro"],
        cwd=story.root,
        env={**story.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            # Once the gate says it runs it is inside the command, seconds before it finishes.
            if line.startswith("gate model champion latency edge: running"):
                time.sleep(0.2)
                os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's group
                break
        printed = run.stdout.read()  # to EOF: until every process of the run, orphans too, is done
    assert run.returncode != 0, f"the run was to be interrupted: {printed}"
    # The stage runs in $SHELL or /bin/sh: bash exits with the 130, dash dies of the SIGINT.
    assert re.search(r"exited with (130|-2)\b", printed), printed
    assert "interrupted: nothing was written" in printed, printed
    # train and evaluate finished, so dvc.lock changed; a failed run stages nothing.
    status = story.sh("git", "status", "--porcelain")
    assert " M dvc.lock" in status.splitlines(), f"dvc.lock is not as expected: {status}"
    # The next `dvc repro` would start at the interrupted stage: the ones before are recorded.
    stale = story.sh("dvc", "status")
    assert "gate_model:" in stale, stale
    assert "train:" not in stale, stale
    assert "evaluate:" not in stale, stale


def _clean(story: Story) -> list[str]:
    status = story.sh("git", "status", "--porcelain", "--untracked-files=all")
    return [f"left uncommitted or untracked: {status}"] if status else []


def _plots_page(*revisions: str) -> Callable[[Story], list[str]]:
    def check(story: Story) -> list[str]:
        page = story.root / "dvc_plots" / "index.html"
        if not page.is_file():
            return ["dvc plots diff wrote no dvc_plots/index.html"]
        html = page.read_text()
        problems = [
            f"index.html does not show {plot.name} of {revision}"
            for revision in revisions
            for plot in sorted((story.root / "plots").glob("*.png"))
            if f'src="static/{revision}_plots_{plot.stem}.png"' not in html
        ]
        if "dvc_plots" in story.sh("git", "status", "--porcelain"):
            problems.append("dvc_plots/ is not git-ignored")
        return problems

    return check


def _a_new_model(story: Story) -> None:
    """A new model on main, trained, gated and committed: what the training story's
    `dvc exp apply lr-0.05` and its commit bring, for the deploy block to start as a canary.

    A retrain on 3,000 rows may lose to the champion by chance: the champion gate warns here,
    so that the canary still starts.
    """
    params = yaml.safe_load((story.root / "params.yaml").read_text())
    params["train"]["model"]["learning_rate"] = 0.05
    params["gates"]["champion"]["mode"] = "warn"
    write_params(story.root, params)
    story.sh("dvc", "repro")
    story.sh("git", "add", "--all")
    story.sh("git", "commit", "--quiet", "--message", "Lower the learning rate to 0.05")


def _first_deploy(story: Story) -> list[str]:
    story.versions[OLD] = story.release("production")["stable"]["version"]
    served = {env: story.release(env)["stable"]["version"] for env in ("staging", "production")}
    expected = dict.fromkeys(served, story.versions[OLD])
    return [] if served == expected else [f"first deploy serves {served}"]


def _canary(story: Story) -> list[str]:
    release = story.release("production")
    story.versions[NEW] = release["canary"]["version"]
    weight = release["canary"]["weight"]
    return [] if weight == 10 else [f"the canary starts at {weight}%, not 10%"]


def _nightly_back(story: Story) -> list[str]:
    """The batch environment took the new model with the merge; rollback brought the old back."""
    stable = story.release("nightly")["stable"]["version"]
    return [] if stable == story.versions[OLD] else [f"nightly runs {stable} after rollback"]


def _restored(story: Story) -> list[str]:
    stable = story.release("production")["stable"]["version"]
    return [] if stable == story.versions[OLD] else [f"production serves {stable} after restore"]


TRAINING = "runbooks/training-pipeline.md"
DEPLOY = "runbooks/deploy.md"
CANARY = "runbooks/canary-promotion.md"
ROLLBACK = "runbooks/rollback.md"
BATCH = "runbooks/batch-scoring.md"
TRAINING_STORY = [
    Step(TRAINING, "dvc status"),
    Step(TRAINING, "dvc repro --dry -f -s gate_model"),
    Step(TRAINING, "git checkout HEAD --", before=_interrupt_a_run, after=_clean),
    Step("README.md", "dvc exp run", after=_plots_page("leaves-15", "leaves-63")),
    Step(TRAINING, "make exp-show"),
    Step(TRAINING, "dvc plots diff main", after=_plots_page("main", "workspace")),
    Step(TRAINING, "dvc exp apply", after=_clean),
]
RELEASE_STORY = [
    Step(DEPLOY, "dvc repro", after=_first_deploy),
    Step(DEPLOY, "dvc repro", before=_a_new_model, after=_canary),
    Step(BATCH, "modelops release rollback --env nightly", after=_nightly_back),
    # The rolled-back model is not deployed again: nothing to change, manifests current.
    Step(BATCH, "modelops release deploy --env nightly"),
    Step(CANARY, "modelops release status"),
    Step(CANARY, "modelops release promote"),
    Step(ROLLBACK, "modelops release rollback"),
    Step(ROLLBACK, "modelops release deploy --env production --retry"),
    Step(CANARY, "modelops release promote", check_output=False),
    Step(CANARY, "modelops release promote", check_output=False),
    Step(CANARY, "modelops release promote", check_output=False),
    Step(ROLLBACK, "modelops release status", after=_restored),
    Step(BATCH, "modelops score --env production --input data"),
]
STORY = [*TRAINING_STORY, *RELEASE_STORY]


def _environment(root: Path, tools: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": command_path(tools),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # The project's own local store, named absolutely so queued experiments use it too.
        "MLFLOW_TRACKING_URI": f"sqlite:///{root.resolve()}/.mlflow/mlflow.db",
        "GITHUB_ACTOR": "alice",  # who the runbooks' examples say did it
    }
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "modelops tests"
        env[f"GIT_{role}_EMAIL"] = "tests@modelops.invalid"
    if SHARED_SCHEMAS.is_dir() and not env.get("MODELOPS_SCHEMAS"):
        env["MODELOPS_SCHEMAS"] = str(SHARED_SCHEMAS)
    for name in ("CI", "GITHUB_ACTIONS"):  # the blocks are typed by a person
        env.pop(name, None)
    return env


def _run(story: Story, step: Step) -> None:
    block = step.block()
    runs = story.runs.setdefault(block, [])
    if story.failed:
        runs.append(Run("", -1, f"not reached: {story.failed}"))
        return
    if step.before:
        try:
            step.before(story)
        except AssertionError as error:
            story.failed = f"preparing {block.name} failed: {str(error)[:1500]}"
            runs.append(Run("", -1, f"preparing the state it needs failed: {error}"))
            return
    command = story.command(block)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", command],
        cwd=story.root,
        env=story.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = Run(command, done.returncode, done.stdout, seconds=time.monotonic() - started)
    if done.returncode == 0 and step.after:
        run.problems = step.after(story)
    if done.returncode != 0 or run.problems:
        story.failed = f"{block.name} failed"
    if step.check_output and block.output is not None:
        run.problems += unmatched(block.output, done.stdout, story.versions)
    runs.append(run)
    story.history.append(run)


def tell(steps: list[Step], trained: Path, base: Path) -> Story:
    """Run `steps` in a copy of the trained project in `base`; what each block printed.

    The copy starts as after the README's first loop: trained, committed, pushed to a remote.
    """
    scratch = base / "scratch"
    scratch.mkdir()
    root = base / "project"
    tools = base / "bin"
    tools.mkdir()
    # The copy links this checkout's environments: `make` must never reinstall them from it.
    make = tools / "make"
    real_make = shutil.which("make") or "make"
    make.write_text(
        f'#!/bin/sh\nexec {real_make} -o .venv/.installed -o serving/.venv/.installed "$@"\n'
    )
    make.chmod(0o755)
    copy_project(trained, root)
    story = Story(root=root, scratch=scratch, env=_environment(root, tools))
    # make targets in the copy use this checkout's environments, which git must not see.
    for name in (".venv", ".tools", "serving/.venv"):
        if (REPO_ROOT / name).exists():
            (root / name).symlink_to(REPO_ROOT / name)
    with (root / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/.venv\n/.tools\n/serving/.venv\n")
    git(base, "init", "--quiet", "--bare", "origin.git")
    story.sh("git", "remote", "add", "origin", str(base / "origin.git"))
    story.sh("git", "push", "--quiet", "--set-upstream", "origin", "main")
    for step in steps:
        _run(story, step)
    # What each block printed, to read when one fails (or to copy into its runbook).
    (scratch / "story.log").write_text(
        "".join(
            f"$ {run.command}\n[exit {run.returncode}, {run.seconds:.0f} s]\n{run.output}\n"
            for run in story.history
        )
    )
    return story


# --- comparing a shown output with a printed one ----------------------------------------------

_TOKENS = re.compile(
    r"(?P<ellipsis>…)"
    r"|(?P<timestamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
    r"|(?P<clock>\d{1,2}:\d\d [AP]M)"
    r"|(?P<hex>\b(?=[0-9a-f]*\d)[0-9a-f]{7,64}\b)"
    r"|(?P<decimal>\d+\.\d+)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)"
)


def line_pattern(line: str, versions: dict[str, str]) -> re.Pattern[str]:
    """A shown output line as a pattern: ids, times and decimals vary; `…` elides."""
    parts = []
    for token in _TOKENS.finditer(line.strip().replace(*EXAMPLE_STORE)):
        kind, text = token.lastgroup, token.group()
        if kind == "ellipsis":
            parts.append(".*?")
        elif kind == "timestamp":
            parts.append(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        elif kind == "clock":
            parts.append(r"\d{1,2}:\d\d [AP]M")
        elif kind == "hex":
            example = next((e for e in versions if text.startswith(e)), None)
            parts.append(
                re.escape(versions[example]) + "[0-9a-f]*" if example else "[0-9a-f]{7,64}"
            )
        elif kind == "decimal":
            parts.append(r"\d+(?:\.\d+)?")
        elif kind == "space":
            parts.append(r"\s+")
        else:
            parts.append(re.escape(text))
    return re.compile("".join(parts))


def unmatched(shown: str, printed: str, versions: dict[str, str]) -> list[str]:
    """Key lines of `shown` that do not appear, in order, among the lines of `printed`."""
    actual = [line.strip() for line in printed.splitlines()]
    position, missing = 0, []
    for line in shown.splitlines():
        if not line.strip() or set(line.strip()) <= set("|-─ ") or any(k in line for k in LOOSE):
            continue
        pattern = line_pattern(line, versions)
        found = next(
            (i for i in range(position, len(actual)) if pattern.fullmatch(actual[i])), None
        )
        if found is None:
            missing.append(f"shown but not printed (in order): {line.strip()!r}")
        else:
            position = found + 1
    return missing


# --- the commit lists: what git keeps, as dvc.yaml says --------------------------------------


def _outputs() -> tuple[set[str], set[str]]:
    """(outputs kept in git: `cache: false`, outputs kept in DVC's cache), from dvc.yaml."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    in_git: set[str] = set()
    in_cache: set[str] = set()
    for spec in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in spec.get(kind, []):
                path, options = (
                    next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                )
                (in_git if options.get("cache") is False else in_cache).add(path)
    return in_git, in_cache


def commit_lists() -> list[tuple[str, str, list[str]]]:
    """(doc, command, paths) of each `git add`/`git checkout HEAD --` that names dvc.lock."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        inline = re.findall(r"`([^`\n]+)`", text)
        commands = [*inline, *(c for b in doc_blocks(doc) for c in b.commands)]
        for command in commands:
            words = command.split()
            if words[:2] == ["git", "add"] or words[:3] == ["git", "checkout", "HEAD"]:
                paths = [w.rstrip("/") for w in words[2:] if w not in ("HEAD", "--")]
                if "dvc.lock" in paths:
                    found.append((str(doc.relative_to(REPO_ROOT)), command, paths))
    return found


def _covers(listed: str, output: str) -> bool:
    return output == listed or output.startswith(f"{listed}/")


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_every_block_is_run_or_says_why_not(block: Block) -> None:
    runnable, reason, unknown = classify(block)
    assert not unknown, (
        f"{block.name}: no table knows {unknown}; add the command to RUNNABLE, or to "
        "NOT_RUNNABLE with the reason it cannot run here"
    )
    if runnable:
        steps = [step for step in STORY if step.block() == block]
        assert steps, f"{block.name} can run here: add a Step for it to STORY"
    else:
        assert reason, f"{block.name}: not runnable, but no reason"


def test_every_story_step_names_one_runnable_block() -> None:
    for step in STORY:
        block = step.block()
        assert classify(block)[0], f"{block.name} is in STORY but {classify(block)[1]}"


def test_every_commit_list_names_each_output_git_keeps() -> None:
    in_git, in_cache = _outputs()
    lists = commit_lists()
    docs = {doc for doc, _, _ in lists}
    assert {"README.md", TRAINING} <= docs, f"the README's step 4 and the runbook list them: {docs}"
    for doc, command, paths in lists:
        missing = sorted(o for o in in_git if not any(_covers(p, o) for p in paths))
        assert not missing, f"{doc}: `{command}` leaves out {missing} (cache: false in dvc.yaml)"
        cached = sorted(o for o in in_cache for p in paths if _covers(p, o))
        assert not cached, f"{doc}: `{command}` names {cached}, which DVC's cache keeps"
        extra = [
            p
            for p in paths
            if p not in ("params.yaml", "dvc.lock") and not any(_covers(p, o) for o in in_git)
        ]
        assert not extra, f"{doc}: `{command}` names {extra}, which no stage writes"


def test_the_readme_loop_commits_what_dvc_yaml_keeps_in_git() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    step = re.search(r"^4\. (.*?)^5\. ", readme, flags=re.MULTILINE | re.DOTALL)
    assert step, "the README's loop has a step 4"
    assert any(command in step.group(1) for _, command, _ in commit_lists()), step.group(1)


def test_a_shown_output_matches_despite_ids_times_and_decimals() -> None:
    shown = "stable 18a6b0185466 (90%) at 2026-11-26T12:21:20Z\n|---|---|\nroc_auc 0.81 …\n"
    printed = "noise\nstable 0123456789ab (90%) at 2027-01-02T03:04:05Z\nroc_auc 0.7 and more\n"
    assert unmatched(shown, printed, {OLD: "0123456789ab"}) == []
    assert unmatched(shown, printed, {OLD: "ba9876543210"}), "the stable model is a known one"
    assert unmatched("stable (25%)", printed, {}), "integers (weights) are literal"


def _blocks(steps: list[Step]) -> list[Block]:
    """The blocks `steps` run, each once, in the order of the docs."""
    ran = {step.block() for step in steps}
    return [block for block in BLOCKS if block in ran]


def _check(block: Block, story: Story) -> None:
    runs = story.runs.get(block)
    assert runs, f"{block.name} is not in STORY"
    for number, run in enumerate(runs, start=1):
        where = f"{block.name} (run {number} of {len(runs)})"
        assert run.returncode == 0, f"{where} exited {run.returncode}:\n{run.command}\n{run.output}"
        assert not run.problems, f"{where}:\n" + "\n".join(run.problems) + f"\n---\n{run.output}"


@pytest.fixture(scope="module")
def training_story(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    return tell(TRAINING_STORY, trained_project, tmp_path_factory.mktemp("training-story"))


@pytest.fixture(scope="module")
def release_story(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    return tell(RELEASE_STORY, trained_project, tmp_path_factory.mktemp("release-story"))


# The two stories are two classes: with `--dist loadscope` pytest-xdist gives each class to a
# process of its own, so both are told at the same time, and each process tells only its own.


@pytest.mark.pipeline
class TestTheTrainingStory:
    @pytest.mark.parametrize("block", _blocks(TRAINING_STORY), ids=lambda b: b.name)
    def test_the_block_runs_and_prints_what_the_doc_shows(
        self, block: Block, training_story: Story
    ) -> None:
        _check(block, training_story)


@pytest.mark.pipeline
class TestTheReleaseStory:
    @pytest.mark.parametrize("block", _blocks(RELEASE_STORY), ids=lambda b: b.name)
    def test_the_block_runs_and_prints_what_the_doc_shows(
        self, block: Block, release_story: Story
    ) -> None:
        _check(block, release_story)
