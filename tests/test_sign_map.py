"""Sign map: known answers on small graphs, and on every zoo model the guarantee it gives (unsigned
activations are non-negative, joins get inputs of one sign)."""
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

SIGNED, UNSIGNED = False, True


class ModelBuilder:
    """Small ONNX models on a (2, 6, 6) input named 'x'; node names equal their output names."""

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.nodes, self.inits = [], []

    def conv(self, name, x, cin=2, cout=2):
        w = self.rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
        b = self.rng.standard_normal(cout).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}.w"), numpy_helper.from_array(b, f"{name}.b")]
        return self.op("Conv", name, x, f"{name}.w", f"{name}.b", pads=[1, 1, 1, 1])

    def op(self, op_type, name, *inputs, **attrs):
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name, **attrs))
        return name

    def sign_map(self, output):
        """Load, prepare, insert the Scaling nodes and compute the sign map."""
        graph = helper.make_graph(
            self.nodes, "sign_map_test",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self.inits)
        g = apl.load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
        apl.prepare_network(g)
        apl.insert_scaling_nodes(g)
        return apl.compute_sign_map(g)


def test_relu_chain_is_unsigned_from_the_scaler_before_each_relu():
    b = ModelBuilder()
    b.op("Relu", "relu2", b.conv("conv2", b.op("Relu", "relu1", b.conv("conv1", "x"))))
    signs = b.sign_map("relu2")
    assert signs["x"] == (SIGNED, SIGNED)
    assert signs["conv1"] == (SIGNED, SIGNED)
    assert signs["conv1_scaling"] == (SIGNED, UNSIGNED)
    assert signs["relu1"] == (UNSIGNED, UNSIGNED)
    assert signs["conv2"] == (UNSIGNED, SIGNED)
    assert signs["conv2_scaling"] == (SIGNED, UNSIGNED)
    assert signs["relu2"] == (UNSIGNED, UNSIGNED)


def test_scaler_before_relu_clamps_at_zero_itself_unless_something_else_reads_it():
    b = ModelBuilder()
    relu = b.op("Relu", "relu", b.conv("conv", "x"))
    assert b.sign_map(relu)["conv_scaling"] == (SIGNED, UNSIGNED)

    b.op("Add", "add", relu, "conv")  # the scaler now also feeds an Add: negative values needed
    signs = b.sign_map("add")
    assert signs["conv_scaling"][1] == SIGNED
    assert signs["relu"] == (SIGNED, SIGNED)  # it carries the scaler's signed codes


def test_add_of_two_relu_branches_is_unsigned():
    b = ModelBuilder()
    left = b.op("Relu", "left", b.conv("a", "x"))
    right = b.op("Relu", "right", b.conv("b", "x"))
    b.op("GlobalAveragePool", "gap", b.op("Add", "add", left, right))
    signs = b.sign_map("gap")
    assert signs["add"] == (UNSIGNED, UNSIGNED)
    assert signs["add_scaling"] == (UNSIGNED, UNSIGNED)
    assert signs["gap"] == (UNSIGNED, UNSIGNED)


def test_concat_of_a_signed_and_an_unsigned_branch_is_signed_upstream_too():
    b = ModelBuilder()
    unsigned_branch = b.op("Relu", "relu", b.conv("a", "x"))
    b.op("Concat", "cat", unsigned_branch, b.conv("b", "x"), axis=1)
    signs = b.sign_map("cat")
    for name in ("a_scaling", "relu", "b_scaling", "cat", "cat_scaling"):
        assert signs[name][1] == SIGNED, name
    assert signs["cat"][0] == SIGNED


def test_maxpool_after_relu_keeps_unsigned():
    b = ModelBuilder()
    relu = b.op("Relu", "relu", b.conv("conv1", "x"))
    pool = b.op("MaxPool", "pool", relu, kernel_shape=[2, 2], strides=[2, 2])
    b.conv("conv2", pool)
    signs = b.sign_map("conv2")
    assert signs["pool"] == (UNSIGNED, UNSIGNED)
    assert signs["conv2"] == (UNSIGNED, SIGNED)


def test_sub_is_signed_and_needs_inputs_of_one_sign():
    b = ModelBuilder()
    b.op("Sub", "sub", b.op("Relu", "relu", b.conv("a", "x")), b.conv("b", "x"))
    signs = b.sign_map("sub")
    assert signs["a_scaling"][1] == SIGNED
    assert signs["sub"] == (SIGNED, SIGNED)


@pytest.mark.parametrize("name", zoo.ZOO_MODELS)
def test_zoo_sign_map_is_sound(name):
    path = zoo.model_path(name)
    if not os.path.isfile(path):
        pytest.skip(f"{os.path.basename(path)} is not in the zoo yet (still training?)")
    g = apl.load_onnx(path)
    apl.prepare_network(g)
    apl.insert_scaling_nodes(g)
    signs = apl.compute_sign_map(g)
    x, _ = datasets.load_fashion_mnist("test", limit=64)
    values = g.intermediate_outputs(x, [n for n, (_, out) in signs.items() if out])

    assert any(out for _, out in signs.values()), "nothing unsigned"
    for node in g.nodes():
        if node.op in ("Add", "Sub", "Concat"):
            assert len({signs[i][1] for i in node.inputs}) == 1, f"{node.name}: inputs of mixed signs"
        if not signs[node.name][1]:
            continue
        clamped_by_consumers = node.op == "Scaling" and all(
            g.node(c).op == "Relu" for c in g.consumers(node.name))
        assert clamped_by_consumers or values[node.name].min() >= 0, f"{node.name} is negative"
