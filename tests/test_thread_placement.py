"""Thread placement during a run (cpp/src/kernels/thread_placement.hpp): the OpenMP workers are
pinned one per CPU of the process's mask, the calling thread gets its own mask back after each
run, and a user's choice (OMP_PROC_BIND, APL_PIN_THREADS=0) is left alone."""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, os
import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo
before = sorted(os.sched_getaffinity(0))
g = apl.load_onnx(zoo.model_path("lenet"))
g.forward(datasets.load_fashion_mnist("test", limit=8)[0])
workers = []
for tid in os.listdir("/proc/self/task"):
    if int(tid) != os.getpid():
        workers.append(sorted(os.sched_getaffinity(int(tid))))
print(json.dumps({"before": before, "after": sorted(os.sched_getaffinity(0)), "workers": workers}))
"""

CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="pinning needs 2 CPUs in the mask, this process has 1")


def affinities(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "APL_PIN_THREADS")}
    base.update(OMP_NUM_THREADS="2", **env)
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=base, capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


@needs_two_cpus
def test_workers_pinned_and_caller_mask_given_back():
    a = affinities()
    assert a["after"] == a["before"] == CPUS
    pinned = [w for w in a["workers"] if len(w) == 1]
    assert [CPUS[1]] in pinned, a["workers"]  # worker 1 on the second CPU of the mask


@needs_two_cpus
@pytest.mark.parametrize("env", [{"APL_PIN_THREADS": "0"}, {"OMP_PROC_BIND": "false"}])
def test_user_choice_leaves_threads_unpinned(env):
    a = affinities(**env)
    assert a["after"] == CPUS
    assert all(w == CPUS for w in a["workers"]), a["workers"]
