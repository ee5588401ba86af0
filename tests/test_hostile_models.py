"""Hostile model files, paths and environments (issue 16): a clear Python exception naming the
node, tensor or flag, or the correct result, never a crash, a hang, a silently wrong result or a
lost file. Each case runs in its own process (a crash is a signal, not a failed assertion), as in
test_reliability.py; onnxruntime is the oracle of what is an invalid model and of correct results.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from aidge_ptq_lite import zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = textwrap.dedent("""
    import os, resource, shutil, signal
    import numpy as np, onnx, onnxruntime as ort, pytest
    from onnx import TensorProto, helper, numpy_helper
    import aidge_ptq_lite as apl
    from aidge_ptq_lite import datasets, zoo
    LENET = zoo.model_path("lenet")
    BIG = 2 ** 62

    def model(nodes, inits=(), inputs=None, in_shape=("N", 3, 4, 4)):
        inputs = inputs if inputs is not None else [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
        g = helper.make_graph(nodes, "t", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    def weights(*shape, dtype=np.float32):
        return const("w", np.ones(shape, dtype))

    def ort_session(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])

    def ort_refuses(m, shape=(1, 3, 4, 4)):
        # The oracle: onnxruntime calls the model invalid (at load, or when it runs).
        try:
            ort_session(m).run(None, {"x": np.ones(shape, np.float32)})
        except Exception:
            return True
        return False

    def load_and_run(m, shape=(1, 3, 4, 4)):
        # What a user does: load, then forward (where the old code crashed or returned garbage).
        return apl.load_onnx(m).forward(np.ones(shape, np.float32))

    def agrees_with_ort(m, shape=(1, 3, 4, 4)):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ours = apl.load_onnx(m).forward(x)
        ref = ort_session(m).run(None, {"x": x})[0]
        assert ours.shape == ref.shape and np.allclose(ours, ref, atol=1e-5), (ours, ref)

    def quantized_lenet():
        g = apl.load_onnx(LENET)
        apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64, data_dir="bundled"))
        return g

    READ = []  # files the permissive loader read

    def permissive_onnx():
        # onnx <= 1.15 read external data wherever its location pointed (os.path.join, no check):
        # replace onnx's loaders by such a reader, so the test does not depend on the installed
        # onnx refusing '..' or symbolic links itself.
        import onnx.external_data_helper as h, onnx.numpy_helper as nh
        def load_tensor(t, base_dir):
            loc = {e.key: e.value for e in t.external_data}["location"]
            READ.append(loc)
            with open(os.path.join(base_dir, loc), "rb") as f:
                t.raw_data = f.read()
            del t.external_data[:]
            t.data_location = TensorProto.DEFAULT
        def load_model(m, base_dir):
            for t in h._get_all_tensors(m):
                if h.uses_external_data(t):
                    load_tensor(t, base_dir)
        h.load_external_data_for_tensor = nh.load_external_data_for_tensor = load_tensor
        h.load_external_data_for_model = onnx.load_external_data_for_model = load_model
        import onnx as o
        o.load_external_data_for_model = load_model

    def external_model(location, folder="m"):
        # A Conv whose weights are in an external file at `location`; saved as folder/model.onnx.
        os.makedirs(folder, exist_ok=True)
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3, 1, 1])
        w.data_location = TensorProto.EXTERNAL
        entry = w.external_data.add(); entry.key, entry.value = "location", location
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [w])
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        return path

    SECRET = np.arange(6, dtype=np.float32) + 100  # 24 bytes: exactly the weights' size
""")

CASES = {
    # ---- shape arithmetic: overflow and the tensor size cap -> ShapeError naming the node ----
    "pad_output_2e62_elements": """
        p = 2 ** 30 - 2  # H = W = 2^31: 3 x 2^62 elements, wrapped to a small buffer before
        m = model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad1")],
                  [const("pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Pad 'pad1'"): load_and_run(m)""",
    "pad_overflows_int64": """
        m = model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad1")],
                  [const("pads", np.array([0, 0, BIG, BIG, 0, 0, BIG, BIG], np.int64))])
        with pytest.raises(apl.ShapeError, match="Pad 'pad1'"): load_and_run(m)""",
    "input_dims_product_overflows": """
        m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], in_shape=("N", 2 ** 32, 2 ** 32, 4))
        with pytest.raises(apl.ShapeError, match="input 'x'"): apl.load_onnx(m)""",
    "input_dims_over_the_cap": """
        m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], in_shape=("N", 4096, 4096, 4096))
        with pytest.raises(apl.ShapeError, match="input 'x'.*limit"): apl.load_onnx(m)""",
    "reshape_target_product_wraps": """
        # (2^62 + 1) x 4 wraps to 4 in int64: the target (2^62 + 1, 4, 12) passed for 48 elements.
        m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                  [const("s", np.array([0, 2 ** 62 + 1, 4, -1], np.int64))])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Reshape 'rs'"): load_and_run(m)""",
    "reshape_negative_target": """
        m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                  [const("s", np.array([0, -4, -12], np.int64))])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Reshape 'rs'"): load_and_run(m)""",
    "reshape_float_target": """
        m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], [const("s", np.array([0, -1], np.float32))])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Reshape 'rs': shape must be a list of integers"): load_and_run(m)""",
    "reshape_zero_beyond_the_input_rank": """
        # A 0 copies the input dimension at its position; past the input's rank there is none
        # (was silently read as 1).
        m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], [const("s", np.zeros(6, np.int64))])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Reshape 'rs': a 0 at position 4"): load_and_run(m)""",
    "input_dimension_zero": """
        m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], in_shape=("N", 3, 0, 4))
        with pytest.raises(apl.ShapeError, match="input 'x' has dimension 2 of size 0"): apl.load_onnx(m)""",
    # ---- window arithmetic, validated at load ----
    "maxpool_kernel_zero": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[0, 0])])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'.*kernel_shape"): load_and_run(m)""",
    "averagepool_kernel_zero": """
        m = model([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[0, 0])])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="AveragePool 'ap'.*kernel_shape"): load_and_run(m)""",
    "conv_kernel_zero": """
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[0, 0])], [weights(2, 3, 0, 0)])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="Conv 'c'"): load_and_run(m)""",
    "maxpool_kernel_shape_floats": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2.0, 2.0])])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp': kernel_shape must be a list of integers"): load_and_run(m)""",
    "maxpool_without_kernel_shape": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp")])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp': kernel_shape is required"): load_and_run(m)""",
    "maxpool_kernel_2e31_pads_2e30": """
        k, p = 2 ** 31, 2 ** 30
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[k, k], pads=[p] * 4)])
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'"): load_and_run(m)""",
    "averagepool_kernel_2e31_pads_2e30": """
        k, p = 2 ** 31, 2 ** 30
        m = model([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[k, k], pads=[p] * 4)])
        with pytest.raises(apl.ShapeError, match="AveragePool 'ap'"): load_and_run(m)""",
    "maxpool_kernel_and_pads_2e62": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[BIG, BIG], pads=[BIG] * 4)])
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'"): load_and_run(m)""",
    "averagepool_kernel_and_pads_2e62": """
        m = model([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[BIG, BIG], pads=[BIG] * 4)])
        with pytest.raises(apl.ShapeError, match="AveragePool 'ap'"): load_and_run(m)""",
    "maxpool_same_padding_kernel_2e62": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[BIG, BIG], auto_pad="SAME_UPPER")])
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'"): load_and_run(m)""",
    "conv_dilation_wraps": """
        # 4 x (2^62 + 1) wraps to 4: a 5x5 window of extent 5 on paper, taps 2^62 apart in memory.
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", dilations=[2 ** 62 + 1] * 2)],
                  [weights(2, 3, 5, 5)], in_shape=("N", 3, 8, 8))
        assert ort_refuses(m, (1, 3, 8, 8))
        with pytest.raises(apl.ShapeError, match="Conv 'c'"): load_and_run(m, (1, 3, 8, 8))""",
    "conv_pads_wrap": """
        # 8 + 2 x (2^63 - 2) wraps to 4: a 4x4 padded input on paper.
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[2 ** 63 - 2] * 4)],
                  [weights(2, 3, 3, 3)], in_shape=("N", 3, 8, 8))
        assert ort_refuses(m, (1, 3, 8, 8))
        with pytest.raises(apl.ShapeError, match="Conv 'c'"): load_and_run(m, (1, 3, 8, 8))""",
    "pool_pads_not_smaller_than_kernel": """
        # Windows made only of padding: -inf / 0 before; onnxruntime refuses such pads.
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[2, 2, 2, 2])])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'.*smaller than kernel"): load_and_run(m)""",
    "pool_negative_pads": """
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[-1, 0, 0, 0])])
        assert ort_refuses(m)
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'.*non-negative"): load_and_run(m)""",
    "window_work_over_the_cap": """
        # 2049 x 2049 outputs of 2048 x 2048 taps per channel: 2^44 compares, days of forward.
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2048, 2048])],
                  in_shape=("N", 1, 4096, 4096))
        with pytest.raises(apl.ShapeError, match="MaxPool 'mp'.*work"): apl.load_onnx(m)""",
    "maxpool_huge_stride_is_correct": """
        agrees_with_ort(model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], strides=[BIG, BIG])]))""",
    "conv_huge_stride_is_correct": """
        w = const("w", np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32))
        agrees_with_ort(model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[BIG, BIG], pads=[1] * 4)], [w]))""",
    "conv_huge_stride_quantized_is_correct": """
        # The integer kernels take the same clamped stride: quantized output matches float closely.
        w = const("w", np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32))
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[BIG, 1])], [w], in_shape=("N", 3, 8, 8))
        g = apl.load_onnx(m)
        x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
        ref = ort_session(m).run(None, {"x": x})[0]
        apl.quantize_network(g, calibration_set=x)
        y = g.forward(x)
        assert y.shape == ref.shape and np.abs(y - ref).max() < 0.05 * np.abs(ref).max()""",
    "allocation_failure_inside_openmp_region": """
        # A padded plane of scratch memory (16392 x 16392 floats, 1 GiB) that cannot be allocated
        # under the address-space limit: std::bad_alloc inside '#pragma omp parallel' terminated
        # the process.
        m = model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[8193, 8193],
                                    pads=[8192] * 4, strides=[8192, 8192])], in_shape=("N", 1, 8, 8))
        g = apl.load_onnx(m)
        apl.load_onnx(LENET).forward(np.zeros((2, 1, 28, 28), np.float32))  # threads started
        used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), resource.RLIM_INFINITY))
        with pytest.raises(MemoryError): g.forward(np.ones((1, 1, 8, 8), np.float32))""",
    # ---- ONNX import: invalid models refused, every message naming the node or tensor ----
    "two_nodes_produce_one_tensor": """
        m = model([helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Sigmoid", ["x"], ["y"], name="b")])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="'y'.*Relu 'a'.*Sigmoid 'b'"): apl.load_onnx(m)""",
    "node_output_shadows_the_input": """
        m = model([helper.make_node("Relu", ["x"], ["x"], name="a"), helper.make_node("Relu", ["x"], ["y"], name="b")])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="'x'.*graph input.*Relu 'a'"): apl.load_onnx(m)""",
    "duplicate_node_names": """
        m = model([helper.make_node("Relu", ["x"], ["a"], name="r"), helper.make_node("Relu", ["a"], ["y"], name="r")])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="two nodes are named 'r'"): apl.load_onnx(m)""",
    "conv_weight_name_empty": """
        m = model([helper.make_node("Conv", ["x", ""], ["y"], name="c")])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="Conv 'c': input 1"): load_and_run(m)""",
    "conv_weight_name_empty_with_bias": """
        # The bias must not take the weights' place.
        m = model([helper.make_node("Conv", ["x", "", "b"], ["y"], name="c")], [const("b", np.ones(2, np.float32))])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="Conv 'c': input 1"): load_and_run(m)""",
    "gemm_b_name_empty": """
        m = model([helper.make_node("Gemm", ["x", ""], ["y"], name="g")], in_shape=("N", 3))
        assert ort_refuses(m, (1, 3))
        with pytest.raises(ValueError, match="Gemm 'g': input 1"): load_and_run(m, (1, 3))""",
    "conv_int64_weights": """
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [weights(2, 3, 3, 3, dtype=np.int64)])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="Conv 'c': initializer 'w' is int64"): apl.load_onnx(m)""",
    "conv_bool_weights": """
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [weights(2, 3, 3, 3, dtype=bool)])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="Conv 'c': initializer 'w' is bool"): apl.load_onnx(m)""",
    "add_int64_constant": """
        m = model([helper.make_node("Add", ["x", "k"], ["y"], name="a")], [const("k", np.ones((1, 3, 1, 1), np.int64))])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="Add 'a': initializer 'k' is int64"): apl.load_onnx(m)""",
    "raw_data_shorter_than_dims": """
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3], raw_data=bytes(40))
        m = model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [w])
        assert ort_refuses(m)
        with pytest.raises(ValueError, match="initializer 'w' holds 40 bytes"): apl.load_onnx(m)""",
    "no_graph_input": """
        m = model([helper.make_node("Relu", ["k"], ["y"], name="r")], [const("k", np.ones((1, 3), np.float32))], inputs=[])
        with pytest.raises(ValueError, match="no graph input"): apl.load_onnx(m)""",
    # ---- external data: only files inside the model's folder, checked by us before reading ----
    "external_data_dotdot": """
        SECRET.tofile("secret.bin")
        path = external_model("../secret.bin")
        permissive_onnx()
        with pytest.raises(ValueError, match="tensor 'w'.*outside the model's folder"): apl.load_onnx(path)
        assert READ == []""",
    "external_data_dotdot_inside_a_name": """
        SECRET.tofile("secret.bin"); os.makedirs("m/a")
        path = external_model("a/../../secret.bin")
        permissive_onnx()
        with pytest.raises(ValueError, match="tensor 'w'.*outside the model's folder"): apl.load_onnx(path)
        assert READ == []""",
    "external_data_absolute_path": """
        SECRET.tofile("secret.bin")
        path = external_model(os.path.abspath("secret.bin"))
        permissive_onnx()
        with pytest.raises(ValueError, match="tensor 'w'.*absolute"): apl.load_onnx(path)
        assert READ == []""",
    "external_data_symlink_out": """
        SECRET.tofile("secret.bin")
        path = external_model("w.bin")
        os.symlink(os.path.abspath("secret.bin"), "m/w.bin")
        permissive_onnx()
        with pytest.raises(ValueError, match="tensor 'w'.*outside the model's folder"): apl.load_onnx(path)
        assert READ == []""",
    "external_data_symlinked_folder_out": """
        os.makedirs("elsewhere"); SECRET.tofile("elsewhere/w.bin")
        path = external_model("sub/w.bin")
        os.symlink(os.path.abspath("elsewhere"), "m/sub")
        permissive_onnx()
        with pytest.raises(ValueError, match="tensor 'w'.*outside the model's folder"): apl.load_onnx(path)
        assert READ == []""",
    "external_data_inside_is_read": """
        path = external_model("w.bin")
        SECRET.tofile("m/w.bin")
        g = apl.load_onnx(path)
        assert np.array_equal(g.get_param("c", 0).ravel(), SECRET)
        x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
        ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        assert np.allclose(g.forward(x), ref, rtol=1e-5, atol=1e-4)""",
    "external_data_not_loaded_in_a_modelproto": """
        # A ModelProto loaded without its external data: numpy_helper resolved the location
        # against the current directory.
        path = external_model("w.bin")
        SECRET.tofile("w.bin")
        proto = onnx.load(path, load_external_data=False)
        permissive_onnx()
        with pytest.raises(ValueError, match="initializer 'w'.*external file.*not loaded"): apl.load_onnx(proto)
        assert READ == []""",
    # ---- export: never onto the source model, atomic ----
    "export_onto_the_source_model": """
        shutil.copy(LENET, "lenet.onnx")
        before = open("lenet.onnx", "rb").read()
        g = apl.load_onnx("lenet.onnx")
        apl.quantize_network(g, calibration_set=datasets.load_calibration_set(64, data_dir="bundled"))
        with pytest.raises(ValueError, match="source model"): apl.export_onnx(g, "./lenet.onnx")
        os.symlink("lenet.onnx", "alias.onnx")
        with pytest.raises(ValueError, match="source model"): apl.export_onnx(g, "alias.onnx")
        assert open("lenet.onnx", "rb").read() == before
        apl.load_onnx("lenet.onnx")""",
    "export_onto_a_protected_path": """
        g = quantized_lenet()
        open("keep.onnx", "wb").write(b"keep")
        with pytest.raises(ValueError, match="keep.onnx"): apl.export_onnx(g, "keep.onnx", protect=["keep.onnx"])
        assert open("keep.onnx", "rb").read() == b"keep" """,
    "export_failure_keeps_the_existing_file": """
        g = quantized_lenet()
        open("out.onnx", "wb").write(b"previous export")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        with pytest.raises(OSError): apl.export_onnx(g, "out.onnx")
        assert open("out.onnx", "rb").read() == b"previous export"
        assert sorted(os.listdir(".")) == ["out.onnx"]  # no temporary file left""",
    "export_failure_leaves_no_half_file": """
        g = quantized_lenet()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        with pytest.raises(OSError): apl.export_onnx(g, "new.onnx")
        assert os.listdir(".") == []""",
    "export_to_a_fifo_writes_in_place": """
        # Renaming over a FIFO (or /dev/null) would replace it: non-regular files are written in place.
        import threading
        g = quantized_lenet()
        os.mkfifo("pipe")
        got = []
        reader = threading.Thread(target=lambda: got.append(open("pipe", "rb").read()))
        reader.start()
        model_proto = apl.export_onnx(g, "pipe")
        reader.join(60)
        assert got and got[0] == model_proto.SerializeToString()
        import stat
        assert stat.S_ISFIFO(os.stat("pipe").st_mode) and os.listdir(".") == ["pipe"]""",
    # ---- layer_report of two different networks ----
    "layer_report_of_different_networks": """
        x = datasets.load_fashion_mnist("test", data_dir="bundled", limit=8)[0]
        with pytest.raises(ValueError, match="not the same network"):
            apl.layer_report(apl.load_onnx(zoo.model_path("resnet")), quantized_lenet(), x)""",
    "layer_report_of_the_same_network": """
        x = datasets.load_fashion_mnist("test", data_dir="bundled", limit=8)[0]
        g = quantized_lenet()
        rows = apl.layer_report(apl.load_onnx(LENET), g, x)
        assert [r["node"] for r in rows] == [n.name for n in g.nodes() if n.op in ("Input", "Scaling")]""",
}


def run_case(code, cwd, env=None):
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_case(case, tmp_path):
    run_case(PRELUDE + textwrap.dedent(CASES[case]), tmp_path)


# ---- APL_SIMD: checked at import, naming the variable ----

@pytest.mark.parametrize("value", ["foo", "AVX2 ", "sse"])
def test_bad_apl_simd_fails_at_import(value, tmp_path):
    code = textwrap.dedent(f"""
        import pytest
        with pytest.raises(ValueError, match="APL_SIMD='{value}'.*scalar, avx2 or avx512"):
            import aidge_ptq_lite""")
    run_case(code, tmp_path, env={**os.environ, "APL_SIMD": value})


def test_valid_apl_simd_caps_the_level(tmp_path):
    run_case("import aidge_ptq_lite as apl; assert apl.simd_level() == 'scalar'", tmp_path,
             env={**os.environ, "APL_SIMD": "scalar"})


# ---- the CLI refuses misuse before the (long) evaluation, without a traceback ----

def run_cli(cwd, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "aidge_ptq.py"), "--data", "bundled",
                           "--no-progress", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


CLI_MISUSE = {
    "export_onto_the_source": (["--onnx", "lenet.onnx", "--export", "./lenet.onnx"], "--export.*source model"),
    "export_into_a_missing_folder": (["--model", "lenet", "--export", "no/such/dir/q.onnx"], "--export.*does not exist"),
    "export_onto_a_folder": (["--model", "lenet", "--export", "."], "--export.*directory"),
    "export_above_8_bits": (["--model", "lenet", "--nb-bits", "12", "--export", "q.onnx"], "--export.*--nb-bits 12"),
    "export_no_quant": (["--model", "lenet", "--no-quant", "--export", "q.onnx"], "--export.*--no-quant"),
    "plot_dir_is_a_file": (["--model", "lenet", "--plot-dir", "lenet.onnx"], "--plot-dir.*not a directory"),
    "nb_bits_out_of_range": (["--model", "lenet", "--nb-bits", "99"], "nb_bits.*99"),
}


@pytest.mark.parametrize("case", sorted(CLI_MISUSE))
def test_cli_misuse_is_refused_before_the_evaluation(case, tmp_path):
    shutil.copy(zoo.model_path("lenet"), tmp_path / "lenet.onnx")
    before = (tmp_path / "lenet.onnx").read_bytes()
    args, message = CLI_MISUSE[case]
    proc = run_cli(tmp_path, *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "float        :" not in proc.stdout  # nothing was evaluated
    assert re.search(message, proc.stderr), proc.stderr
    assert (tmp_path / "lenet.onnx").read_bytes() == before
    assert not (tmp_path / "q.onnx").exists()
