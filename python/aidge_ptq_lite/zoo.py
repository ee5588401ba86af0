"""Model zoo: the trained Fashion-MNIST models shipped with the package, and a seeded
ImageNet-shape ResNet-18 built from random weights for scale tests (numpy + onnx only).
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
ZOO_MODELS = ("lenet", "resnet", "mobilenet", "branchnet")
BN_EPSILON = 1e-5


def model_path(name):
    """Path of the committed ``{name}.onnx``; ValueError listing the valid names if unknown."""
    if name not in ZOO_MODELS:
        raise ValueError(f"unknown zoo model {name!r}; valid names: {', '.join(ZOO_MODELS)}")
    return os.path.join(MODELS_DIR, f"{name}.onnx")


def load_manifest():
    """The zoo manifest: ``{name: {"float_accuracy", "params", "epochs", ...}}``."""
    with open(os.path.join(MODELS_DIR, "manifest.json")) as f:
        return json.load(f)


class _ResNetBuilder:
    """Accumulates the nodes and seeded initializers of a ResNet graph."""

    def __init__(self, seed, batch_norm):
        self.rng = np.random.default_rng(seed)
        self.batch_norm = batch_norm
        self.nodes, self.inits = [], []

    def initializer(self, name, array):
        """Add a float32 initializer; returns its name."""
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(self, x, name, bn_name, cin, cout, k, stride, relu, gamma_range=(0.5, 1.5)):
        """Conv (He init, no bias) + BatchNormalization with random but sane statistics (+ ReLU).

        Without ``batch_norm`` the same BN is folded into the conv weights and bias.
        """
        rng = self.rng
        w = rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        gamma = rng.uniform(*gamma_range, cout)
        beta = rng.normal(0.0, 0.1, cout)
        mean = rng.normal(0.0, 0.2, cout)
        var = rng.uniform(0.5, 2.0, cout)
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        out = f"{name}_out"
        if self.batch_norm:
            self.nodes.append(helper.make_node(
                "Conv", [x, self.initializer(f"{name}.weight", w)], [f"{name}_conv"], name, **attrs))
            params = [self.initializer(f"{bn_name}.{p}", a) for p, a in
                      (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var))]
            self.nodes.append(helper.make_node(
                "BatchNormalization", [f"{name}_conv", *params], [out], bn_name, epsilon=BN_EPSILON))
        else:
            scale = gamma / np.sqrt(var + BN_EPSILON)
            inputs = [x, self.initializer(f"{name}.weight", w * scale[:, None, None, None]),
                      self.initializer(f"{name}.bias", beta - mean * scale)]
            self.nodes.append(helper.make_node("Conv", inputs, [out], name, **attrs))
        return self.relu(out, f"{name}_relu") if relu else out

    def relu(self, x, name):
        """ReLU node."""
        self.nodes.append(helper.make_node("Relu", [x], [f"{name}_out"], name))
        return f"{name}_out"

    def basic_block(self, x, prefix, cin, cout, stride):
        """conv3x3-BN-ReLU, conv3x3-BN (small gamma), shortcut (1x1 conv-BN if needed), Add, ReLU."""
        y = self.conv_bn(x, f"{prefix}.conv1", f"{prefix}.bn1", cin, cout, 3, stride, True)
        y = self.conv_bn(y, f"{prefix}.conv2", f"{prefix}.bn2", cout, cout, 3, 1, False,
                         gamma_range=(0.1, 0.4))
        if stride != 1 or cin != cout:
            x = self.conv_bn(x, f"{prefix}.downsample.0", f"{prefix}.downsample.1",
                             cin, cout, 1, stride, False)
        self.nodes.append(helper.make_node("Add", [y, x], [f"{prefix}.add_out"], f"{prefix}.add"))
        return self.relu(f"{prefix}.add_out", f"{prefix}.relu")


def make_resnet18(path=None, seed=0, batch_norm=True):
    """Build an ImageNet-shape ResNet-18 (torchvision topology, ~11.7M params) from seeded weights.

    Input ``"input"`` (N, 3, 224, 224), output ``"logits"`` (N, 1000), opset 17. With
    ``batch_norm=True`` the graph keeps real BatchNormalization nodes; otherwise they are folded
    into the convs (same function). The classifier bias is set to minus the classifier response to
    the mean feature of a few random inputs (computed with onnx's reference evaluator, a few
    seconds): without this centring a random network gives every input the same top-1 class.
    Returns the ModelProto; also saves it when ``path`` is given.
    """
    b = _ResNetBuilder(seed, batch_norm)
    x = b.conv_bn("input", "conv1", "bn1", 3, 64, 7, 2, True)
    b.nodes.append(helper.make_node("MaxPool", [x], ["maxpool_out"], "maxpool",
                                    kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "maxpool_out", 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            stride = 2 if stage > 1 and i == 0 else 1
            x = b.basic_block(x, f"layer{stage}.{i}", cin, cout, stride)
            cin = cout
    b.nodes += [helper.make_node("GlobalAveragePool", [x], ["avgpool_out"], "avgpool"),
                helper.make_node("Flatten", ["avgpool_out"], ["flatten_out"], "flatten", axis=1),
                helper.make_node("Gemm", ["flatten_out", "fc.weight", "fc.bias"], ["logits"], "fc",
                                 transB=1)]
    fc_weight = b.rng.normal(0.0, np.sqrt(1.0 / 512), (1000, 512))
    b.initializer("fc.weight", fc_weight)
    b.initializer("fc.bias", np.zeros(1000))
    graph = helper.make_graph(
        b.nodes, "resnet18",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="aidge_ptq_lite.zoo", ir_version=8)
    x = b.rng.normal(0.0, 1.0, (4, 3, 224, 224)).astype(np.float32)
    features = ReferenceEvaluator(model).run(["flatten_out"], {"input": x})[0]
    model.graph.initializer[-1].CopyFrom(numpy_helper.from_array(
        (-fc_weight @ features.mean(0)).astype(np.float32), "fc.bias"))
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, path)
    return model
