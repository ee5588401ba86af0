"""The block cache of large tensors (cpp/src/graph/tensor.cpp, BlockCache): blocks of 1 MiB and
more freed by one run serve the next, so a repeated forward maps no fresh pages, and it changes no
value; APL_TENSOR_CACHE_MIB=0 turns it off."""
import json
import os
import subprocess
import sys

SCRIPT = """
import json, resource, sys
import numpy as np
import aidge_ptq_lite as apl
from aidge_ptq_lite import zoo
model = zoo.make_resnet18(seed=0)
g = apl.load_onnx(model)
x = np.random.default_rng(1).standard_normal((16, 3, 224, 224), dtype=np.float32)
first = g.forward(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
again = g.forward(x)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
np.save(sys.argv[1], again)
print(json.dumps({"faults": faults, "same": bool(np.array_equal(first, again))}))
"""


def run(tmp_path, cache_mib):
    env = dict(os.environ)
    env.pop("APL_TENSOR_CACHE_MIB", None)
    if cache_mib is not None:
        env["APL_TENSOR_CACHE_MIB"] = str(cache_mib)
    out = tmp_path / f"y{cache_mib}.npy"
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1]), out


def test_repeated_forward_reuses_blocks_and_changes_no_value(tmp_path):
    import numpy as np
    cached, y_cached = run(tmp_path, None)
    uncached, y_uncached = run(tmp_path, 0)
    assert cached["same"] and uncached["same"]
    np.testing.assert_array_equal(np.load(y_cached), np.load(y_uncached))
    # 16 x 64 x 112 x 112 floats (49 MiB) and the like: above glibc's largest mmap threshold
    # (32 MiB), so without the cache each is mapped afresh, its pages faulted in, every run.
    assert uncached["faults"] > 1000, uncached
    assert cached["faults"] < uncached["faults"] / 10, (cached, uncached)
