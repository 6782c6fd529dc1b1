"""Open a bundle (its sums checked first) and score raw rows with its model.

Format onnx runs `model.onnx` in onnxruntime with float32 inputs (what skl2onnx converted the
classifier for); format native calls the compiled library's `predict` row by row through ctypes,
with float64 inputs and TL2cgen's missing marker for NaN.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from modelops_contract.bundle import (
    ENCODING,
    FORMAT_NATIVE,
    FORMAT_ONNX,
    MANIFEST,
    SIGNATURE,
    check_sums,
)

from modelops_device.encode import Rows, encode

# TL2cgen's generated `union Entry` reads a feature as missing when its int member is -1.
_TL2CGEN_MISSING = -1


class _Model(Protocol):
    def positive(self, inputs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class Scorer:
    """A bundle opened for scoring."""

    directory: Path
    manifest: Mapping[str, Any]
    encoding: Mapping[str, Any]
    signature: Mapping[str, Any]
    model: _Model

    def encode(self, rows: Rows) -> npt.NDArray[np.float64]:
        """The model's inputs for raw `rows` (see `modelops_device.encode`)."""
        return encode(rows, self.encoding)

    def predict_proba(self, rows: Rows) -> npt.NDArray[np.float64]:
        """The positive class's probability for each raw row."""
        return self.model.positive(self.encode(rows))

    def predict(self, rows: Rows) -> npt.NDArray[np.bool_]:
        """Whether each row is positive at the manifest's threshold (probability >= it)."""
        return self.predict_proba(rows) >= float(self.manifest["threshold"])


def load(directory: Path) -> Scorer:
    """Check `directory` against its SHA256SUMS, then open its model.

    Raises:
        modelops_contract.bundle.BundleError: a file is missing, extra or changed.
        ValueError: the manifest names a format this client does not know.
    """
    check_sums(directory)
    manifest, encoding, signature = (
        json.loads((directory / name).read_text(encoding="utf-8"))
        for name in (MANIFEST, ENCODING, SIGNATURE)
    )
    model_file = directory / str(manifest["model_file"])
    outputs = int(signature["positive_index"]), len(signature["classes"])
    model: _Model
    if manifest["format"] == FORMAT_ONNX:
        model = _Onnx(model_file, outputs)
    elif manifest["format"] == FORMAT_NATIVE:
        model = _Native(model_file, outputs, width=int(encoding["width"]))
    else:
        raise ValueError(f"{directory}: unknown format {manifest['format']!r} in {MANIFEST}")
    return Scorer(directory, manifest, encoding, signature, model)


class _Onnx:
    """skl2onnx's classifier graph without ZipMap: outputs (label, probabilities)."""

    def __init__(self, path: Path, outputs: tuple[int, int]) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._positive = outputs[0]

    def positive(self, inputs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        _, probabilities = self._session.run(None, {self._input: inputs.astype(np.float32)})
        return np.asarray(probabilities, dtype=np.float64)[:, self._positive]


class _Native:
    """A TL2cgen library: `predict(union Entry*, int pred_margin, double* result)` per row."""

    def __init__(self, path: Path, outputs: tuple[int, int], *, width: int) -> None:
        self._library = ctypes.CDLL(str(path.resolve()))
        self._library.predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._library.predict.restype = None
        self._library.get_num_feature.restype = ctypes.c_int32
        features = self._library.get_num_feature()
        if features != width:
            raise ValueError(f"{path.name} takes {features} features, the encoding gives {width}")
        self._library.get_num_target.restype = ctypes.c_int32
        classes = (ctypes.c_int32 * 1)()
        self._library.get_num_class(classes)
        self._outputs = int(self._library.get_num_target()) * int(classes[0])
        self._positive, self._classes = outputs

    def positive(self, inputs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        entries = np.ascontiguousarray(inputs, dtype=np.float64)
        # Little-endian: the union's int member is the low half of each 8-byte entry.
        halves = entries.view(np.int32).reshape(*entries.shape, 2)
        halves[..., 0][np.isnan(inputs)] = _TL2CGEN_MISSING
        result = np.zeros(self._outputs)
        scores = np.empty((len(entries), self._outputs))
        for row in range(len(entries)):
            result[:] = 0.0  # predict adds to the buffer
            self._library.predict(entries[row].ctypes.data, 0, result.ctypes.data)
            scores[row] = result
        if self._outputs == 1:  # binary: the probability of the second class
            return scores[:, 0] if self._positive == 1 else 1.0 - scores[:, 0]
        return scores[:, self._positive]
