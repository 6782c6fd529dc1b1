"""`modelops-edge`: the exporter's command line, run by `modelops export` in edge/.venv.

`export REQUEST.json --result RESULT.json` builds a bundle and writes what it published as one
JSON object (not on stdout, where Treelite logs);
`verify BUNDLE --public-key PUB` checks a bundle's sums and signature offline. A refusal prints
`error: ...` on stderr and exits 1; an export's refusal is also the result: `refused` (the
message) and `parity` (its figures, when parity refused).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from modelops_contract.bundle import BundleError, check_sums

from modelops_edge import export, signing
from modelops_edge.convert import ConversionRefusedError
from modelops_edge.tables import UnsupportedModelError

_REFUSALS = (
    export.ExportRefusedError,
    ConversionRefusedError,
    UnsupportedModelError,
    BundleError,
    signing.SignatureRefusedError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="modelops-edge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("export", help="build a bundle as REQUEST (JSON) says")
    run.add_argument("request", type=Path)
    run.add_argument("--result", type=Path, required=True, help="where to write the result")
    check = commands.add_parser("verify", help="check a bundle's sums and signature, offline")
    check.add_argument("bundle", type=Path)
    check.add_argument("--public-key", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            request = json.loads(args.request.read_text(encoding="utf-8"))
            result = json.dumps(_published(export.run(request)), sort_keys=True)
            args.result.write_text(result, encoding="utf-8")
        else:
            check_sums(args.bundle)
            signing.verify(args.bundle, public_key=args.public_key)
            print(f"{args.bundle}: sums and signature verified")
    except _REFUSALS as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.command == "export":
            parity = getattr(exc, "parity", None)
            refused = {"refused": str(exc), "parity": parity.to_dict() if parity else None}
            args.result.write_text(json.dumps(refused, sort_keys=True), encoding="utf-8")
        return 1
    return 0


def _published(exported: export.Exported) -> dict[str, object]:
    return {
        "directory": str(exported.directory),
        "archive": str(exported.archive),
        "archive_sha256": exported.archive_sha256,
        "archive_bytes": exported.archive.stat().st_size,
        "signed": exported.signed,
        "parity": exported.parity.to_dict(),
        "summary": exported.parity.summary(),
    }


if __name__ == "__main__":
    sys.exit(main())
