// Bindings of the PTQ passes (cpp/src/ptq/). quantize_network itself is Python
// (python/aidge_ptq_lite/ptq.py): it streams the calibration batches into these passes.
#include <pybind11/stl.h>

#include <cctype>
#include <iterator>

#include "aidge_ptq_lite/ptq.hpp"
#include "bindings.hpp"
#include "numpy_tensor.hpp"

namespace py = pybind11;
using namespace apl;

namespace {

// QuantizeOptions fields by Python name. Values are type-checked here, so that a wrong type names
// the field ("no_quant must be a bool, got str 'False'") instead of pybind's signature dump.
enum class FieldType { Int, Bool, Clipping };
struct OptionField {
  const char* name;
  FieldType type;
  const char* doc;
  bool QuantizeOptions::*flag = nullptr;  // the Bool fields
};
const OptionField kOptionFields[] = {
    {"nb_bits", FieldType::Int, "Bit width of weights and activations, 2..16 (default 8)."},
    {"clipping_mode", FieldType::Clipping, "How activation ranges are chosen: 'MAX' (default), 'MSE', 'AA' or 'KL'."},
    {"cross_layer_equalization", FieldType::Bool, "Balance the weight ranges of consecutive layers first (CLE).",
     &QuantizeOptions::cross_layer_equalization},
    {"optimize_signs", FieldType::Bool, "Unsigned codes where activations are provably non-negative.",
     &QuantizeOptions::optimize_signs},
    {"zero_points", FieldType::Bool,
     "With optimize_signs, also unsigned codes with a zero point for nearly non-negative activations (default on).",
     &QuantizeOptions::zero_points},
    {"single_shift", FieldType::Bool, "Power-of-two rescaling, compensated in the weights.", &QuantizeOptions::single_shift},
    {"no_quant", FieldType::Bool, "The whole pipeline without rounding (debugging): outputs equal the float ones.",
     &QuantizeOptions::no_quant},
    {"channel_wise", FieldType::Bool, "One weight scale per output channel.", &QuantizeOptions::channel_wise},
    {"verbose", FieldType::Bool, "Print progress and the arbitration decisions.", &QuantizeOptions::verbose},
    {"histogram_bins", FieldType::Int, "Bins of each activation histogram (MSE, AA, KL), a power of two (default 2048)."},
};

// An option of the wrong type or out of its domain: both a TypeError and a ValueError, so that
// either `except` catches it.
py::handle option_error() {
  static py::handle cls = PyErr_NewExceptionWithDoc(
      "aidge_ptq_lite._core.OptionError",
      "A QuantizeOptions field of the wrong type or value (both TypeError and ValueError); the message names the field.",
      py::make_tuple(py::handle(PyExc_TypeError), py::handle(PyExc_ValueError)).release().ptr(), nullptr);
  return cls;
}

[[noreturn]] void option_fail(const std::string& message) {
  PyErr_SetString(option_error().ptr(), message.c_str());
  throw py::error_already_set();
}

std::string python_repr(const py::handle& v) {
  return std::string(py::str(py::type::handle_of(v).attr("__name__"))) + " " + std::string(py::repr(v));
}

const OptionField& option_field(const std::string& name) {
  for (const OptionField& f : kOptionFields)
    if (name == f.name) return f;
  std::string names;
  for (const OptionField& f : kOptionFields) names += std::string(names.empty() ? "" : ", ") + f.name;
  option_fail("QuantizeOptions has no field '" + name + "' (fields: " + names + ")");
}

void set_option(QuantizeOptions& o, const OptionField& f, const py::handle& v) {
  const py::module_ np = py::module_::import("numpy");
  const bool is_bool = py::isinstance<py::bool_>(v) || py::isinstance(v, np.attr("bool_"));
  const bool is_int = !is_bool && (py::isinstance<py::int_>(v) || py::isinstance(v, np.attr("integer")));
  const std::string name = f.name;
  switch (f.type) {
    case FieldType::Bool:
      if (!is_bool) option_fail(name + " must be a bool, got " + python_repr(v));
      o.*f.flag = py::bool_(py::reinterpret_borrow<py::object>(v)).cast<bool>();
      return;
    case FieldType::Clipping: {  // a str, or the str-valued enum apl.Clipping
      if (!py::isinstance<py::str>(v))
        option_fail(name + " must be one of 'MAX', 'MSE', 'AA', 'KL', got " + python_repr(v));
      std::string mode = v.cast<std::string>();
      for (char& c : mode) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      o.clipping_mode = mode;
      return;
    }
    case FieldType::Int:
      if (!is_int) option_fail(name + " must be an int, got " + python_repr(v));
      if (name == "histogram_bins") {
        o.histogram_bins = v.cast<int64_t>();
      } else {
        const int64_t bits = v.cast<int64_t>();
        if (bits != static_cast<int>(bits)) option_fail("nb_bits must be in 2..16, got " + std::to_string(bits));
        o.nb_bits = static_cast<int>(bits);  // QuantSpec checks the range
      }
      return;
  }
}

py::object get_option(const QuantizeOptions& o, const OptionField& f) {
  switch (f.type) {
    case FieldType::Bool: return py::bool_(o.*f.flag);
    case FieldType::Clipping: return py::str(o.clipping_mode);
    case FieldType::Int: break;
  }
  return std::string(f.name) == "nb_bits" ? py::int_(o.nb_bits) : py::int_(o.histogram_bins);
}

void validate(const QuantizeOptions& o) {
  try {
    o.validate();
  } catch (const ValueError& e) {
    option_fail(e.what());
  }
}

// `o` with the keyword fields set, checked.
QuantizeOptions with_fields(QuantizeOptions o, const py::kwargs& kwargs) {
  for (auto [k, v] : kwargs) set_option(o, option_field(k.cast<std::string>()), v);
  validate(o);
  return o;
}

}  // namespace

py::dict options_dict(const QuantizeOptions& o) {
  py::dict d;
  for (const OptionField& f : kOptionFields) d[f.name] = get_option(o, f);
  return d;
}

namespace {

void bind_options(py::module_& m) {
  m.attr("OptionError") = option_error();
  auto cls = py::class_<QuantizeOptions>(m, "QuantizeOptions", R"pbdoc(
The options of ``quantize_network``, by keyword: ``QuantizeOptions(nb_bits=4, clipping_mode="MSE",
channel_wise=True)``. A wrong type, a value out of its domain or an unknown field raises
``OptionError`` (a TypeError and a ValueError) naming the field. Fields: nb_bits, clipping_mode, cross_layer_equalization, optimize_signs, zero_points,
single_shift, no_quant, channel_wise, verbose, histogram_bins.
)pbdoc");
  cls.def(py::init([](const py::kwargs& kwargs) { return with_fields(QuantizeOptions{}, kwargs); }),
          "Options from keywords (defaults: 8 bits, MAX, every flag off).")
      .def("replace", [](const QuantizeOptions& self, const py::kwargs& kwargs) { return with_fields(self, kwargs); },
           "A copy with the given fields changed (same checks as the constructor).")
      .def("to_dict", &options_dict, "The fields as a dict.")
      .def("__eq__", [](const QuantizeOptions& a, const QuantizeOptions& b) {
            for (const OptionField& f : kOptionFields)
              if (!get_option(a, f).equal(get_option(b, f))) return false;
            return true;
          })
      .def("__repr__", [](const QuantizeOptions& o) {
            std::string s = "QuantizeOptions(";
            for (const OptionField& f : kOptionFields)
              s += std::string(f.name) + "=" + std::string(py::repr(get_option(o, f))) +
                   (&f == &kOptionFields[std::size(kOptionFields) - 1] ? ")" : ", ");
            return s;
          });
  for (const OptionField& f : kOptionFields)
    cls.def_property(f.name, [&f](const QuantizeOptions& o) { return get_option(o, f); },
                     [&f](QuantizeOptions& o, const py::object& v) {
                       QuantizeOptions changed = o;
                       set_option(changed, f, v);
                       validate(changed);
                       o = changed;
                     }, f.doc);
}

}  // namespace

void bind_ptq(py::module_& m) {
  bind_options(m);

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
      .def_readonly("islands", &QuantizabilityReport::islands,
                    "Float islands: nodes without an integer form inside the network. Each runs its "
                    "float op on dequantized inputs and is requantized by the Scaling node after it "
                    "(an element-wise one is an exact lookup table of its input codes).")
      .def_readonly("island_reasons", &QuantizabilityReport::island_reasons,
                    "Per island: 'op 'name': why it has no integer form'.")
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
    ``quantized``, ``kept_float``, ``islands`` and ``unsupported`` lists; ``str(report)`` is a
    summary.
)pbdoc");

  m.def("insert_scaling_nodes", &insert_scaling_nodes, py::arg("graph"), R"pbdoc(
Insert a Scaling node after every Conv, Gemm, AveragePool, GlobalAveragePool and joining node
(Add, Sub, Mul, Concat), and after every float island (see ``quantizability_report``). Each starts with factor 1 per output channel; in the integer network
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
      .def(py::init<const Graph&, const QuantizeOptions&>(), py::arg("graph"), py::arg("options"),
           py::keep_alive<1, 2>(), R"pbdoc(
The collector ``quantize_network`` runs for ``options``: histograms for its clipping mode (none for
MAX, which needs only the max).
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
      .def_property_readonly("samples", &RangeCollector::samples, "Number of samples seen.")
      // Private, for tests (tests/test_calibration_speed_paths.py): min x where each range is
      // measured, and the per-channel means of the affine layers' inputs (bias correction).
      .def_property_readonly("_mins", &RangeCollector::mins)
      .def_property_readonly("_channel_means", &RangeCollector::channel_means);

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

  m.def("_prepare_for_calibration", &prepare_for_calibration, py::arg("graph"), py::arg("options"));
  m.def("_quantize_network", [](Graph& g, const py::iterable& batches, const QuantizeOptions& options) {
        py::iterator it = py::iter(batches);
        const CalibrationBatches next = [&it](Tensor& batch) {
          py::gil_scoped_acquire gil;
          if (it == py::iterator::sentinel()) return false;
          batch = py_bridge::input_from_numpy(*it);
          ++it;
          return true;
        };
        // Copied and assigned with the GIL held (ordered against other Python threads' forwards
        // and edits); quantized without it, on the copy.
        Graph work = g.clone();
        {
          py::gil_scoped_release release;
          quantize_network(work, next, options);
        }
        g = std::move(work);
      }, py::arg("graph"), py::arg("batches"), py::arg("options"),
      "quantize_network's C++ entry point: pulls float batches from the iterable `batches`.");
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
