// Bindings of the PTQ passes (cpp/src/ptq/). quantize_network itself is Python
// (python/aidge_ptq_lite/ptq.py): it streams the calibration batches into these passes.
#include <pybind11/stl.h>

#include "aidge_ptq_lite/ptq.hpp"
#include "bindings.hpp"
#include "numpy_tensor.hpp"

namespace py = pybind11;
using namespace apl;

namespace {

QuantizeOptions make_options(int nb_bits, const std::string& clipping, bool cle, bool optimize_signs,
                             bool single_shift, bool no_quant, bool channel_wise, bool verbose) {
  QuantizeOptions o;
  o.nb_bits = nb_bits;
  o.clipping = clipping;
  o.cross_layer_equalization = cle;
  o.optimize_signs = optimize_signs;
  o.single_shift = single_shift;
  o.no_quant = no_quant;
  o.channel_wise = channel_wise;
  o.verbose = verbose;
  return o;
}

}  // namespace

void bind_ptq(py::module_& m) {
  m.def("prepare_network", &prepare_network, py::arg("graph"), R"pbdoc(
Bring a float graph to the form the PTQ expects, without changing its function.

Folds each BatchNormalization into the Conv/Gemm before it (a BatchNormalization with no such
producer becomes a depthwise 1x1 Conv), removes Identity and Dropout, turns 2-D MatMul into
Gemm, and gives every Conv/Gemm a bias. Mutates ``graph``.

Raises
------
ValueError
    If the graph is already quantized.
)pbdoc");

  py::class_<QuantizabilityReport>(m, "QuantizabilityReport",
                                   "Which nodes run in integers, stay float, or block quantization.")
      .def_readonly("quantized", &QuantizabilityReport::quantized, "Nodes that run in integers.")
      .def_readonly("kept_float", &QuantizabilityReport::kept_float,
                    "Nodes run in float after the output dequantization (e.g. a final Softmax).")
      .def_readonly("unsupported", &QuantizabilityReport::unsupported,
                    "'op 'name': reason' for each node that prevents quantization.")
      .def_property_readonly("ok", [](const QuantizabilityReport& r) { return r.unsupported.empty(); },
                             "True when the graph can be quantized.")
      .def("__str__", &QuantizabilityReport::text)
      .def("__repr__", &QuantizabilityReport::text);
  m.def("quantizability_report", &quantizability_report, py::arg("graph"), R"pbdoc(
Report which nodes of ``graph`` can be quantized.

Run it on a prepared graph (``prepare_network``) for the final picture: BatchNormalization
nodes that will be folded are reported as quantized.

Returns
-------
QuantizabilityReport
    ``quantized``, ``kept_float`` and ``unsupported`` lists; ``str(report)`` is a summary.
)pbdoc");

  m.def("insert_scaling_nodes", &insert_scaling_nodes, py::arg("graph"), R"pbdoc(
Insert a Scaling node after every Conv, Gemm, AveragePool, GlobalAveragePool and joining node
(Add, Sub, Mul, Concat). Each starts with factor 1 per output channel; in the integer network
it becomes the requantizer of the accumulator before it. Mutates ``graph``.
)pbdoc");

  m.def("normalize_parameters", &normalize_parameters, py::arg("graph"), py::arg("channel_wise") = false,
        R"pbdoc(
Scale each Conv/Gemm's weights and bias by 1 / max|W| (per output channel when
``channel_wise``), and multiply the following Scaling node's factor by the same amount, so that
weights lie in [-1, 1] and the function is unchanged. Requires ``insert_scaling_nodes``.

Raises
------
GraphError
    If an affine node has no Scaling node after it.
ValueError
    If weights are NaN or infinite.
)pbdoc");

  py::class_<RangeCollector>(m, "RangeCollector", R"pbdoc(
Streaming calibration: ``update(batch)`` runs one float batch and keeps, for the Input and each
Scaling node, the largest |x| seen so far. Memory does not grow with the number of batches.
A Scaling node is measured where its codes are consumed: after the ReLU and MaxPool that all its
consumers go through (the largest x > 0 after a ReLU; values a MaxPool drops do not count).
)pbdoc")
      .def(py::init<const Graph&, int64_t, const std::string&>(), py::arg("graph"),
           py::arg("histogram_bins") = 0, py::arg("clipping_mode") = "MSE", py::keep_alive<1, 2>(), R"pbdoc(
Collector for ``graph`` (a float graph, after ``insert_scaling_nodes``). With
``histogram_bins`` > 0 it also keeps a histogram of |x| (that many bins) per Scaling node, for the
search of ``clipping_mode``: of the values where they are consumed, like the max, for "MSE" and
"AA"; of the Scaling node's own output for "KL".
)pbdoc")
      .def("update", [](RangeCollector& rc, const py::handle& batch) {
            Tensor t = py_bridge::input_from_numpy(batch);
            py::gil_scoped_release release;
            rc.update(t);
          }, py::arg("batch"), R"pbdoc(
Accumulate the ranges of one batch (float array (N, *input_shape)).

Raises
------
ValueError
    If the batch or an activation contains NaN or Inf (the message names the node).
ShapeError
    If the batch has the wrong shape.
)pbdoc")
      .def_property_readonly("ranges", &RangeCollector::ranges, "Dict node name (Input and Scaling nodes) -> max |x| where consumed (max x after a ReLU).")
      .def_property_readonly("histograms", &RangeCollector::histograms,
                             "Dict Scaling node name -> Histogram of |x| (empty without histogram_bins).")
      .def_property_readonly("samples", &RangeCollector::samples, "Number of samples seen.");

  m.def("normalize_activations", &normalize_activations, py::arg("graph"), py::arg("ranges"),
        py::arg("verbose") = false, R"pbdoc(
Make every activation lie in [-1, 1] given the calibrated ``ranges`` (dict node -> max |x|,
from ``compute_ranges``, possibly clipped by ``adjust_ranges``).

At joining nodes (Add, Sub, Concat) the branches must share a scale: the largest range wins
(max arbitration) and the Scaling (or Input) node above each smaller branch takes it. Biases
and Scaling factors are rescaled accordingly. Mutates ``graph``.

Returns
-------
dict
    The ranges actually used, after arbitration.
)pbdoc");

  m.def("quantize_normalized_network", &quantize_normalized_network, py::arg("graph"),
        py::arg("nb_bits") = 8, py::arg("no_quant") = false, py::arg("optimize_signs") = false, R"pbdoc(
Turn the normalized network into n-bit codes: weights times 2^(n-1)-1 and rounded (not rounded
when ``no_quant``), biases at the accumulator scale, Scaling factors into requantization
factors; the Scaling nodes feeding the outputs become dequantization points.

Parameters
----------
nb_bits : int
    2..16.
no_quant : bool
    Run the same pipeline without rounding (debugging: outputs equal the float network's).
optimize_signs : bool
    Use unsigned [0, 2^n-1] codes where the sign map allows.

Raises
------
ValueError
    If nb_bits is outside 2..16.
UnsupportedOpError
    If a node cannot be quantized (see quantizability_report).
)pbdoc");

  m.def("cast_to_integer", &cast_to_integer, py::arg("graph"), py::arg("nb_bits") = 8, R"pbdoc(
Store the quantized network's weights as int8 (int32 above 8 bits), biases as int32 (int64), and
each Scaling factor as a fixed-point multiplier and shift, for the integer executor.
)pbdoc");

  m.def("_prepare_for_calibration", [](Graph& g, int nb_bits, const std::string& clipping, bool cle,
                                        bool signs, bool shift, bool no_quant, bool cw, bool verbose) {
        prepare_for_calibration(g, make_options(nb_bits, clipping, cle, signs, shift, no_quant, cw, verbose));
      });
  m.def("_quantize_from_calibration", [](Graph& g, const RangeCollector& calibration, int nb_bits,
                                          const std::string& clipping, bool cle, bool signs, bool shift,
                                          bool no_quant, bool cw, bool verbose) {
        py::gil_scoped_release release;
        quantize_from_calibration(g, calibration, make_options(nb_bits, clipping, cle, signs, shift, no_quant, cw, verbose));
      });
  m.def("adjust_ranges", &adjust_ranges, py::arg("graph"), py::arg("clipping_mode"), py::arg("ranges"),
        py::arg("histograms"), py::arg("nb_bits") = 8, py::arg("optimize_signs") = false, R"pbdoc(
Clipping optimization: the range of each Scaling node of ``graph`` becomes
min(max |x|, clip), where the clip minimises over its histogram the quantization MSE
(``"MSE"``), mean absolute error (``"AA"``) or KL divergence (``"KL"``, TensorRT's entropy
calibration) of ``nb_bits`` codes: 2^(n-1)-1 levels, or 2^n-1 for nodes marked unsigned when
``optimize_signs``. ``"MAX"`` returns ``ranges`` unchanged.

Parameters
----------
graph : Graph
    The prepared graph the ranges and histograms were collected on.
clipping_mode : str
    "MAX", "MSE", "AA" or "KL".
ranges : dict
    Node name -> max |x| (``compute_ranges``).
histograms : dict
    Scaling node name -> Histogram (``compute_histograms``).

Returns
-------
dict
    The adjusted ranges.

Raises
------
ValueError
    Unknown mode, nb_bits outside 2..16, or a Scaling node without range or histogram.
)pbdoc");
}
