"""The import front (issue 15): models written the way exporters write them load, and run as
onnxruntime runs the ORIGINAL model (float, within 1e-4 of max |y|); what cannot load says why."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import onnx_front

RNG = np.random.default_rng(15)


def _const(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype), name)


def _weights(name, *shape):
    return _const(name, RNG.standard_normal(shape) * 0.5)


def _model(nodes, inits=(), in_shape=("N", 3, 6, 6), opset=17, inputs=None, outputs=("y",),
           ir_version=None, functions=(), extra_opsets=()):
    inputs = inputs if inputs is not None else [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))]
    graph = helper.make_graph(nodes, "front", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def _names(graph):
    return {n.name for n in graph.nodes()}


def _ort(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: x}
    return session.run(None, feeds)


def _close(ours, ref):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    err = np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err < 1e-4, f"relative error {err:.3g}"


def _agrees(model, batch=3, shape=(3, 6, 6), **load):
    x = RNG.standard_normal((batch, *shape)).astype(np.float32)
    g = apl.load_onnx(model, **load)
    ref = _ort(model, x)[0]
    _close(g.forward(x), ref)
    # The rewritten model means what the original means (onnxruntime on both).
    _close(_ort(onnx_front.normalize(model, load.get("input_shape")), x)[0], ref)
    return g


# ---- what torch exports --------------------------------------------------------------------

def test_identity_of_initializers_and_identity_output():
    """torch de-duplicates equal initializers through Identity nodes (the ResNet-18 failure)."""
    nodes = [helper.make_node("Identity", ["zero_bias"], ["onnx::Conv_239"], name="Identity_0"),
             helper.make_node("Conv", ["x", "w1", "onnx::Conv_239"], ["c1"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Identity", ["zero_bias"], ["onnx::Conv_240"], name="Identity_1"),
             helper.make_node("Conv", ["r1", "w2", "onnx::Conv_240"], ["c2"], name="conv2"),
             helper.make_node("Identity", ["c2"], ["y"], name="Identity_out")]
    model = _model(nodes, [_const("zero_bias", np.zeros(3)), _weights("w1", 3, 3, 3, 3),
                           _weights("w2", 3, 3, 1, 1)])
    g = _agrees(model)
    assert not any(n.startswith("Identity") for n in _names(g))


def test_dropout_is_removed_also_as_graph_output():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Dropout", ["c", "ratio"], ["y"], name="drop")]
    g = _agrees(_model(nodes, [_weights("w", 4, 3, 1, 1), _const("ratio", 0.5)]))
    assert "drop" not in _names(g)


def test_constant_subgraphs_are_folded():
    """Constant, Reshape / Transpose / Mul / Cast of initializers, ConstantOfShape, Unsqueeze:
    evaluated by onnx's reference evaluator, whatever the op."""
    nodes = [
        helper.make_node("Constant", [], ["wflat"], name="const_w",
                         value=_const("v", RNG.standard_normal(4 * 3 * 3 * 3) * 0.3)),
        helper.make_node("Constant", [], ["wshape"], name="const_s",
                         value=_const("s", [3, 3, 3, 4], np.int64)),
        helper.make_node("Reshape", ["wflat", "wshape"], ["w_hwio"], name="reshape_w"),
        helper.make_node("Transpose", ["w_hwio"], ["w_raw"], name="transpose_w", perm=[3, 2, 0, 1]),
        helper.make_node("Mul", ["w_raw", "gain"], ["w"], name="weight_norm"),
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
        helper.make_node("ConstantOfShape", ["bshape"], ["b_i64"], name="cos",
                         value=_const("v", [2], np.int64)),
        helper.make_node("Cast", ["b_i64"], ["b_flat"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["b_flat", "axes"], ["b"], name="unsq"),
        helper.make_node("Add", ["c", "b"], ["y"], name="add_bias"),
    ]
    model = _model(nodes, [_const("gain", RNG.uniform(0.5, 2, (4, 1, 1, 1))),
                           _const("bshape", [4], np.int64), _const("axes", [1, 2], np.int64)])
    g = _agrees(model)
    assert set(_names(g)) == {"x", "conv", "add_bias"}


def test_dynamic_batch_shape_chain_is_folded():
    """x.view(x.size(0), -1) as torch exports it with a dynamic batch: Shape -> Gather ->
    Unsqueeze -> Concat -> Reshape."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Shape", ["c"], ["shape"], name="Shape_0"),
             helper.make_node("Gather", ["shape", "zero"], ["n"], name="Gather_0", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="Unsqueeze_0"),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], name="Concat_0", axis=0),
             helper.make_node("Reshape", ["c", "target"], ["flat"], name="Reshape_0"),
             helper.make_node("Gemm", ["flat", "fc", "fcb"], ["y"], name="fc", transB=1)]
    model = _model(nodes, [_weights("w", 2, 3, 3, 3), _const("zero", 0, np.int64),
                           _const("axes", [0], np.int64), _const("minus1", [-1], np.int64),
                           _weights("fc", 5, 32), _weights("fcb", 5)])
    for batch in (1, 3):
        g = _agrees(model, batch=batch)
    assert set(_names(g)) == {"x", "conv", "Reshape_0", "fc"}


def test_shape_arithmetic_independent_of_the_batch_is_folded():
    """Shape(x)[1:] (no batch in it) and C * H * W: constants, whatever the batch."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape", start=1),
             helper.make_node("ReduceProd", ["s"], ["chw"], name="prod", keepdims=1),
             helper.make_node("Concat", ["minus1", "chw"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc"], ["y"], name="fc")]
    model = _model(nodes, [_const("minus1", [-1], np.int64), _weights("fc", 108, 4)])
    g = _agrees(model, batch=4)
    assert set(_names(g)) == {"x", "flatten", "fc"}


def test_reshape_to_a_literal_batch_of_one_runs_any_batch():
    """Old zoo models: input (1, C, H, W) and Reshape to (1, -1). Ours at batch 3 against
    onnxruntime at batch 1 per sample."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Reshape", ["c", "target"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc", "fcb"], ["y"], name="fc")]
    model = _model(nodes, [_weights("w", 2, 3, 1, 1), _const("target", [1, -1], np.int64),
                           _weights("fc", 72, 4), _weights("fcb", 4)], in_shape=(1, 3, 6, 6), opset=9)
    x = RNG.standard_normal((3, 3, 6, 6)).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    ref = np.concatenate([_ort(model, x[i:i + 1])[0] for i in range(3)])
    _close(ours, ref)


def test_initializers_as_inputs_and_unused_inputs_are_dropped():
    """IR 3 lists every initializer as a graph input; exporters leave inputs no node reads."""
    inits = [_weights("w", 4, 3, 3, 3), _weights("b", 4)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6]),
              helper.make_tensor_value_info("unused", TensorProto.FLOAT, ["N", 7]),
              *[helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits]]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    model = _model(nodes, inits, inputs=inputs, opset=8, ir_version=3)
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = session.run(None, {"x": x, "unused": np.zeros((2, 7), np.float32)})[0]
    g = apl.load_onnx(model)
    _close(g.forward(x), ref)
    assert g.input_name == "x"


def test_several_inputs_read_by_nodes_are_named():
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, 6, 6]) for n in ("img", "mask")]
    unused = helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 3])
    model = _model([helper.make_node("Mul", ["img", "mask"], ["y"], name="gate")],
                   inputs=inputs + [unused])
    with pytest.raises(NotImplementedError, match="single-input.*'img', 'mask'") as err:
        apl.load_onnx(model)
    assert "extra" not in str(err.value)


# ---- opsets --------------------------------------------------------------------------------

def test_softmax_of_opset_11_keeps_its_meaning():
    """Opset 11's Softmax(axis=1) on (N, C, H, W) normalizes over C*H*W, not over C."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Softmax", ["c"], ["y"], name="softmax", axis=1)]
    model = _model(nodes, [_weights("w", 4, 3, 1, 1)], opset=11)
    x = RNG.standard_normal((3, 3, 6, 6)).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    _close(ours, _ort(model, x)[0])
    assert np.allclose(ours.sum(axis=(1, 2, 3)), 1, atol=1e-5)  # not 1 per pixel


def test_opset_7_model_with_batchnorm_and_dropout_loads():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn",
                              epsilon=1e-5),
             helper.make_node("Dropout", ["bn"], ["d"], name="drop", ratio=0.3),
             helper.make_node("Relu", ["d"], ["y"], name="relu")]
    model = _model(nodes, [_weights("w", 4, 3, 3, 3), _const("s", RNG.uniform(0.5, 2, 4)),
                           _weights("b", 4), _weights("m", 4), _const("v", RNG.uniform(0.5, 2, 4))],
                   opset=7)
    _agrees(model)


def test_op_the_version_converter_cannot_upgrade_is_named():
    model = _model([helper.make_node("Crop", ["x"], ["y"], name="crop1", border=[1, 1, 1, 1])], opset=1)
    with pytest.raises(NotImplementedError, match="opset 1.*Crop.*'crop1'"):
        apl.load_onnx(model)


def test_local_function_is_inlined():
    body = [helper.make_node("Conv", ["t", "k"], ["c"]), helper.make_node("Relu", ["c"], ["out"])]
    block = helper.make_function("local", "ConvRelu", ["t", "k"], ["out"], body,
                                 [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("ConvRelu", ["x", "w"], ["y"], name="block", domain="local")]
    model = _model(nodes, [_weights("w", 4, 3, 3, 3)], functions=[block], extra_opsets=["local"])
    _agrees(model)


# ---- shapes ----------------------------------------------------------------------------------

def _symbolic_hw_model():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    return _model(nodes, [_weights("w", 4, 3, 3, 3)], in_shape=("batch", 3, "height", "width"))


def test_symbolic_spatial_dims_need_input_shape():
    model = _symbolic_hw_model()
    with pytest.raises(apl.ShapeError, match="dynamic dimension 2 \\('height'\\).*input_shape"):
        apl.load_onnx(model)
    g = _agrees(model, batch=2, shape=(3, 10, 8), input_shape=(3, 10, 8))
    assert tuple(g.input_shape) == (3, 10, 8)
    _agrees(model, batch=2, shape=(3, 5, 5), input_shape=(2, 3, 5, 5))  # with the batch: ignored


def test_input_shape_that_contradicts_the_model_is_refused():
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="r")])
    with pytest.raises(apl.ShapeError, match="dimension 1.*fixes it to 3"):
        apl.load_onnx(model, input_shape=(4, 6, 6))
    with pytest.raises(ValueError, match="rank 4"):
        apl.load_onnx(model, input_shape=(6, 6))


# ---- outputs, errors -------------------------------------------------------------------------

def test_several_outputs():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["features"], name="relu"),
             helper.make_node("GlobalAveragePool", ["features"], ["pooled"], name="gap"),
             helper.make_node("Identity", ["pooled"], ["logits"], name="out_identity")]
    model = _model(nodes, [_weights("w", 4, 3, 3, 3)], outputs=("features", "logits"))
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    refs = _ort(model, x)
    assert len(ours) == 2
    for a, b in zip(ours, refs):
        _close(a, b)


def test_every_unsupported_op_is_reported_at_once():
    nodes = [helper.make_node("Sin", ["x"], ["e1"], name="sin_a"),
             helper.make_node("Sin", ["e1"], ["e2"], name="sin_b"),
             helper.make_node("Hardmax", ["e2"], ["h"], name="hardmax_1"),
             *[helper.make_node("Sin", [f"h{i}" if i else "h"], [f"h{i + 1}"], name=f"sin_{i}")
               for i in range(3)],
             helper.make_node("Relu", ["h3"], ["r"], name="custom", domain="com.example"),
             helper.make_node("Round", ["r"], ["y"], name="round_last")]
    model = _model(nodes, extra_opsets=["com.example"])
    with pytest.raises(apl.UnsupportedOpError) as err:
        apl.load_onnx(model)
    msg = str(err.value)
    assert msg.startswith("unsupported op")
    for part in ("Sin (5 nodes: 'sin_a', 'sin_b', 'sin_0' and 2 more)", "Hardmax (node 'hardmax_1')",
                 "Relu of domain 'com.example' (node 'custom')", "Round (node 'round_last')",
                 "supported ops: ", "Adding an op"):
        assert part in msg, (part, msg)


def test_normalize_leaves_the_given_model_alone():
    nodes = [helper.make_node("Identity", ["w"], ["w2"], name="id"),
             helper.make_node("Conv", ["x", "w2"], ["y"], name="conv")]
    model = _model(nodes, [_weights("w", 2, 3, 1, 1)], opset=11)
    before = model.SerializeToString()
    out = onnx_front.normalize(model)
    assert model.SerializeToString() == before
    assert [n.op_type for n in out.graph.node] == ["Conv"]
    assert out.opset_import[0].version == onnx_front.MIN_OPSET


def _split_model():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Split", ["c", "sizes"], ["a", "b"], name="split", axis=1),
             helper.make_node("Relu", ["a"], ["ra"], name="relu"),
             helper.make_node("Concat", ["b", "ra"], ["y"], name="cat", axis=1),
             helper.make_node("Split", ["y"], ["y1", "y2"], name="split_equal", axis=2),
             helper.make_node("Sub", ["y1", "y2"], ["z"], name="sub")]
    return _model(nodes, [_weights("w", 5, 3, 1, 1), _const("sizes", [2, 3], np.int64)], outputs=("z",))


def test_split_rewrite_means_what_split_means(monkeypatch):
    """The Slices that replace a Split (given sizes, and equal parts) run in onnxruntime as the
    Split does, whatever our registry holds."""
    monkeypatch.setattr(onnx_front, "_registry_ops", lambda: {"Slice": {}})
    model = _split_model()
    rewritten = onnx_front.normalize(model)
    assert "Split" not in {n.op_type for n in rewritten.graph.node}
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    _close(_ort(rewritten, x)[0], _ort(model, x)[0])


def test_split_with_constant_sizes_becomes_slices():
    ops = apl._core.op_registry()
    if "Slice" not in ops or "Split" in ops:
        pytest.skip("the registry has no Slice (or has Split itself): Split is not rewritten")
    _agrees(_split_model())


def test_opset_21_model_loads():
    """Above 17, onnx's converter has few down-adapters (none for Pad): the model is read as it
    is, its ops by their newest definition."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
             helper.make_node("Conv", ["p", "w"], ["c"], name="conv"),
             helper.make_node("Identity", ["c"], ["i"], name="id"),
             helper.make_node("Shape", ["i"], ["s"], name="shape", end=1),
             helper.make_node("Concat", ["s", "minus1"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["i", "target"], ["y"], name="flatten")]
    model = _model(nodes, [_const("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64), _weights("w", 2, 3, 3, 3),
                           _const("minus1", [-1], np.int64)], opset=21)
    _agrees(model)


def test_a_huge_constant_is_not_folded():
    """ConstantOfShape of 2^40 elements: left in the graph (reported as unsupported), not
    allocated."""
    nodes = [helper.make_node("ConstantOfShape", ["big_shape"], ["big"], name="huge",
                              value=_const("v", [0.0])),
             helper.make_node("Add", ["x", "big"], ["y"], name="add")]
    model = _model(nodes, [_const("big_shape", [1, 3, 2 ** 20, 2 ** 20], np.int64)])
    with pytest.raises(apl.UnsupportedOpError, match="ConstantOfShape \\(node 'huge'\\)"):
        apl.load_onnx(model)


def test_batch_arithmetic_a_reshape_cannot_express_is_refused_with_a_hint():
    """x.view(2 * N, -1): the first entry depends on the batch but is not the batch."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape_of_x"),
             helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
             helper.make_node("Mul", ["n", "two"], ["n2"], name="twice"),
             helper.make_node("Unsqueeze", ["n2", "axes"], ["n2v"], name="unsq"),
             helper.make_node("Concat", ["n2v", "minus1"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"], name="view")]
    model = _model(nodes, [_const("zero", 0, np.int64), _const("two", 2, np.int64),
                           _const("axes", [0], np.int64), _const("minus1", [-1], np.int64)])
    with pytest.raises(apl.UnsupportedOpError, match="Shape \\(node 'shape_of_x'\\).*depends on the batch"):
        apl.load_onnx(model)


def test_shape_read_after_a_reshape_to_batch_one_keeps_the_batch():
    """Old export: Constant (1, -1) target, then the Shape of the flattened tensor feeding another
    Reshape: any batch runs (the Shape sees the batch, not the literal 1 of the trace)."""
    nodes = [helper.make_node("Constant", [], ["t1"], name="target1", value=_const("v", [1, -1], np.int64)),
             helper.make_node("Reshape", ["x", "t1"], ["flat"], name="flatten"),
             helper.make_node("Relu", ["flat"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["s"], name="shape"),
             helper.make_node("Reshape", ["r", "s"], ["y"], name="same_shape")]
    model = _model(nodes, in_shape=(1, 3, 6, 6), opset=13)
    x = RNG.standard_normal((3, 3, 6, 6)).astype(np.float32)
    ours = apl.load_onnx(model).forward(x)
    _close(ours, np.concatenate([_ort(model, x[i:i + 1])[0] for i in range(3)]))


def test_prelu_of_opset_6_keeps_its_per_channel_slope():
    """Opset 6's PRelu took a (C,) slope per channel; onnx's converter keeps the (C,) slope,
    which opset 7 broadcasts on the last axis (here W == C: a silent change). Oracle:
    onnxruntime on the same network at opset 13 with the slope as (C, 1, 1)."""
    slope = RNG.uniform(0.1, 0.5, 3).astype(np.float32)
    w = _weights("w", 3, 3, 1, 1)

    def prelu_model(opset, slope_shape):
        return _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                       helper.make_node("PRelu", ["c", "slope"], ["y"], name="prelu")],
                      [w, _const("slope", slope.reshape(slope_shape))],
                      in_shape=("N", 3, 4, 3), opset=opset)
    x = RNG.standard_normal((2, 3, 4, 3)).astype(np.float32)
    ref = _ort(prelu_model(13, (3, 1, 1)), x)[0]
    _close(apl.load_onnx(prelu_model(6, (3,))).forward(x), ref)


@pytest.mark.parametrize("mode,scales", [("linear", [1, 1, 2, 2]), ("nearest", [1, 1, 2, 2]),
                                         ("nearest", [1, 1, 3, 1.5])])
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_of_old_opsets_keeps_its_coordinates(opset, mode, scales):
    """Upsample (opset 7 / 9) becomes Resize; its asymmetric coordinates are kept (the converter
    leaves opset 11's half_pixel default: linear outputs moved by up to 1.16 of max |y|)."""
    if opset == 7:
        upsample = helper.make_node("Upsample", ["x"], ["y"], name="up", mode=mode,
                                    scales=[float(s) for s in scales])
        inits = []
    else:
        upsample = helper.make_node("Upsample", ["x", "s"], ["y"], name="up", mode=mode)
        inits = [_const("s", scales)]
    if "Resize" not in apl._core.op_registry():
        pytest.skip("no Resize in the registry")
    _agrees(_model([upsample], inits, in_shape=("N", 3, 4, 4), opset=opset), shape=(3, 4, 4))


def test_legacy_broadcast_of_opset_6_is_refused_naming_the_op():
    """Add(broadcast=1, axis=1) of opset 6: onnx's converter cannot upgrade it with a symbolic
    batch (and with a static one gives the operand the wrong rank): refused, not guessed."""
    model = _model([helper.make_node("Add", ["x", "b"], ["y"], name="legacy_add", broadcast=1, axis=1)],
                   [_const("b", [1.0, 2.0, 3.0])], in_shape=("N", 3, 4, 4), opset=6)
    with pytest.raises(NotImplementedError, match="opset 6.*Add \\(node 'legacy_add'\\).*Re-export"):
        apl.load_onnx(model)


# ---- If with a constant condition (torch's LRN: rank tests of a view whose rank is known) ----------

def _branch(name, nodes, outputs, inits=()):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                               for o in outputs], list(inits))


def _rank_test_if(then_branch, else_branch, name="rank_if", output="y"):
    """cond = (Shape(x)[1] == 3), which shape inference makes constant: as torch writes it."""
    return [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
            helper.make_node("Gather", ["shape", "one"], ["channels"], name="gather", axis=0),
            helper.make_node("Equal", ["channels", "three"], ["cond"], name="equal"),
            helper.make_node("If", ["cond"], [output], name=name, then_branch=then_branch,
                             else_branch=else_branch)]


_RANK_TEST_INITS = [_const("one", 1, np.int64), _const("three", 3, np.int64)]


@pytest.mark.parametrize("channels", [3, 4], ids=["then", "else"])
def test_if_on_a_constant_condition_takes_its_branch(channels):
    """The taken branch's nodes, initializers and Constant nodes join the graph; the other
    branch (a different op) must not be the one that runs."""
    then_branch = _branch("then", [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(2.0, np.float32))),
        helper.make_node("Mul", ["x", "k"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["then_out"])], ["then_out"],
        [_const("bias", RNG.standard_normal((channels, 1, 1)))])
    else_branch = _branch("else", [helper.make_node("Relu", ["x"], ["else_out"])], ["else_out"])
    nodes = _rank_test_if(then_branch, else_branch, output="t") + \
        [helper.make_node("Conv", ["t", "w"], ["y"], name="conv")]
    model = _model(nodes, _RANK_TEST_INITS + [_weights("w", 2, channels, 1, 1)],
                   in_shape=("N", channels, 5, 5))
    g = _agrees(model, shape=(channels, 5, 5))
    assert not any(n.op == "If" for n in g.nodes())
    assert any(n.op == "Relu" for n in g.nodes()) == (channels != 3)


def test_if_branches_get_names_scoped_by_the_if():
    """A branch's node and value names are prefixed by the If's name, so two inlined copies of
    one pattern (torch's LRN in two layers) never collide."""
    def lrn_like(tag, src, dst):
        then_branch = _branch(f"then{tag}", [helper.make_node("Relu", [src], ["out"], name="inner")], ["out"])
        else_branch = _branch(f"else{tag}", [helper.make_node("Identity", [src], ["out2"], name="inner")], ["out2"])
        return [helper.make_node("Shape", [src], [f"s{tag}"], name=f"shape{tag}"),
                helper.make_node("Gather", [f"s{tag}", "one"], [f"c{tag}"], name=f"gather{tag}", axis=0),
                helper.make_node("Equal", [f"c{tag}", "three"], [f"cond{tag}"], name=f"equal{tag}"),
                helper.make_node("If", [f"cond{tag}"], [dst], name=f"if{tag}", then_branch=then_branch,
                                 else_branch=else_branch)]
    nodes = lrn_like("1", "x", "a") + [helper.make_node("Neg", ["a"], ["b"], name="neg")] + lrn_like("2", "b", "y")
    g = _agrees(_model(nodes, _RANK_TEST_INITS), shape=(3, 6, 6))
    relus = sorted(n.name for n in g.nodes() if n.op == "Relu")
    assert relus == ["if1/inner", "if2/inner"], relus


def test_if_branch_that_passes_an_outer_value_through():
    """A branch that returns an outer value: through Identity (as torch writes it), or directly
    (valid ONNX that onnxruntime refuses; its oracle is the Identity form)."""
    def model(then_nodes, then_out):
        then_branch = _branch("then", then_nodes, [then_out])
        else_branch = _branch("else", [helper.make_node("Neg", ["r"], ["n"])], ["n"])
        nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu")] + _rank_test_if(then_branch, else_branch)
        return _model(nodes, _RANK_TEST_INITS)
    through_identity = model([helper.make_node("Identity", ["r"], ["i"])], "i")
    g = _agrees(through_identity)
    assert [n.op for n in g.nodes()] == ["Input", "Relu"]
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    direct = apl.load_onnx(model([], "r"))
    assert [n.op for n in direct.nodes()] == ["Input", "Relu"]
    _close(direct.forward(x), _ort(through_identity, x)[0])


def test_nested_if_on_constant_conditions():
    inner = helper.make_node("If", ["cond"], ["inner_out"], name="inner_if",
                             then_branch=_branch("t2", [helper.make_node("Sigmoid", ["x"], ["s"])], ["s"]),
                             else_branch=_branch("e2", [helper.make_node("Tanh", ["x"], ["h"])], ["h"]))
    then_branch = _branch("t1", [inner, helper.make_node("Neg", ["inner_out"], ["neg"])], ["neg"])
    else_branch = _branch("e1", [helper.make_node("Relu", ["x"], ["rel"])], ["rel"])
    g = _agrees(_model(_rank_test_if(then_branch, else_branch), _RANK_TEST_INITS))
    assert sorted(n.op for n in g.nodes()) == ["Input", "Neg", "Sigmoid"]


def test_if_on_data_is_refused_naming_node_and_condition():
    """A condition computed from the input values cannot be decided when loading."""
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["positive"], name="greater"),
             helper.make_node("If", ["positive"], ["y"], name="data_if",
                              then_branch=_branch("t", [helper.make_node("Relu", ["x"], ["a"])], ["a"]),
                              else_branch=_branch("e", [helper.make_node("Neg", ["x"], ["b"])], ["b"]))]
    with pytest.raises(apl.UnsupportedOpError) as err:
        apl.load_onnx(_model(nodes, [_const("zero", 0.0)]))
    text = str(err.value)
    assert "If (node 'data_if')" in text and "'positive'" in text and "input data" in text, text


@pytest.mark.parametrize("inputs", [["x", "k1"], ["k1", "x", "k2"], ["x", "k1", "r", "k2"]],
                         ids=["one_constant", "two_constants", "two_data_two_constants"])
def test_sum_with_constant_inputs(inputs):
    """Sum joins activations; its constants become one Add operand (onnxruntime on the original)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Sum", inputs, ["y"], name="sum")]
    model = _model(nodes, [_const("k1", RNG.standard_normal((3, 1, 1))), _const("k2", RNG.standard_normal((1, 6)))])
    g = _agrees(model)
    assert g.node("sum").op == "Add"
