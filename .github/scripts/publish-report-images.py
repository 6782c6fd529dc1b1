"""Upload the images a pull-request report embeds and link them by address (pr.yml, job gates).

    python .github/scripts/publish-report-images.py REPORT_MD

CML can upload a report's images itself as it posts the comment (`--publish`), but it uploads
any local file the Markdown names, and the job that posts holds a token while the report is
written by the pull request's code: a link to /proc/self/environ would publish that token. So
the gates job, which holds no credential, uploads here the images the report embeds (relative
links to image files inside the checkout) with `cml asset publish`, to the same asset host
(asset.cml.dev), and rewrites their links to the addresses it answers; the comment job then
posts with `--no-publish`, which uploads nothing.

An image that cannot be uploaded keeps its local link (the comment shows it broken) and a
warning says so: a report without a plot must not fail the gates. Standard library only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CML = ("npx", "--yes", "@dvcorg/cml@0.20.6", "asset", "publish")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg"})
# `![title](target)` with a target without spaces: how modelops report writes its plots.
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def local_images(report: Path, root: Path) -> list[str]:
    """The targets of the report's embedded images that are image files inside `root`."""
    root = root.resolve()
    found = []
    for target in dict.fromkeys(_IMAGE.findall(report.read_text(encoding="utf-8"))):
        if "://" in target or target.startswith(("/", "data:")):
            continue
        path = (report.parent / target).resolve()
        inside = path.is_relative_to(root)
        if inside and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(target)
    return found


def rewrite(text: str, addresses: dict[str, str]) -> str:
    """`text` with each image link to a key of `addresses` pointing at its value instead."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(1)
        return match.group(0).replace(f"({target})", f"({addresses[target]})", 1)

    return _IMAGE.sub(lambda m: replace(m) if m.group(1) in addresses else m.group(0), text)


def upload(path: Path) -> str | None:
    """The address `cml asset publish` gives `path`, or None (with a warning) when it fails."""
    done = subprocess.run([*CML, str(path)], capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("https://"):
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no address"]
        print(f"::warning::could not upload {path}: {detail[0]}")
        return None
    return lines[-1]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: publish-report-images.py REPORT_MD", file=sys.stderr)
        return 2
    report = Path(argv[0])
    targets = local_images(report, Path.cwd())
    addresses = {}
    for target in targets:
        address = upload(report.parent / target)
        if address is not None:
            addresses[target] = address
    text = rewrite(report.read_text(encoding="utf-8"), addresses)
    partial = report.with_name(f".{report.name}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(report)
    print(f"uploaded {len(addresses)} of {len(targets)} images of {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
