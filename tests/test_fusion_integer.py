"""Output-pass fusion in the integer network (Executor::plan_fusion): a Relu after a requantization
(a Conv/Gemm's fused Scaling node, or a join's Scaling node) runs as its clamp at code 0; a join's
Add and the Scaling node after it run as one pass (requantize_binary_int8); a no_quant network (float kernels, its Scaling nodes' factors) keeps every Scaling node. A run
without an observer (forward) fuses; one with (intermediate_outputs) runs every node's own kernel:
both give the same integers, at every SIMD level."""
import os
import subprocess
import sys

import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

from conftest import SIMD_LEVELS


def _quantized(name, **options):
    g = apl.load_onnx(zoo.model_path(name))
    apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64), **options)
    return g


@pytest.mark.parametrize("name,options", [("resnet", {}), ("resnet", {"optimize_signs": True}),
                                          ("mobilenet", {}), ("lenet", {"nb_bits": 4}),
                                          ("resnet", {"nb_bits": 4, "optimize_signs": True}),
                                          ("resnet", {"single_shift": True}),
                                          ("resnet", {"no_quant": True})])
def test_fused_relus_give_the_unfused_integers_at_every_level(name, options, test_images):
    g = _quantized(name, **options)
    x = test_images[0][:32]
    detected = SIMD_LEVELS.index(apl.detected_simd_level())
    try:
        for level in SIMD_LEVELS[:detected + 1]:
            apl.set_simd_level(level)
            fused = g.forward(x)
            unfused = g.intermediate_outputs(x, g.outputs)[g.outputs[0]]
            np.testing.assert_array_equal(fused, unfused, err_msg=f"level {level}")
    finally:
        apl.set_simd_level(SIMD_LEVELS[detected])


def test_profile_shows_relus_fused_after_requantization():
    script = ("import numpy as np, aidge_ptq_lite as apl\n"
              "from aidge_ptq_lite import datasets, zoo\n"
              "g = apl.load_onnx(zoo.model_path('resnet'))\n"
              "apl.quantize_network(g, calibration_set=datasets.load_calibration_set(32))\n"
              "g.forward(datasets.load_fashion_mnist('test', limit=2)[0])\n")
    err = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, APL_PROFILE="1"),
                         capture_output=True, text=True, check=True).stderr
    last_run = err[err.rindex("APL_PROFILE batch"):]  # calibration's runs (observed) come first
    rows = [line.split() for line in last_run.splitlines() if "'" in line]  # node rows, not the op totals
    relu_rows = [r[-1] for r in rows if r[0] == "Relu"]
    assert relu_rows and all(v == "fused" for v in relu_rows), err
    # Every Add of the zoo resnet is a join: the Scaling node after it runs in its pass.
    after_add = [b[-1] for a, b in zip(rows, rows[1:]) if a[0] == "Add"]
    assert after_add and all(v == "fused" for v in after_add), err
