"""Accuracy of the integer network on the full Fashion-MNIST test set (calibration: the first 256
train images), against the targets of the PTQ issues. Differences are in points of top-1."""
import functools

import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

pytestmark = pytest.mark.skipif(datasets.data_source().startswith("bundled"),
                                reason="needs the full test set (apt-get install dataset-fashion-mnist)")


@functools.lru_cache(maxsize=None)
def _data():
    return datasets.load_fashion_mnist("test"), datasets.load_calibration_set(256)


def _accuracy(g):
    (x, y), _ = _data()
    hits = sum(int(np.sum(g.forward(x[i:i + 1000]).argmax(1) == y[i:i + 1000])) for i in range(0, len(x), 1000))
    return 100.0 * hits / len(x)


@functools.lru_cache(maxsize=None)
def float_accuracy(model):
    return _accuracy(apl.load_onnx(zoo.model_path(model)))


@functools.lru_cache(maxsize=None)
def int_accuracy(model, nb_bits=8, clipping="MAX", channel_wise=False, cle=False, signs=False, shift=False):
    g = apl.load_onnx(zoo.model_path(model))
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=_data()[1], clipping_mode=clipping,
                         channel_wise=channel_wise, cross_layer_equalization=cle, optimize_signs=signs,
                         single_shift=shift)
    return _accuracy(g)


def loss(model, **kw):
    return float_accuracy(model) - int_accuracy(model, **kw)


@pytest.mark.parametrize("model", ["lenet", "resnet", "branchnet"])
def test_int8_per_tensor_within_0_3_point(model):
    assert loss(model) <= 0.3


def test_int8_channel_wise_within_0_2_point(zoo_model):
    assert loss(zoo_model, channel_wise=True) <= 0.2


@pytest.mark.parametrize("clipping", ["MSE", "KL"])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_8bit_clipping_costs_at_most_0_1_point_against_max(zoo_model, clipping, channel_wise):
    assert int_accuracy(zoo_model, clipping=clipping, channel_wise=channel_wise) >= \
        int_accuracy(zoo_model, channel_wise=channel_wise) - 0.1


def test_4bit_mse_beats_max(zoo_model):
    mse = int_accuracy(zoo_model, nb_bits=4, clipping="MSE", channel_wise=True)
    assert mse >= int_accuracy(zoo_model, nb_bits=4, channel_wise=True) + 1.0


def test_cle_never_costs_more_than_0_1_point(zoo_model):
    assert int_accuracy(zoo_model, cle=True) >= int_accuracy(zoo_model) - 0.1


@pytest.mark.parametrize("nb_bits", [8, 4])
def test_sign_optimization_never_worse_by_more_than_0_1_point(zoo_model, nb_bits):
    kw = {"nb_bits": nb_bits, "channel_wise": True, "clipping": "MSE" if nb_bits == 4 else "MAX"}
    assert int_accuracy(zoo_model, signs=True, **kw) >= int_accuracy(zoo_model, **kw) - 0.1


def test_single_shift_within_0_5_point_of_full_multipliers(zoo_model):
    assert int_accuracy(zoo_model, shift=True) >= int_accuracy(zoo_model) - 0.5


@pytest.mark.parametrize("nb_bits", [2, 3, 5, 6, 7])
def test_sign_optimization_never_breaks_a_network(zoo_model, nb_bits):
    """Sign optimization has broken whole networks elsewhere: it must not collapse any bit width."""
    with_signs = int_accuracy(zoo_model, nb_bits=nb_bits, clipping="MSE", channel_wise=True, signs=True)
    without = int_accuracy(zoo_model, nb_bits=nb_bits, clipping="MSE", channel_wise=True)
    assert with_signs >= without - max(1.0, 0.1 * without)
