"""apl.QuantizeOptions (bound from C++) and the one quantize_network entry point that takes it."""
import numpy as np
import pytest

import aidge_ptq_lite as apl
from aidge_ptq_lite import _core, datasets, zoo


@pytest.fixture(scope="module")
def calib():
    return datasets.load_calibration_set(64, data_dir="bundled")


@pytest.fixture(scope="module")
def x_test():
    return datasets.load_fashion_mnist("test", data_dir="bundled", limit=64)[0]


def test_keyword_construction_defaults_and_copies():
    o = apl.QuantizeOptions(nb_bits=4, clipping_mode="mse", channel_wise=True)
    assert (o.nb_bits, o.clipping_mode, o.channel_wise, o.single_shift) == (4, "MSE", True, False)
    assert apl.QuantizeOptions().to_dict() == dict(
        nb_bits=8, clipping_mode="MAX", cross_layer_equalization=False, optimize_signs=False, zero_points=True,
        single_shift=False, no_quant=False, channel_wise=False, verbose=False, histogram_bins=2048)
    changed = o.replace(nb_bits=6)
    assert changed.nb_bits == 6 and o.nb_bits == 4 and changed.channel_wise
    assert apl.QuantizeOptions(clipping_mode=apl.Clipping.KL).clipping_mode == "KL"
    assert apl.QuantizeOptions(nb_bits=np.int64(5)).nb_bits == 5
    assert apl.QuantizeOptions(no_quant=np.bool_(True)).no_quant


@pytest.mark.parametrize("kwargs, field", [
    ({"no_quant": "False"}, "no_quant"),
    ({"channel_wise": 1}, "channel_wise"),
    ({"nb_bits": True}, "nb_bits"),
    ({"nb_bits": 8.0}, "nb_bits"),
    ({"nb_bits": 17}, "nb_bits"),
    ({"nb_bits": 2 ** 40}, "nb_bits"),
    ({"clipping_mode": 3}, "clipping_mode"),
    ({"clipping_mode": "P99"}, "clipping mode"),
    ({"histogram_bins": 100}, "histogram_bins"),
    ({"nb_bit": 8}, "nb_bit"),
])
def test_a_bad_option_names_the_field(kwargs, field):
    with pytest.raises(apl.OptionError, match=field) as err:
        apl.QuantizeOptions(**kwargs)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)
    assert len(str(err.value)) < 300  # a sentence, not pybind's dump of the signature


def test_setting_a_field_is_checked_too():
    o = apl.QuantizeOptions()
    with pytest.raises(apl.OptionError, match="single_shift"):
        o.single_shift = "yes"
    with pytest.raises(apl.OptionError, match="nb_bits"):
        o.nb_bits = 1
    assert o.nb_bits == 8 and not o.single_shift  # unchanged after a refused assignment
    o.nb_bits = 4
    assert o.nb_bits == 4


def test_options_object_and_keywords_give_the_same_network(calib, x_test):
    a, b, c = (apl.load_onnx(zoo.model_path("lenet")) for _ in range(3))
    apl.quantize_network(a, calib, nb_bits=4, clipping_mode="MSE", channel_wise=True)
    apl.quantize_network(b, calib, options=apl.QuantizeOptions(nb_bits=4, clipping_mode="MSE", channel_wise=True))
    apl.quantize_network(c, calib, options=apl.QuantizeOptions(nb_bits=8), nb_bits=4, clipping_mode="MSE",
                         channel_wise=True)  # keywords override the object's fields
    ya = a.forward(x_test, dequantize=False)
    np.testing.assert_array_equal(ya, b.forward(x_test, dequantize=False))
    np.testing.assert_array_equal(ya, c.forward(x_test, dequantize=False))
    assert a.quantization == b.quantization == c.quantization
    assert a.quantization["nb_bits"] == 4 and a.quantization["clipping_mode"] == "MSE"


def test_the_positional_nb_bits_of_the_old_signature_still_works(calib, x_test):
    a, b = apl.load_onnx(zoo.model_path("lenet")), apl.load_onnx(zoo.model_path("lenet"))
    apl.quantize_network(a, 6, calib)
    apl.quantize_network(b, calib, nb_bits=6)
    np.testing.assert_array_equal(a.forward(x_test, dequantize=False), b.forward(x_test, dequantize=False))


@pytest.mark.parametrize("kwargs, match", [
    ({"no_quant": "False"}, "quantize_network: no_quant must be a bool"),
    ({"verbose": None}, "quantize_network: verbose must be a bool"),
    ({"clip": "MSE"}, "quantize_network: QuantizeOptions has no field 'clip'"),
])
def test_quantize_network_names_itself_and_the_flag(calib, kwargs, match):
    g = apl.load_onnx(zoo.model_path("lenet"))
    with pytest.raises(apl.OptionError, match=match):
        apl.quantize_network(g, calib, **kwargs)
    assert not g.is_quantized


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.bool_])
def test_non_float_calibration_data_is_refused(dtype):
    g = apl.load_onnx(zoo.model_path("lenet"))
    raw = np.ones((8, 1, 28, 28), dtype)
    with pytest.raises(ValueError, match="normalize"):
        apl.quantize_network(g, raw)
    with pytest.raises(ValueError, match="normalize"):
        apl.quantize_network(g, [raw])
    assert not g.is_quantized


def test_the_collector_built_from_options_follows_the_clipping_mode(calib):
    g = apl.load_onnx(zoo.model_path("lenet"))
    for mode, wants_histograms in (("MAX", False), ("MSE", True), ("KL", True)):
        work = g.clone()
        options = apl.QuantizeOptions(clipping_mode=mode)
        _core._prepare_for_calibration(work, options)
        collector = apl.RangeCollector(work, options)
        collector.update(calib)
        assert bool(collector.histograms) == wants_histograms, mode
        assert collector.ranges and collector.samples == len(calib)
