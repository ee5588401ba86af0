"""Cross-layer equalization: the float function is kept, channel ranges get balanced, and the pairs
are the ones the rules allow (feed-forward chains, pairs inside residual branches)."""
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

from conftest import relative_error


@pytest.fixture(scope="module")
def images():
    x, _ = datasets.load_fashion_mnist("test", limit=64)
    return x


def prepared(model):
    g = apl.load_onnx(model)
    apl.prepare_network(g)
    return g


def zoo_model_or_skip(name):
    path = zoo.model_path(name)
    if not os.path.isfile(path):
        pytest.skip(f"{os.path.basename(path)} is not in the zoo yet (still training?)")
    return path


def equalized_layers(pairs):
    """Names of the layers of "A -> B" pairs, each once, in order."""
    return list(dict.fromkeys(name for pair in pairs for name in pair.split(" -> ")))


def output_channel_ranges(w):
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1)


def range_spread(w):
    """max / min of the per-output-channel weight ranges (zero channels left out)."""
    r = output_channel_ranges(w)
    r = r[r > 0]
    return float(r.max() / r.min())


def mean_range_spread(g, layers):
    return float(np.mean([range_spread(g.get_param(name, 0)) for name in layers]))


@pytest.mark.parametrize("name", zoo.ZOO_MODELS)
def test_cle_keeps_the_function_and_narrows_the_range_spread(name, images):
    g = prepared(zoo_model_or_skip(name))
    original = g.clone()
    reference = g.forward(images)

    pairs = apl.cross_layer_equalization(g)

    assert pairs, "no pair found"
    assert relative_error(g.forward(images), reference) <= 1e-4
    layers = equalized_layers(pairs)
    before, after = mean_range_spread(original, layers), mean_range_spread(g, layers)
    print(f"{name}: {len(pairs)} pairs, mean range spread {before:.3g} -> {after:.3g}")
    assert after < before


def has_add_consumer(g, name):
    return any(g.node(c).op == "Add" for c in g.consumers(name))


def test_cle_pairs_inside_resnet_residual_blocks():
    g = prepared(zoo_model_or_skip("resnet"))
    pairs = [p.split(" -> ") for p in apl.cross_layer_equalization(g)]
    # conv1 -> relu -> conv2 of a basic block: conv2 feeds the block's Add, conv1 does not.
    inside_blocks = [(a, b) for a, b in pairs if has_add_consumer(g, b)]
    assert inside_blocks, f"no pair inside a residual block among {pairs}"
    assert not any(has_add_consumer(g, a) for a, _ in pairs), "a layer feeding an Add was rescaled"


# ---- hand-built models ---------------------------------------------------------------------------

def conv_node(name, x, w, rng, inits):
    """Conv with 'same' padding and a random bias; its initializers go to ``inits``."""
    inits += [numpy_helper.from_array(w.astype(np.float32), f"{name}.w"),
              numpy_helper.from_array(rng.standard_normal(w.shape[0]).astype(np.float32), f"{name}.b")]
    pad = w.shape[2] // 2
    return helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], name, pads=[pad] * 4)


def model(nodes, inits, input_shape, output):
    graph = helper.make_graph(
        nodes, "cle_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_cle_equalizes_badly_scaled_channels_exactly():
    rng = np.random.default_rng(0)
    channel_scale = np.array([1e-3, 1.0, 50.0, 0.2])[:, None, None, None]
    w1 = rng.standard_normal((4, 2, 3, 3)) * channel_scale
    w2 = rng.standard_normal((3, 4, 3, 3))
    inits = []
    nodes = [conv_node("conv1", "x", w1, rng, inits),
             helper.make_node("Relu", ["conv1"], ["relu"], "relu"),
             conv_node("conv2", "relu", w2, rng, inits)]
    g = prepared(model(nodes, inits, (2, 8, 8), "conv2"))
    x = rng.standard_normal((16, 2, 8, 8)).astype(np.float32)
    reference = g.forward(x)

    assert apl.cross_layer_equalization(g) == ["conv1 -> conv2"]

    assert relative_error(g.forward(x), reference) <= 1e-5
    r1 = output_channel_ranges(g.get_param("conv1", 0))
    r2 = np.abs(g.get_param("conv2", 0)).max(axis=(0, 2, 3))
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    # Balanced at the geometric mean of the original ranges.
    geometric_mean = np.sqrt(output_channel_ranges(w1) * np.abs(w2).max(axis=(0, 2, 3)))
    np.testing.assert_allclose(r1, geometric_mean, rtol=1e-5)


def test_cle_skips_tensors_that_feed_a_join_or_several_nodes(capfd):
    rng = np.random.default_rng(1)
    inits = []
    nodes = [conv_node("stem", "x", rng.standard_normal((4, 4, 3, 3)), rng, inits),
             helper.make_node("Relu", ["stem"], ["stem_relu"], "stem_relu"),
             conv_node("branch1", "stem_relu", rng.standard_normal((4, 4, 3, 3)), rng, inits),
             helper.make_node("Relu", ["branch1"], ["branch_relu"], "branch_relu"),
             conv_node("branch2", "branch_relu", rng.standard_normal((4, 4, 3, 3)), rng, inits),
             helper.make_node("Add", ["branch2", "stem_relu"], ["add"], "add")]
    g = prepared(model(nodes, inits, (4, 5, 5), "add"))

    assert apl.cross_layer_equalization(g, verbose=True) == ["branch1 -> branch2"]
    assert "CLE branch1 -> branch2: range spread" in capfd.readouterr().out


def test_cle_rejects_a_graph_with_scaling_nodes_and_a_bad_delta():
    g = prepared(zoo.model_path("lenet"))
    with pytest.raises(ValueError, match="target_delta"):
        apl.cross_layer_equalization(g, target_delta=0.0)
    apl.insert_scaling_nodes(g)
    with pytest.raises(apl.GraphError, match="insert_scaling_nodes"):
        apl.cross_layer_equalization(g)
