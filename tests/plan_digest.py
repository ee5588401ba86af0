"""Digests of the quantized zoo networks: the integer outputs and the plan (every step, clamp,
multiplier and integer parameter), used to prove that a refactor changes no behaviour.

``tools/make_plan_digests.py`` writes tests/fixtures/plan_digests.json from the code as it is;
tests/test_plan_digest.py recomputes the digests and compares them node by node.
"""
import hashlib

import numpy as np

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

# name -> quantize_network keywords. 8 and 4 bits, per tensor and channel-wise, MSE, signs on and
# off, single shift; plus MAX with CLE, KL and a wide (12-bit) network.
CONFIGS = {
    "8b-tensor-mse": dict(nb_bits=8, clipping_mode="MSE"),
    "8b-channel-mse": dict(nb_bits=8, clipping_mode="MSE", channel_wise=True),
    "4b-tensor-mse-signs": dict(nb_bits=4, clipping_mode="MSE", optimize_signs=True),
    "4b-channel-mse": dict(nb_bits=4, clipping_mode="MSE", channel_wise=True),
    "8b-tensor-mse-signs-shift": dict(nb_bits=8, clipping_mode="MSE", optimize_signs=True, single_shift=True),
    "4b-channel-mse-shift": dict(nb_bits=4, clipping_mode="MSE", channel_wise=True, single_shift=True),
    "8b-tensor-max-cle": dict(nb_bits=8, clipping_mode="MAX", cross_layer_equalization=True),
    "6b-channel-kl-signs": dict(nb_bits=6, clipping_mode="KL", channel_wise=True, optimize_signs=True),
    "12b-channel-mse-signs": dict(nb_bits=12, clipping_mode="MSE", channel_wise=True, optimize_signs=True),
}
CALIBRATION_IMAGES = 128
TEST_IMAGES = 128


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return f"{a.dtype}{list(a.shape)}:{_sha(a.tobytes())}"


def node_record(node) -> str:
    """Canonical text of what the integer network of one node is made of."""
    q = node.quant
    mult = ",".join(f"{m}>>{s}" for m, s in q["multiplier"])
    # A Scaling node's requantization factors (recorded, before the typed plan, in its params[0]).
    params = " ".join(_array_digest(p) for p in ([q["factor"]] if node.op == "Scaling" else node.params))
    return (f"{node.op} step={q['step']!r} lo={q['lo']} hi={q['hi']} unsigned={q['unsigned']} "
            f"dq={q['dequantize_point']} float={q['kept_float']} mult={_sha(mult.encode())} params={params}")


def digest(model: str, config: str) -> dict:
    """Quantize a zoo model in one configuration; returns {"nodes": {name: record digest},
    "codes": digest of forward(dequantize=False), "values": digest of forward()}."""
    g = apl.load_onnx(zoo.model_path(model))
    calibration = datasets.load_calibration_set(CALIBRATION_IMAGES, data_dir="bundled")
    x, _ = datasets.load_fashion_mnist("test", data_dir="bundled", limit=TEST_IMAGES)
    apl.quantize_network(g, calibration_set=calibration, **CONFIGS[config])
    return {
        "nodes": {n.name: _sha(node_record(n).encode()) for n in g.nodes()},
        "codes": _array_digest(g.forward(x, dequantize=False)),
        "values": _array_digest(g.forward(x)),
    }
