"""Each command imports only what it uses: `--help`, and the champion stage that every
`dvc repro` runs, pay for no heavy library (benchmarks/results/demo.md has the seconds)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("deepchecks", "dvc", "matplotlib", "mlflow", "numpy", "pandas", "scipy", "sklearn")
"""Each takes from a quarter of a second to five seconds to import on the machines we measure."""


def _imported_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `code`."""
    report = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_imports_neither_the_stack_nor_params() -> None:
    # Given the whole command line built and its help printed
    code = (
        "import contextlib, io\nfrom modelops.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    # Then nothing heavy was imported, not even pydantic or YAML
    found = _imported_after(code) & {*HEAVY, "pydantic", "yaml"}
    assert not found, f"`modelops --help` imports {sorted(found)}"


def test_the_champion_stage_reads_git_without_the_data_stack() -> None:
    # Given the module `modelops champion` runs (always, on every `dvc repro`)
    found = _imported_after("from modelops.stages import champion") & set(HEAVY)
    # Then it needs no data library: it reads git and the release files only
    assert not found, f"the champion stage imports {sorted(found)}"
