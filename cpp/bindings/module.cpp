// The compiled module aidge_ptq_lite._core: exceptions, the graph and the SIMD controls.
// The PTQ passes are bound in ptq_bindings.cpp.
#include <pybind11/stl.h>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/ops.hpp"
#include "aidge_ptq_lite/simd.hpp"
#include "bindings.hpp"
#include "numpy_tensor.hpp"

namespace py = pybind11;
using namespace apl;
using py_bridge::from_numpy;
using py_bridge::to_numpy;

namespace {

// ONNX attribute values as onnx_io passes them: int, float, str, or a flat list of numbers.
// Anything else (a nested list from a 2-D shape tensor, None, bytes) is refused naming the node,
// not left to a pybind11 cast error.
Attribute attribute_from_python(const std::string& node_label, const std::string& key, const py::handle& v) {
  Attribute a;
  const auto is_number = [](const py::handle& x) {
    return py::isinstance<py::int_>(x) || py::isinstance<py::float_>(x);
  };
  if (py::isinstance<py::bool_>(v) || py::isinstance<py::int_>(v)) {
    a.kind = Attribute::Kind::Int;
    a.i = v.cast<int64_t>();
  } else if (py::isinstance<py::float_>(v)) {
    a.kind = Attribute::Kind::Float;
    a.f = v.cast<float>();
  } else if (py::isinstance<py::str>(v)) {
    a.kind = Attribute::Kind::String;
    a.s = v.cast<std::string>();
  } else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    auto seq = v.cast<py::sequence>();
    bool all_int = true;
    for (auto item : seq) {
      if (!is_number(item))
        throw ValueError(node_label + ": attribute '" + key + "' must be a number or a flat list of numbers, got " +
                         "a list holding " + std::string(py::str(py::type::of(item).attr("__name__"))) +
                         " (a constant of rank > 1 where ONNX expects a 1-D tensor?)");
      all_int = all_int && py::isinstance<py::int_>(item);
    }
    if (all_int) {
      a.kind = Attribute::Kind::Ints;
      a.ints = v.cast<std::vector<int64_t>>();
    } else {
      a.kind = Attribute::Kind::Floats;
      a.floats = v.cast<std::vector<float>>();
    }
  } else {
    throw ValueError(node_label + ": attribute '" + key + "' has an unsupported type " +
                     std::string(py::str(py::type::of(v).attr("__name__"))));
  }
  return a;
}

py::object attribute_to_python(const Attribute& a) {
  switch (a.kind) {
    case Attribute::Kind::Int: return py::int_(a.i);
    case Attribute::Kind::Float: return py::float_(a.f);
    case Attribute::Kind::Ints: return py::cast(a.ints);
    case Attribute::Kind::Floats: return py::cast(a.floats);
    case Attribute::Kind::String: return py::str(a.s);
  }
  return py::none();
}

// The executor of a Python Graph, kept in its __dict__ with the graph version and SIMD level it
// was built for (the C++ Graph keeps no executor). Holding the GIL here orders it against edits
// from other Python threads (which hold it too); the run itself works on the executor's
// snapshot, so an edit or a quantize_network during a forward cannot tear it.
std::shared_ptr<Executor> executor_of(const py::object& self) {
  const Graph& g = self.cast<const Graph&>();
  py::dict cache = self.attr("__dict__");
  const py::str key("_executor");
  const auto level = static_cast<int>(active_simd_level());
  if (cache.contains(key)) {
    const py::tuple entry = cache[key];
    if (entry[0].cast<uint64_t>() == g.version() && entry[1].cast<int>() == level)
      return entry[2].cast<std::shared_ptr<Executor>>();
  }
  std::shared_ptr<const Graph> snapshot = g.snapshot();
  std::shared_ptr<Executor> executor;
  {
    py::gil_scoped_release release;  // kernel preparation packs weights: let other threads run
    executor = std::make_shared<Executor>(std::move(snapshot));
  }
  cache[key] = py::make_tuple(g.version(), level, executor);
  return executor;
}

py::object forward(const py::object& self, const py::handle& x, const py::handle& dequantize_arg) {
  if (!py::isinstance<py::bool_>(dequantize_arg))
    throw py::type_error("forward: dequantize must be a bool, got " +
                         std::string(py::str(py::type::handle_of(dequantize_arg).attr("__name__"))));
  const bool dequantize = dequantize_arg.cast<bool>();
  Tensor input = py_bridge::input_from_numpy(x);
  const std::shared_ptr<Executor> executor = executor_of(self);
  std::vector<Tensor> outs;
  {
    py::gil_scoped_release release;
    outs = executor->run(input, nullptr, dequantize);
  }
  if (outs.size() == 1) return to_numpy(outs[0]);
  py::list l;
  for (const Tensor& t : outs) l.append(to_numpy(t));
  return l;
}

const char* export_rule_name(ExportRule r) {
  switch (r) {
    case ExportRule::QuantizeInput: return "quantize_input";
    case ExportRule::Affine: return "affine";
    case ExportRule::Requantize: return "requantize";
    case ExportRule::FloatOp: return "float_op";
    case ExportRule::None: return "none";
  }
  return "none";
}

py::dict op_registry_dict() {
  py::dict ops;
  for (int k = 0; k < static_cast<int>(OpKind::Count); ++k) {
    const OpTraits& t = op_traits(static_cast<OpKind>(k));
    py::dict row, attribute_inputs;
    for (const auto& [index, name] : t.attribute_inputs) attribute_inputs[py::int_(index)] = name;
    py::list activation_attributes;
    for (const auto& a : t.activation_attributes) activation_attributes.append(a.key);
    row["domain"] = t.domain;
    row["min_inputs"] = t.min_inputs;
    row["max_inputs"] = t.max_inputs;
    row["param_inputs"] = t.param_inputs;
    row["attribute_inputs"] = attribute_inputs;
    row["constant_operand"] = t.constant_operand;
    row["activation_attributes"] = activation_attributes;
    row["export_rule"] = export_rule_name(t.export_rule);
    row["affine"] = t.affine;
    row["join"] = t.join;
    row["needs_scaling"] = t.needs_scaling;
    row["keeps_codes"] = t.keeps_codes;
    row["rounds_codes"] = t.rounds_codes;
    row["view"] = t.view;
    row["transposed_weights"] = t.transposed_weights;
    row["float_only"] = t.float_only;
    row["elementwise"] = t.elementwise;
    row["integer_kernel"] = t.integer_kernel != nullptr;
    ops[t.name] = row;
  }
  return ops;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "aidge_ptq_lite compiled core: graph IR, float and integer executors, PTQ passes.";

  // Derived exceptions are registered after their base so they are matched first.
  static py::exception<Error> base_error(m, "Error", PyExc_RuntimeError);
  base_error.doc() = "Base class of the errors raised by aidge_ptq_lite's core.";
  py::register_exception<GraphError>(m, "GraphError", PyExc_ValueError).doc() =
      "A malformed graph: a cycle, a missing producer, a duplicate or unknown node name (ValueError).";
  py::register_exception<ShapeError>(m, "ShapeError", PyExc_ValueError).doc() =
      "A tensor shape or rank that does not fit the graph, e.g. a forward input (ValueError).";
  py::register_exception<UnsupportedError>(m, "UnsupportedOpError", PyExc_NotImplementedError).doc() =
      "An op or attribute the library does not implement; the message names op, node and the supported set.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<Node>(m, "Node", "A read-only view (copy) of one graph node.")
      .def_readonly("name", &Node::name, "Unique node name.")
      .def_property_readonly("op", [](const Node& n) { return std::string(n.op()); },
                             "Op type (ONNX name, 'Input', or 'Scaling').")
      .def_readonly("inputs", &Node::inputs, "Names of the producer nodes, in order.")
      .def_property_readonly("shape", [](const Node& n) { return n.shape; },
                             "Output shape per sample (the batch axis is not included).")
      .def_property_readonly("attributes", [](const Node& n) {
            py::dict d;
            for (const auto& [k, v] : n.attrs) d[py::str(k)] = attribute_to_python(v);
            return d;
          }, "Attributes as a dict.")
      .def_property_readonly("params", [](const Node& n) {
            py::list l;
            for (const Tensor& t : n.params) l.append(to_numpy(t));
            return l;
          }, "Constant operands (copies), e.g. [weights, bias] for a Conv.")
      .def_property_readonly("quant", [](const Node& n) {
            py::dict d;
            d["max_abs"] = n.quant.max_abs;
            d["range"] = n.quant.range;
            d["step"] = n.quant.step;
            d["unsigned"] = n.quant.is_unsigned;
            d["lo"] = n.quant.lo;
            d["zero_point"] = n.quant.zero_point;
            d["min_value"] = n.quant.min_value;
            const std::vector<int32_t>& off = n.quant.requant.acc_offset;
            d["acc_offset"] = py::array_t<int32_t>(static_cast<py::ssize_t>(off.size()), off.data());
            const std::vector<int32_t>& border = n.quant.border_offset;
            d["border_offset"] = py::array_t<int32_t>(static_cast<py::ssize_t>(border.size()), border.data());
            d["hi"] = n.quant.hi;
            d["weight_range"] = n.quant.weight_range;
            py::list mult;
            for (const auto& fp : n.quant.requant.multiplier) mult.append(py::make_tuple(fp.multiplier, fp.shift));
            d["multiplier"] = mult;
            const std::vector<float>& f = n.quant.requant.factor;
            d["factor"] = py::array_t<float>(static_cast<py::ssize_t>(f.size()), f.data());
            d["single_shift"] = n.quant.requant.single_shift;
            d["dequantize_point"] = n.quant.requant.dequantize_point;
            d["kept_float"] = n.quant.kept_float;
            d["island"] = n.quant.island;
            d["lut"] = py::array_t<int32_t>(static_cast<py::ssize_t>(n.quant.lut.size()), n.quant.lut.data());
            d["lut_first_code"] = n.quant.lut_first_code;
            return d;
          }, R"pbdoc(
Quantization state (dict): ``max_abs`` (largest |x| in calibration; largest x for a Scaling node feeding only ReLUs), ``range`` (float value of
the largest code: max_abs clipped, then raised by max arbitration), ``step`` (float value
of one code), ``unsigned``, clamp ``lo``/``hi``, ``zero_point`` (the code of 0: a real value is
(code - zero_point) * step), ``min_value`` (Scaling nodes: min x in calibration), ``weight_range`` (affine nodes: max |W| per
channel), and for Scaling nodes their requantization record: ``factor`` (float32 array: real
factor per channel from accumulator codes to output codes, or to float values at a
dequantization point), ``multiplier`` (its encoding: list of (m, shift), factor m / 2^shift),
``single_shift``, ``dequantize_point`` and ``acc_offset`` (int32 array, empty or one per channel:
added to the accumulator before rescaling, for zero points; after a Conv/Gemm it is part of the
layer's bias); affine nodes: ``border_offset`` (int32 array, empty or (K, OH, OW) flattened: added
to the accumulator of a padded Conv whose input has a zero point); ``kept_float`` (runs in float after the output
dequantization); ``island`` (a float island: float op on dequantized inputs, output in units of
``step``, requantized by the Scaling node after it) with, for an element-wise island, ``lut``
(int32 array: its output for each input code from ``lut_first_code`` up; empty otherwise).
)pbdoc")
      .def("__repr__", [](const Node& n) {
        return "<Node " + n.label() + " " + shape_str(n.shape) + ">";
      });

  // The executor a Graph's forward() keeps (see executor_of); not for direct use.
  py::class_<Executor, std::shared_ptr<Executor>>(m, "_Executor");

  py::class_<Graph>(m, "Graph", py::dynamic_attr(), R"pbdoc(
A network: named nodes with one output each, in topological order.

Build one with ``aidge_ptq_lite.load_onnx``. ``forward`` runs the float network, or, after
``quantize_network``, the integer network. ``repr(g)`` prints a summary table.
)pbdoc")
      .def(py::init<>())
      .def("forward", &forward, py::arg("x"), py::arg("dequantize") = py::bool_(true), R"pbdoc(
Run the network on a batch.

Parameters
----------
x : numpy.ndarray
    float32 array of shape (N, *input_shape), e.g. (N, 1, 28, 28). Other float dtypes are converted.
    In a quantized graph a NaN input value becomes code 0 (the value 0) at every bit width, and
    +-Inf saturate to the extreme codes.
dequantize : bool
    For a quantized graph: True (default) returns float32 values in the float network's units;
    False returns the raw integer values of the output (as float32-free int arrays).

Returns
-------
numpy.ndarray, or a list of arrays for a graph with several outputs.

Raises
------
ShapeError
    If x does not have the input's shape (the message gives the expected shape).
ValueError
    If x is not a float array.
)pbdoc")
      .def("intermediate_outputs", [](const py::object& self, const py::handle& x, const std::vector<std::string>& names) {
            Tensor input = py_bridge::input_from_numpy(x);
            const std::shared_ptr<Executor> executor = executor_of(self);
            const Graph& g = executor->graph();
            std::map<std::string, Tensor> kept;
            for (const auto& n : names) kept[n] = Tensor();
            {
              py::gil_scoped_release release;
              executor->run(input, [&](const Node& n, const Tensor& t) {
                auto it = kept.find(n.name);
                if (it == kept.end()) return;
                const bool codes = g.is_quantized() && !n.traits().affine;  // affine: accumulators
                it->second = codes ? dequantize_output(n, t) : t.clone();
              });
            }
            py::dict d;
            for (const auto& [name, t] : kept) {
              if (t.empty()) throw GraphError("no node named '" + name + "' (or it produced nothing)");
              d[py::str(name)] = to_numpy(t);
            }
            return d;
          }, py::arg("x"), py::arg("names"), R"pbdoc(
Run the network on ``x`` and return the outputs of the named nodes as float32 arrays (dict).

For a quantized graph the codes are dequantized (code * step), so values compare directly with
the float network's. Used by ``layer_report``.

Raises
------
GraphError
    If a name is not a node of the graph.
)pbdoc")
      .def("clone", &Graph::clone, "Deep copy: the clone shares no tensor with this graph (copy.copy and copy.deepcopy call it).")
      // copy.copy / copy.deepcopy are what users try first: both are clone(). Pickling has no
      // format to write: say what to use instead of pybind11's bare "cannot pickle".
      .def("__copy__", &Graph::clone)
      .def("__deepcopy__", [](const Graph& g, const py::dict&) { return g.clone(); }, py::arg("memo"))
      .def("__reduce_ex__", [](const Graph&, const py::object&) -> py::object {
            throw py::type_error("a Graph cannot be pickled; copy it with clone() (or copy.deepcopy), "
                                 "save a quantized one with export_onnx, or load the ONNX file again");
          }, py::arg("protocol"))
      .def("summary", &Graph::summary, "Table of nodes: name, op, output shape, parameter count, inputs.")
      .def("__repr__", &Graph::summary)
      .def("__len__", [](const Graph& g) { return g.nodes().size(); })
      .def("nodes", [](const Graph& g) { return g.nodes(); }, "All nodes (copies), in topological order.")
      .def("node", [](const Graph& g, const std::string& name) { return g.node(name); },
           py::arg("name"), "The node with this name (a copy). Raises GraphError if there is none.")
      .def("consumers", &Graph::consumers, py::arg("name"), "Names of the nodes reading `name`.")
      .def_property_readonly("input_name", &Graph::input, "Name of the Input node.")
      .def_property_readonly("input_shape", &Graph::input_shape, "Input shape per sample.")
      .def_property_readonly("outputs", &Graph::outputs, "Names of the output nodes.")
      .def_property_readonly("param_count", &Graph::param_count, "Total number of constant values.")
      .def("get_param", [](const Graph& g, const std::string& name, size_t i) {
            const Node& n = g.node(name);
            if (i >= n.params.size()) throw ValueError(n.label() + " has no param " + std::to_string(i));
            return to_numpy(n.params[i]);
          }, py::arg("name"), py::arg("index"), "Copy of param `index` of node `name`.")
      .def("set_param", [](Graph& g, const std::string& name, size_t i, const py::array& value) {
            Node& n = g.node(name);
            if (i >= n.params.size()) throw ValueError(n.label() + " has no param " + std::to_string(i));
            Tensor t = from_numpy(value, "set_param");
            if (t.shape() != n.params[i].shape() || t.dtype() != n.params[i].dtype())
              throw ShapeError(n.label() + ": param " + std::to_string(i) + " is " + n.params[i].repr() +
                               ", got " + t.repr());
            n.params[i] = t;
            g.finalize();
          }, py::arg("name"), py::arg("index"), py::arg("value"),
          "Replace param `index` of node `name` by a copy of `value` (same shape and dtype).")
      .def("remove", &Graph::remove, py::arg("name"),
           "Remove a single-input node; its consumers read its input instead. Refused (GraphError) on a quantized graph; if the consumers do not accept the node's input (ShapeError), the graph is left unchanged.")
      // Construction, used by aidge_ptq_lite.onnx_io.
      .def("_add_node", [](Graph& g, const std::string& name, const std::string& op,
                           const std::vector<std::string>& inputs, const py::dict& attrs,
                           const std::vector<py::array>& params, const std::string& domain) {
            Node n;
            n.name = name;
            n.kind = op_kind(op, domain, name);
            n.inputs = inputs;
            for (auto [k, v] : attrs) {
              const std::string key = k.cast<std::string>();
              n.attrs[key] = attribute_from_python(n.label(), key, v);
            }
            for (const py::array& p : params) n.params.push_back(from_numpy(p, ("param of " + n.label()).c_str()));
            if (n.is(OpKind::Input)) n.shape = n.attr_ints("shape");
            g.add_node(std::move(n));
          }, py::arg("name"), py::arg("op"), py::arg("inputs"), py::arg("attrs"), py::arg("params"),
          py::arg("domain") = "")
      .def_property_readonly("is_quantized", &Graph::is_quantized, "True after quantize_network.")
      .def_property_readonly("nb_bits", [](const Graph& g) -> py::object {
            if (!g.is_quantized()) return py::none();
            return py::int_(g.quant_config().nb_bits);
          }, "Bit width of a quantized graph, else None.")
      .def_property_readonly("quantization", [](const Graph& g) -> py::object {
            if (!g.is_quantized()) return py::none();
            return options_dict(g.quant_config());
          }, "The options quantize_network was called with (dict, as QuantizeOptions.to_dict()), or None for a float graph.")
      .def("_assign", [](Graph& g, Graph& other) { g = other.clone(); })
      .def("_set_outputs", &Graph::set_outputs)
      .def("_finalize", &Graph::finalize);

  m.def("supported_ops", &supported_ops, "ONNX op types the importer and executors support, sorted.");
  m.def("op_registry", &op_registry_dict, R"pbdoc(
The op registry as the importer and exporter read it: dict ONNX op type -> dict of its traits
row (cpp/src/ops/registry.cpp): ``domain``, ``min_inputs``/``max_inputs`` (-1: any),
``param_inputs`` (ONNX input indices moved into params), ``attribute_inputs`` (index -> attribute
name), ``constant_operand``, ``activation_attributes`` (attributes in activation units),
``export_rule`` and the roles (``affine``, ``join``, ``needs_scaling``, ``keeps_codes``, ``rounds_codes``, ``view``,
``float_only``, ``elementwise``, ``integer_kernel``). Includes the library's own "Input" and "Scaling".
)pbdoc");
  m.def("simd_level", []() { return simd_level_name(active_simd_level()); },
        "The SIMD level the kernels use now: 'scalar', 'avx2', 'avx512' or 'amx'.");
  m.def("detected_simd_level", []() { return simd_level_name(detected_simd_level()); },
        "The best SIMD level this CPU supports.");
  m.def("set_simd_level", [](const std::string& level) { set_simd_level(parse_simd_level(level.c_str())); },
        py::arg("level"), R"pbdoc(
Force the SIMD level of every kernel ('scalar', 'avx2', 'avx512', 'amx'); the environment variable
APL_SIMD caps it at start-up. Raises ValueError for an unknown level or one this CPU lacks.
)pbdoc");

  bind_clipping(m);  // before bind_ptq, whose signatures name Histogram
  bind_kernels(m);
  bind_ptq(m);
  bind_cle_and_signs(m);
}
