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


SWITCHES_SCRIPT = """
import os
import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo
g = apl.load_onnx(zoo.model_path("resnet"))
x = datasets.load_fashion_mnist("test", limit=64)[0]
g.forward(x)
def worker_sleeps():
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != os.getpid():
            with open(f"/proc/self/task/{tid}/status") as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
    return total
before = worker_sleeps()
for _ in range(20):
    g.forward(x)
print(worker_sleeps() - before)
"""


def worker_sleeps(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", SWITCHES_SCRIPT], env=dict(base, OMP_NUM_THREADS="2", **env),
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


@needs_two_cpus
def test_idle_workers_spin_between_the_kernels_of_a_forward():
    """By default (GOMP_SPINCOUNT=30000 set at import) the workers wait for the next kernel
    spinning: a forward's ~40 parallel regions do not each put them to sleep (a voluntary context
    switch, then a futex wake-up per kernel), as OMP_WAIT_POLICY=PASSIVE does."""
    passive = worker_sleeps(OMP_WAIT_POLICY="PASSIVE")
    default = worker_sleeps()
    assert passive > 200, passive  # 20 forwards of ~40 kernels each
    assert default * 4 < passive, (default, passive)
