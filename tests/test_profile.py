"""APL_PROFILE=1: every executor run prints one timing row per node and a per-op total to
stderr, and leaves the outputs as they are without it."""
import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np
import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo
g = apl.load_onnx(zoo.model_path("lenet"))
apl.quantize_network(g, calibration_set=datasets.load_calibration_set(32))
y = g.forward(datasets.load_fashion_mnist("test", limit=4)[0], dequantize=False)
np.save(sys.argv[1], y)
print("\\n".join(n.name for n in g.nodes()))
"""


def run(tmp_path, profile):
    env = dict(os.environ, APL_PROFILE="1" if profile else "0")
    out = tmp_path / f"y{int(profile)}.npy"
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True,
                       text=True, check=True)
    return np.load(out), p.stdout.split("\n"), p.stderr


def test_profile_table_lists_every_node_and_keeps_outputs(tmp_path):
    y_plain, _, err_plain = run(tmp_path, False)
    y_prof, nodes, err = run(tmp_path, True)
    assert (y_plain == y_prof).all()
    assert "APL_PROFILE" not in err_plain
    assert "APL_PROFILE batch 4" in err
    rows = err[err.index("APL_PROFILE batch 4"):].splitlines()
    total = [r for r in rows if r.startswith("total")]
    assert total, err
    names = [n for n in nodes if n.strip()]
    assert int(total[0].split()[1]) == len(names)
    for name in names:
        assert f"'{name}'" in err
