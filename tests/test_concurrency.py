"""A Graph shared between Python threads: forwards run on an immutable snapshot of the graph
(its executor), so quantize_network, remove and other edits in another thread neither crash nor
tear a running forward; Histogram.add from several threads counts every value. Each case runs
in its own process (a crash must fail the test, not end the run)."""
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import threading, numpy as np
import aidge_ptq_lite as apl
from aidge_ptq_lite import zoo, datasets
x = datasets.load_fashion_mnist("test", data_dir="bundled", limit=32)[0]
calib = datasets.load_calibration_set(64, data_dir="bundled")
errors, stop = [], threading.Event()
def forwards(g, check):
    while not stop.is_set():
        try:
            check(g.forward(x))
        except Exception as exc:
            errors.append(repr(exc))
def run(g, check, edit):
    threads = [threading.Thread(target=forwards, args=(g, check)) for _ in range(2)]
    for t in threads: t.start()
    try:
        edit()
    finally:
        stop.set()
        for t in threads: t.join()
    assert not errors, errors[:3]
"""

CASES = {
    "quantize_during_forwards": """
        g = apl.load_onnx(zoo.model_path("resnet"))
        ref = g.forward(x)
        qref = g.clone(); apl.quantize_network(qref, calib); qref = qref.forward(x)
        def check(y):  # the float network's output or the quantized one's, never a mix
            assert np.array_equal(y, ref) or np.array_equal(y, qref), "torn forward"
        run(g, check, lambda: [apl.quantize_network(g, calib)])
        assert g.is_quantized and np.array_equal(g.forward(x), qref)""",
    "remove_during_forwards": """
        g = apl.load_onnx(zoo.model_path("lenet"))
        names = [n.name for n in g.nodes() if n.op == "Relu"]
        def check(y): assert y.shape == (32, 10)
        def edit():
            for name in names: g.remove(name)
        run(g, check, edit)
        assert not any(n.op == "Relu" for n in g.nodes())""",
    "histogram_add_from_threads": """
        h = apl.Histogram(256)
        values = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)
        ref = apl.Histogram(256)
        for _ in range(8): ref.add(values)
        threads = [threading.Thread(target=lambda: [h.add(values) for _ in range(2)]) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert h.total == 8 * values.size
        assert np.array_equal(h.counts, ref.counts), "counts in wrong bins" """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shared_between_threads(case):
    code = PRELUDE + textwrap.dedent(CASES[case])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
