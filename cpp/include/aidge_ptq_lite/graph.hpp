// The graph IR: named nodes with one output each, kept in topological order.
//
// A node's data inputs are the names of its producer nodes (or of the graph's Input node); its
// constant operands (Conv weights, BatchNorm statistics, ...) are owned by the node as `params`.
// Shapes are per sample: the batch dimension is dynamic and not stored.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aidge_ptq_lite/ops.hpp"
#include "aidge_ptq_lite/quant_plan.hpp"
#include "aidge_ptq_lite/quantize_options.hpp"
#include "aidge_ptq_lite/tensor.hpp"

namespace apl {

struct Attribute {
  enum class Kind { Int, Float, Ints, Floats, String } kind = Kind::Int;
  int64_t i = 0;
  float f = 0.f;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
};

class Node {
 public:
  std::string name;
  OpKind kind = OpKind::Input;      // an ONNX op, or Input, or Scaling (added by the PTQ)
  std::vector<std::string> inputs;  // producer node names (data inputs only)
  std::map<std::string, Attribute> attrs;
  std::vector<Tensor> params;       // op-specific constants, see ops.cpp
  Shape shape;                      // per-sample output shape, filled by Graph::infer_shapes
  NodeQuant quant;                  // the node's quantization plan (quant_plan.hpp)

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t attr_int(const std::string& key, int64_t def) const;
  float attr_float(const std::string& key, float def) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> def = {}) const;
  std::string attr_string(const std::string& key, const std::string& def) const;
  void set_attr(const std::string& key, int64_t v);
  void set_attr(const std::string& key, float v);
  void set_attr(const std::string& key, std::vector<int64_t> v);
  void set_attr(const std::string& key, std::string v);
  const OpTraits& traits() const { return op_traits(kind); }
  const char* op() const { return op_name(kind); }
  bool is(OpKind k) const { return kind == k; }
  // A conditional role of the op holds for this node, e.g. satisfies(&OpTraits::homogeneous).
  bool satisfies(NodePredicate OpTraits::*role) const {
    const NodePredicate p = traits().*role;
    return p != nullptr && p(*this);
  }
  // "Conv 'layer1.conv'" — used in every error message about this node.
  std::string label() const { return std::string(op()) + " '" + name + "'"; }
  int64_t param_count() const;
};

class Graph {
 public:
  Graph();
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  // ---- construction and edits (each edit keeps the topological order and re-infers shapes) ----
  // Append a node; its inputs must already exist (build in topological order) — or call
  // finalize() once after adding nodes in any order.
  Node& add_node(Node node);
  // Sorts topologically (GraphError naming nodes on a cycle or a missing input), checks outputs,
  // and infers shapes (ShapeError / UnsupportedError naming the node).
  void finalize();
  // Insert `node` after `producer`: node takes producer as its only input and every consumer of
  // producer (and the graph output, if producer was one) now reads node instead.
  Node& insert_after(const std::string& producer, Node node);
  // Remove a single-input node; its consumers read its input instead.
  void remove(const std::string& name);
  // Replace the node named `name` by `node` (which may have another name); consumers follow.
  Node& replace(const std::string& name, Node node);
  // Deep copy: no tensor is shared with this graph.
  Graph clone() const;

  // ---- queries ---------------------------------------------------------------------------------
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& mutable_nodes();  // invalidates the execution plan
  Node& node(const std::string& name);
  const Node& node(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> consumers(const std::string& name) const;
  const std::string& input() const { return input_; }  // the Input node
  const std::vector<std::string>& outputs() const { return outputs_; }
  bool is_output(const std::string& name) const;
  void set_outputs(std::vector<std::string> outputs);
  const Shape& input_shape() const;  // per sample
  int64_t param_count() const;
  std::string summary() const;
  std::string unique_name(const std::string& base) const;

  // ---- execution -------------------------------------------------------------------------------
  // x: (N, *input_shape) float32. Returns one tensor per graph output: float32, or for a
  // quantized graph with dequantize=false, the raw integers. Builds an Executor each call: to
  // run many batches, build one (executor.hpp) and keep it. The Python binding keeps one per
  // graph, rebuilt when version() changes.
  std::vector<Tensor> forward(const Tensor& x, bool dequantize = true) const;
  // Changes on every edit (and after invalidate(), to call after editing params in place):
  // an Executor built at one version runs that version's snapshot.
  uint64_t version() const { return version_; }
  void invalidate();
  // An immutable copy that shares the tensors' storage (cheap): what an Executor runs. Edits of
  // this graph do not reach it, as long as no tensor is edited in place (passes that do call
  // invalidate(); do not run them on a graph while it executes).
  std::shared_ptr<const Graph> snapshot() const;

  // ---- quantization state ------------------------------------------------------------------------
  // How the graph executes: plain float, or the quantized network (integer kernels, or the same
  // pipeline in float without rounding when no_quant), with the options it was quantized with.
  bool is_quantized() const { return quant_ != nullptr; }
  const QuantizeOptions& quant_config() const;
  void set_quantized(const QuantizeOptions& options);

 private:
  void reindex();
  void sort_topologically();
  void infer_shapes();
  std::vector<Node> nodes_;
  std::map<std::string, size_t> index_;
  std::string input_;
  std::vector<std::string> outputs_;
  std::shared_ptr<const QuantizeOptions> quant_;
  uint64_t version_ = 0;
  Graph(const Graph&) = default;  // shallow: see snapshot() and clone()
};

}  // namespace apl
