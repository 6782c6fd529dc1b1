"""What a device runs to score with an edge bundle, and nothing more.

`load(directory)` checks the bundle against its SHA256SUMS, reads its encoding tables and opens
its model (onnxruntime for format onnx, the compiled library through ctypes for format native);
`Scorer.predict_proba(rows)` encodes raw rows exactly as the trained pipeline does and returns
the positive class's probabilities. Only numpy, the contract and (for onnx) onnxruntime: no
scikit-learn, no pandas, so it runs where the pipeline's stack cannot. The exporter measures
parity through this very code.
"""

from modelops_device.encode import Rows, encode
from modelops_device.score import Scorer, load

__all__ = ["Rows", "Scorer", "encode", "load"]
