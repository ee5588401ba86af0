// The executor: a plan built once from a snapshot of a graph (kernels prepared, weights packed,
// one SIMD level), run many times, from several threads at once if wanted (run() is const and
// the plan immutable). Each node becomes an OpKernel; tensors are freed after their last use.
#pragma once
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/simd.hpp"

namespace apl {

// What the nodes that alone read a kernel's output do, when the kernel may run them in its output
// pass, in this order: a factor per channel (a float Scaling node: y * factor[c]), the Add of a
// tensor of the output's shape computed before (a residual), a clamp to [lo, hi] (Relu, Clip).
struct FusedEpilogue {
  // Integer networks: the Scaling node that requantizes the kernel's accumulator comes first
  // (a Conv/Gemm's fused_scaling, or the one after a join's Add): the kernel runs it.
  bool after_own_scaling = false;
  const Tensor* factor = nullptr;  // one value or one per channel
  bool residual = false;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  bool clamps() const { return lo != -std::numeric_limits<float>::infinity() || hi != std::numeric_limits<float>::infinity(); }
};

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // inputs: one tensor per data input, batch first. Returns the output, batch first.
  virtual Tensor run(const std::vector<const Tensor*>& inputs) const = 0;
  // Output-pass fusion (Executor::plan_fusion): fuse_epilogue, at plan time, returns whether this
  // kernel can apply `e` in its output pass; run_fused then returns what the separate kernels
  // would give, bit for bit (the residual: the Add's other operand).
  virtual bool fuse_epilogue(const FusedEpilogue& /*e*/) { return false; }
  virtual Tensor run_fused(const std::vector<const Tensor*>& inputs, const Tensor* /*residual*/) const {
    return run(inputs);
  }
};

// Called with every node's output during a run (calibration hooks). Must be thread-compatible
// with the caller's use.
using NodeObserver = std::function<void(const Node& node, const Tensor& output)>;

// Builds the kernel of one node. The float executor uses make_float_kernel; the quantized
// network's nodes carry a "quant" state that makes make_kernel pick integer kernels.
std::unique_ptr<OpKernel> make_float_kernel(const Graph& graph, const Node& node);
std::unique_ptr<OpKernel> make_kernel(const Graph& graph, const Node& node);
// The node's float kernel run on its dequantized inputs (the float tail, and inside islands).
std::unique_ptr<OpKernel> make_dequantizing_kernel(const Graph& graph, const Node& node);
// A float island of the quantized network (NodeQuant::island; island_kernels.cpp), and the
// lookup table of an element-wise one: its accumulator for each code of its input, from the
// input's lowest code (cast_to_integer stores it in the plan).
std::unique_ptr<OpKernel> make_island_kernel(const Graph& graph, const Node& island);
std::vector<int32_t> island_lookup_table(const Graph& graph, const Node& island);

// Quantized graphs: the float input to codes (Input node's step), and a node's output codes (or
// a dequantization point's accumulator) back to float32.
Tensor quantize_input(const Node& input, const QuantizeOptions& options, const Tensor& x);
Tensor dequantize_output(const Node& node, const Tensor& t);

struct ExecutorOptions {
  // SIMD level of every kernel of the plan; default: active_simd_level() when it is built.
  std::optional<SimdLevel> simd_level;
  // The nodes whose outputs a run's observer reads (calibration). Given, runs with an observer
  // fuse the other nodes into their producers' output passes as runs without one do; absent, a
  // run with an observer runs every node's own kernel and hands it every output.
  std::optional<std::vector<std::string>> observed;
};

class Executor {
 public:
  explicit Executor(const Graph& graph, const ExecutorOptions& options = {});
  explicit Executor(std::shared_ptr<const Graph> snapshot, const ExecutorOptions& options = {});
  const Graph& graph() const { return *graph_; }  // the snapshot it runs
  SimdLevel simd_level() const { return level_; }
  // dequantize: convert integer outputs of a quantized graph back to float32.
  std::vector<Tensor> run(const Tensor& x, const NodeObserver& observer = nullptr,
                          bool dequantize = true) const;

 private:
  void plan_fusion(const Graph& graph, const std::optional<std::vector<std::string>>& observed);
  struct Step {
    const Node* node;
    std::unique_ptr<OpKernel> kernel;
    std::vector<size_t> inputs;  // step indices
    // Steps this kernel can run fused (run_fused: the last one's output), and the residual's.
    std::vector<size_t> fused_steps;
    std::optional<size_t> residual_step;
    bool fused_when_observed = false;  // no observed node among the producer and fused_steps
  };
  std::vector<Step> steps_;
  std::vector<size_t> last_use_;     // per step: the last step reading its output
  std::vector<size_t> output_steps_;
  std::shared_ptr<const Graph> graph_;
  SimdLevel level_;
  Shape input_shape_;
  std::string input_name_;
};

}  // namespace apl
