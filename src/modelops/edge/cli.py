"""`modelops export`: a signed, parity-gated edge bundle of the trained or released model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.edge.export import ExportRequest
    from modelops.paths import ProjectPaths


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `export` to the `modelops` command."""
    text = (
        "Build an edge bundle (runbooks/edge.md): the classifier converted to ONNX or compiled "
        "to a C library (native), the encoding tables, a manifest, a parity report and "
        "SHA256SUMS, signed with your key (OpenSSF model-signing), plus a deterministic "
        "tar.gz. Refuses to publish unless the bundle scores the test set and the edge cases "
        "within --tolerance of the trained pipeline and classes every row alike at "
        "evaluate.threshold. Runs the exporter in edge/.venv (make install-edge)."
    )
    export = commands.add_parser("export", help=text.split(" (runbooks")[0], description=text)
    export.add_argument("--format", required=True, choices=("onnx", "native"))
    which = export.add_mutually_exclusive_group()
    which.add_argument("--model", type=Path, help="a model directory (default: models/model)")
    which.add_argument("--env", help="export the model this environment's release names")
    export.add_argument("--out", type=Path, help="output folder (default: bundles/)")
    export.add_argument(
        "--key", type=Path, help="elliptic-curve private key (default: $MODELOPS_SIGNING_KEY)"
    )
    export.add_argument("--unsigned", action="store_true", help="publish without a signature")
    export.add_argument("--name", default="model", help="the bundle's name (default: model)")
    export.add_argument(
        "--tolerance",
        type=float,
        help="largest |Δp| parity accepts (default: gates.edge.tolerance in params.yaml)",
    )
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.edge.export import export
    from modelops.errors import ExitCode
    from modelops.params import load_params

    published = export(_request(args), load_params(paths.params_file), paths)
    print(published["summary"])
    signed = "signed" if published["signed"] else "UNSIGNED"
    print(f"bundle ({signed}): {published['directory']}")
    print(f"archive: {published['archive']} sha256 {published['archive_sha256']}")
    return ExitCode.OK


def _request(args: argparse.Namespace) -> ExportRequest:
    from modelops.edge.export import ExportRequest

    return ExportRequest(
        format=args.format,
        model_dir=args.model,
        env=args.env,
        out_dir=args.out,
        key=args.key,
        unsigned=args.unsigned,
        name=args.name,
        tolerance=args.tolerance,
    )
