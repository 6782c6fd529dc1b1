"""The classifier alone, converted to a format a device runs; or refused with cause and fix.

- onnx: skl2onnx on the classifier with float32 inputs (the encoding tables do the
  preprocessing), no ZipMap, so onnxruntime returns a probability matrix.
- native: Treelite imports the tree ensemble, TL2cgen writes C sources and a header, and gcc
  compiles them into a shared library for this platform; the sources ship beside it so a device
  can compile the same model for its own.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelops_contract.bundle import FORMAT_NATIVE, FORMAT_ONNX, MODEL_FILES, NATIVE_SOURCES
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

# ONNX opset for the main domain; 18 is what onnxruntime >= 1.14 fully runs.
ONNX_OPSET = 18
# What gcc compiles the generated sources with (recorded in the manifest for a device's build).
GCC_FLAGS = ("-O2", "-fPIC", "-shared", "-std=c99")


class ConversionRefusedError(Exception):
    """A format that cannot hold this model faithfully; the message says why and what to do."""


@dataclass(frozen=True)
class Converted:
    """What a conversion wrote into the bundle directory, for the manifest."""

    model_file: str
    converters: dict[str, str]
    platform: str
    build: str = ""


def refusal(classifier: Any, fmt: str) -> str | None:
    """Why `fmt` cannot hold `classifier` faithfully, with the fix; None when it can."""
    kind = type(classifier).__name__
    if fmt == FORMAT_ONNX:
        if isinstance(classifier, HistGradientBoostingClassifier) and _native_categories(
            classifier
        ):
            return (
                "skl2onnx ignores HistGradientBoosting's native categorical splits (the "
                "converted model's probabilities differ, onnx/sklearn-onnx#1051). Use "
                "--format native, or train without them (train.model.native_categorical: false)"
            )
        if not isinstance(
            classifier, HistGradientBoostingClassifier | RandomForestClassifier | LogisticRegression
        ):
            return f"no ONNX conversion is set up for {kind}"
        return None
    if fmt == FORMAT_NATIVE:
        if isinstance(classifier, LogisticRegression):
            return (
                "the native format compiles tree ensembles, and LogisticRegression is not one. "
                "Use --format onnx"
            )
        if not isinstance(classifier, HistGradientBoostingClassifier | RandomForestClassifier):
            return f"no native conversion is set up for {kind}"
        return None
    return f"unknown format {fmt!r}: choose {FORMAT_ONNX} or {FORMAT_NATIVE}"


def _native_categories(classifier: HistGradientBoostingClassifier) -> bool:
    mask = getattr(classifier, "is_categorical_", None)
    return mask is not None and bool(mask.any())


def convert(classifier: Any, fmt: str, *, width: int, directory: Path) -> Converted:
    """Write the converted model into `directory`.

    Raises:
        ConversionRefusedError: `refusal` names a reason.
    """
    reason = refusal(classifier, fmt)
    if reason:
        raise ConversionRefusedError(f"--format {fmt} cannot hold this model: {reason}")
    if fmt == FORMAT_ONNX:
        return _onnx(classifier, width=width, directory=directory)
    return _native(classifier, directory=directory)


def _onnx(classifier: Any, *, width: int, directory: Path) -> Converted:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = to_onnx(
        classifier,
        initial_types=[("inputs", FloatTensorType([None, width]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
    )
    (directory / MODEL_FILES[FORMAT_ONNX]).write_bytes(model.SerializeToString())
    converters = {name: version(name) for name in ("skl2onnx", "onnx", "onnxruntime")}
    return Converted(
        MODEL_FILES[FORMAT_ONNX], {**converters, "opset": str(ONNX_OPSET)}, platform="any"
    )


def _native(classifier: Any, *, directory: Path) -> Converted:
    import tl2cgen
    import treelite

    gcc = shutil.which("gcc")
    if gcc is None:
        raise ConversionRefusedError(
            "--format native compiles C with gcc, and gcc is not on PATH: install it "
            "(apt-get install gcc)"
        )
    model = treelite.sklearn.import_model(classifier)
    sources = directory / NATIVE_SOURCES
    tl2cgen.generate_c_code(model, dirpath=str(sources), params={})
    library = MODEL_FILES[FORMAT_NATIVE]
    files = sorted(path.name for path in sources.glob("*.c"))
    command = [gcc, *GCC_FLAGS, "-o", str(directory / library), *files, "-lm"]
    built = subprocess.run(command, cwd=sources, capture_output=True, text=True)
    if built.returncode:
        raise ConversionRefusedError(
            f"gcc could not compile the generated C: {built.stderr[-2000:]}"
        )
    converters = {name: version(name) for name in ("treelite", "tl2cgen")}
    build = (
        f"cd {NATIVE_SOURCES} && gcc {' '.join(GCC_FLAGS)} -o ../{library} {' '.join(files)} -lm"
    )
    return Converted(
        library,
        {**converters, "gcc": _gcc_version(gcc)},
        platform=f"{platform.system().lower()}-{platform.machine()}",
        build=build,
    )


def _gcc_version(gcc: str) -> str:
    done = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True)
    return done.stdout.strip()
