"""Accuracy of the integer network on the full Fashion-MNIST test set (calibration: the first 256
train images), against the targets of the PTQ issues. Differences are in points of top-1.
Comparisons of two options within 0.1 point use the mean over 4 disjoint calibration sets.

The whole module is in the `slow` suite (with the full-set export cases, about 13 minutes on 2
cores): `python -m pytest -q -m slow tests`. The default test command runs
tests/test_accuracy_smoke.py instead (the bundled 1,000 images)."""
import functools
import math

import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import datasets, zoo

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(datasets.data_source().startswith("bundled"),
                                 reason="needs the full test set (apt-get install dataset-fashion-mnist)")]


CALIBRATION_SIZE = 256
CALIBRATION_SETS = 4  # disjoint sets of CALIBRATION_SIZE train images, for the method comparisons


@functools.lru_cache(maxsize=None)
def _data():
    return (datasets.load_fashion_mnist("test"),
            datasets.load_calibration_set(CALIBRATION_SIZE * CALIBRATION_SETS))


def _calibration_set(k):
    return _data()[1][k * CALIBRATION_SIZE:(k + 1) * CALIBRATION_SIZE]


def _predictions(g):
    (x, _), _ = _data()
    return np.concatenate([g.forward(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])


def _accuracy_of(predictions):
    (_, y), _ = _data()
    return 100.0 * float(np.mean(predictions == y))


def _accuracy(g):
    return _accuracy_of(_predictions(g))


@functools.lru_cache(maxsize=None)
def float_accuracy(model):
    return _accuracy(apl.load_onnx(zoo.model_path(model)))


@functools.lru_cache(maxsize=None)
def int_predictions(model, nb_bits=8, clipping="MAX", channel_wise=False, cle=False, signs=False, shift=False,
                    calibration=0):
    """Test-set predictions after quantizing with the `calibration`-th calibration set (0: the first
    256 images)."""
    g = apl.load_onnx(zoo.model_path(model))
    apl.quantize_network(g, nb_bits=nb_bits, calibration_set=_calibration_set(calibration),
                         clipping_mode=clipping, channel_wise=channel_wise, cross_layer_equalization=cle,
                         optimize_signs=signs, single_shift=shift)
    return _predictions(g)


def int_accuracy(model, **kw):
    return _accuracy_of(int_predictions(model, **kw))


def mean_int_accuracy(model, **kw):
    """Mean over the disjoint calibration sets. One set is a single draw: perturbing the ranges of a
    random half of mobilenet's layers by 2-5% (a fraction of a bit at 8 bits) moves its accuracy by
    up to 0.2 point, so a comparison of two range policies within 0.1 point needs the mean."""
    return float(np.mean([int_accuracy(model, calibration=k, **kw) for k in range(CALIBRATION_SETS)]))


# Targets not reached yet, with the figures measured on the full test set (strict: a fix makes the
# test fail until the entry is removed).
KNOWN_MISSES = {}


def known_miss(request, key, model):
    reason = KNOWN_MISSES.get((key, model))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def loss(model, **kw):
    return float_accuracy(model) - int_accuracy(model, **kw)


@pytest.mark.parametrize("model", ["lenet", "resnet", "branchnet"])
def test_int8_per_tensor_within_0_3_point(model):
    assert loss(model) <= 0.3


def test_int8_channel_wise_within_0_2_point(zoo_model):
    assert loss(zoo_model, channel_wise=True) <= 0.2


@pytest.mark.parametrize("clipping", ["MSE", "KL"])
@pytest.mark.parametrize("channel_wise", [False, True])
def test_8bit_clipping_costs_at_most_0_1_point_against_max(request, zoo_model, clipping, channel_wise):
    known_miss(request, f"clip8-{clipping}-{'channel' if channel_wise else 'tensor'}", zoo_model)
    assert mean_int_accuracy(zoo_model, clipping=clipping, channel_wise=channel_wise) >= \
        mean_int_accuracy(zoo_model, channel_wise=channel_wise) - 0.1


def one_sided_mcnemar_p(a_only_right, b_only_right):
    """Exact McNemar test on paired predictions: the probability, if A and B were equally good, that
    A is right where B is wrong on at least `a_only_right` of the images where exactly one of them is
    right (binomial tail with p = 1/2)."""
    n = a_only_right + b_only_right
    return sum(math.comb(n, k) for k in range(a_only_right, n + 1)) / 2 ** n


def test_one_sided_mcnemar_p_against_known_values():
    assert one_sided_mcnemar_p(5, 0) == 1 / 32
    assert one_sided_mcnemar_p(0, 5) == 1.0
    assert one_sided_mcnemar_p(10, 10) == pytest.approx(0.5 + math.comb(20, 10) / 2 ** 21)


def test_4bit_mse_beats_max_by_a_clear_margin(zoo_model):
    """"A clear margin": on every calibration set, MSE is better than MAX on the same 10,000 test
    images beyond what chance explains (one-sided exact McNemar test, p < 0.05 on each set). The
    margins it measures run from +0.69 point (lenet, where MAX loses little to outliers: the best
    per-layer clip, tuned on the test set itself, reaches +1.41) to +55 points (resnet)."""
    (_, y), _ = _data()
    for k in range(CALIBRATION_SETS):
        mse_right = int_predictions(zoo_model, nb_bits=4, clipping="MSE", channel_wise=True, calibration=k) == y
        max_right = int_predictions(zoo_model, nb_bits=4, channel_wise=True, calibration=k) == y
        mse_only, max_only = int(np.sum(mse_right & ~max_right)), int(np.sum(max_right & ~mse_right))
        assert one_sided_mcnemar_p(mse_only, max_only) < 0.05, \
            f"calibration set {k}: MSE alone right on {mse_only} images, MAX alone on {max_only}"


@pytest.mark.parametrize("channel_wise", [False, True])
def test_cle_never_costs_more_than_0_1_point(request, zoo_model, channel_wise):
    known_miss(request, "cle", zoo_model)
    assert mean_int_accuracy(zoo_model, cle=True, channel_wise=channel_wise) >= \
        mean_int_accuracy(zoo_model, channel_wise=channel_wise) - 0.1


def test_mobilenet_per_tensor_with_cle_within_0_3_point():
    assert loss("mobilenet", cle=True) <= 0.3


@pytest.mark.parametrize("nb_bits", [8, 4])
def test_sign_optimization_never_worse_by_more_than_0_1_point(request, zoo_model, nb_bits):
    known_miss(request, f"signs{nb_bits}", zoo_model)
    kw = {"nb_bits": nb_bits, "channel_wise": True, "clipping": "MSE" if nb_bits == 4 else "MAX"}
    assert mean_int_accuracy(zoo_model, signs=True, **kw) >= mean_int_accuracy(zoo_model, **kw) - 0.1


@pytest.mark.parametrize("channel_wise", [False, True])
def test_single_shift_within_0_5_point_of_full_multipliers(request, zoo_model, channel_wise):
    known_miss(request, "shift", zoo_model)
    assert int_accuracy(zoo_model, shift=True, channel_wise=channel_wise) >= \
        int_accuracy(zoo_model, channel_wise=channel_wise) - 0.5


@pytest.mark.parametrize("nb_bits", [2, 3, 5, 6, 7])
def test_sign_optimization_never_breaks_a_network(zoo_model, nb_bits):
    """Sign optimization has broken whole networks elsewhere: it must not collapse any bit width."""
    with_signs = int_accuracy(zoo_model, nb_bits=nb_bits, clipping="MSE", channel_wise=True, signs=True)
    without = int_accuracy(zoo_model, nb_bits=nb_bits, clipping="MSE", channel_wise=True)
    assert with_signs >= without - max(1.0, 0.1 * without)


def test_resnet_4bit_channel_wise_mse_within_5_points():
    assert loss("resnet", nb_bits=4, clipping="MSE", channel_wise=True) <= 5.0
