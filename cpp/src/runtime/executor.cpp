#include "aidge_ptq_lite/executor.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "../kernels/thread_placement.hpp"
#include "kernel_util.hpp"

namespace apl {

namespace {

// A NaN or Inf constant would make every output silently wrong: refuse it by name.
void check_finite_params(const Node& n) {
  for (size_t i = 0; i < n.params.size(); ++i) {
    const Tensor& p = n.params[i];
    if (p.dtype() != DType::F32) continue;
    for (int64_t k = 0; k < p.numel(); ++k)
      if (!std::isfinite(p.data<float>()[k]))
        throw ValueError(n.label() + ": parameter " + std::to_string(i) + " holds NaN or Inf");
  }
}

// APL_PROFILE=1: each run prints its per-node wall time and a per-op total to stderr (opt-in,
// read once; off, a run takes no clock readings).
bool profiling_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("APL_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// fused[i]: the node ran inside another's kernel (in its producer's output pass).
void print_profile(const std::vector<const Node*>& nodes, const std::vector<double>& ms,
                   const std::vector<bool>& fused, int64_t batch) {
  std::map<std::string, std::pair<double, int>> per_op;
  double total = 0;
  std::fprintf(stderr, "APL_PROFILE batch %lld\n%-44s %10s\n", static_cast<long long>(batch), "node", "ms");
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (fused[i])
      std::fprintf(stderr, "%-44s %10s\n", nodes[i]->label().c_str(), "fused");
    else
      std::fprintf(stderr, "%-44s %10.3f\n", nodes[i]->label().c_str(), ms[i]);
    auto& [t, count] = per_op[nodes[i]->op()];
    t += ms[i];
    ++count;
    total += ms[i];
  }
  std::fprintf(stderr, "%-20s %6s %10s %6s\n", "op", "nodes", "ms", "%");
  for (const auto& [op, tc] : per_op)
    std::fprintf(stderr, "%-20s %6d %10.3f %6.1f\n", op.c_str(), tc.second, tc.first,
                 total > 0 ? 100 * tc.first / total : 0.0);
  std::fprintf(stderr, "%-20s %6zu %10.3f\n", "total", nodes.size(), total);
}

}  // namespace

// Output-pass fusion: what alone reads a node's output, in this order, may run in the node's
// kernel (fuse_epilogue): a float Scaling node; an Add whose other operand, of the same shape,
// is computed before the node; a clamp (Relu, Clip). In an integer network the first stage is the
// Scaling node that requantizes the node's accumulator: a Conv/Gemm runs it anyway
// (fused_scaling), a join's Add may take it. The kernel takes the longest prefix it can. Runs
// without an observer use every fusion; runs with one, those that hide no observed node (when
// the observed nodes are given).
void Executor::plan_fusion(const Graph& graph, const std::optional<std::vector<std::string>>& observed) {
  static const bool off = [] {  // APL_FUSION=0: every node runs its own kernel (to compare)
    const char* v = std::getenv("APL_FUSION");
    return v && std::string(v) == "0";
  }();
  if (off) return;
  std::map<std::string, size_t> step_of;
  for (size_t i = 0; i < steps_.size(); ++i) step_of[steps_[i].node->name] = i;
  const std::set<std::string> watched = observed ? std::set<std::string>(observed->begin(), observed->end())
                                                 : std::set<std::string>();
  // The step that alone reads step i's output; 0 (the Input step, which reads nothing): none.
  auto sole_reader = [&](size_t i) -> size_t {
    const std::string& name = steps_[i].node->name;
    const auto readers = graph.consumers(name);
    return graph.is_output(name) || readers.size() != 1 ? 0 : step_of.at(readers[0]);
  };
  std::vector<bool> fused(steps_.size(), false);
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& producer = steps_[i];
    if (!producer.kernel || fused[i]) continue;
    // The candidate stages after the producer, in FusedEpilogue's order; the kernel takes the
    // longest prefix it can run.
    enum class Stage { OwnScaling, Factor, Residual, Clamp };
    std::vector<std::pair<Stage, size_t>> stages;
    size_t last = i, residual = 0;
    if (const size_t scaling = sole_reader(last); scaling && steps_[scaling].node->is(OpKind::Scaling)) {
      // Quantized: the Conv/Gemm's own Scaling (fused_scaling) or a join's; float: a factor.
      stages.emplace_back(graph.is_quantized() ? Stage::OwnScaling : Stage::Factor, scaling);
      last = scaling;
    }
    if (const size_t add = sole_reader(last); add && steps_[add].node->traits().adds_operands &&
                                              steps_[add].inputs.size() == 2) {
      const std::vector<size_t>& operands = steps_[add].inputs;
      residual = operands[0] == last ? operands[1] : operands[0];
      const Shape& shape = producer.node->shape;
      if (residual < i && steps_[residual].node->shape == shape && steps_[add].node->shape == shape) {
        stages.emplace_back(Stage::Residual, add);
        last = add;
      }
    }
    if (const size_t clamp = sole_reader(last); clamp && steps_[clamp].node->traits().clamp_bounds)
      stages.emplace_back(Stage::Clamp, clamp);
    for (size_t taken = stages.size(); taken > 0; --taken) {
      FusedEpilogue e;
      std::vector<size_t> chain;
      for (size_t k = 0; k < taken; ++k) {
        const Node& n = *steps_[stages[k].second].node;
        switch (stages[k].first) {
          case Stage::OwnScaling: e.after_own_scaling = true; break;
          case Stage::Factor: e.factor = &n.params.at(0); break;
          case Stage::Residual: e.residual = true; break;
          case Stage::Clamp: std::tie(e.lo, e.hi) = n.traits().clamp_bounds(n); break;
        }
        chain.push_back(stages[k].second);
      }
      // An integer Conv/Gemm runs its own Scaling anyway: alone, it is no fusion.
      if (taken == 1 && e.after_own_scaling && fused_scaling(graph, *producer.node)) break;
      if (!producer.kernel->fuse_epilogue(e)) continue;
      producer.fused_steps = chain;
      if (e.residual) producer.residual_step = residual;
      producer.fused_when_observed = observed && !watched.count(producer.node->name);
      for (size_t f = 0; f + 1 < chain.size(); ++f)
        if (watched.count(steps_[chain[f]].node->name)) producer.fused_when_observed = false;
      for (size_t f : chain) fused[f] = true;
      break;
    }
  }
}

// Declared with the Graph (graph.hpp); defined here so that the IR does not depend on the runtime.
std::vector<Tensor> Graph::forward(const Tensor& x, bool dequantize) const {
  return Executor(*this).run(x, nullptr, dequantize);
}

Executor::Executor(const Graph& graph, const ExecutorOptions& options) : Executor(graph.snapshot(), options) {}

Executor::Executor(std::shared_ptr<const Graph> snapshot, const ExecutorOptions& options)
    : graph_(std::move(snapshot)), level_(options.simd_level.value_or(active_simd_level())) {
  const Graph& graph = *graph_;
  const SimdLevelScope scope(level_);  // kernels pack their weights for this level
  std::map<std::string, size_t> step_of;
  for (const Node& n : graph.nodes()) {
    check_finite_params(n);
    Step step;
    step.node = &n;
    for (const std::string& in : n.inputs) step.inputs.push_back(step_of.at(in));
    if (!n.is(OpKind::Input)) step.kernel = make_kernel(graph, n);
    step_of[n.name] = steps_.size();
    steps_.push_back(std::move(step));
  }
  plan_fusion(graph, options.observed);
  last_use_.assign(steps_.size(), 0);
  for (size_t i = 0; i < steps_.size(); ++i)
    for (size_t in : steps_[i].inputs) last_use_[in] = i;
  for (const std::string& o : graph.outputs()) {
    output_steps_.push_back(step_of.at(o));
    last_use_[step_of.at(o)] = steps_.size();  // outputs live to the end
  }
  input_name_ = graph.input();
  input_shape_ = graph.input_shape();
}

std::vector<Tensor> Executor::run(const Tensor& x, const NodeObserver& observer, bool dequantize) const {
  Shape expected{-1};
  expected.insert(expected.end(), input_shape_.begin(), input_shape_.end());
  bool ok = x.ndim() == static_cast<int>(expected.size()) && x.dtype() == DType::F32;
  for (size_t d = 1; ok && d < expected.size(); ++d) ok = x.shape()[d] == expected[d];
  if (!ok)
    throw ShapeError("input '" + input_name_ + "' expects float32 of shape (N, " +
                     shape_str(input_shape_).substr(1) + ", got " + dtype_name(x.dtype()) +
                     shape_str(x.shape()));
  if (x.dim(0) == 0) throw ShapeError("input '" + input_name_ + "' has an empty batch (N = 0)");
  const SimdLevelScope scope(level_);
  const kernels::ThreadPlacement placement;

  std::vector<Tensor> values(steps_.size());
  std::vector<bool> done(steps_.size(), false);  // steps run fused with their producer
  std::vector<const Tensor*> args;
  const bool profile = profiling_enabled();
  std::vector<double> step_ms(profile ? steps_.size() : 0);
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    const auto start = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    if (!s.kernel) {
      values[i] = graph_->is_quantized() ? quantize_input(*s.node, graph_->quant_config(), x) : x;
    } else if (!done[i]) {
      args.clear();
      for (size_t in : s.inputs) args.push_back(&values[in]);
      if (!s.fused_steps.empty() && (!observer || s.fused_when_observed)) {
        values[s.fused_steps.back()] =
            s.kernel->run_fused(args, s.residual_step ? &values[*s.residual_step] : nullptr);
        for (size_t f : s.fused_steps) done[f] = true;
      } else {
        values[i] = s.kernel->run(args);
      }
    }
    if (profile)
      step_ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (observer && !values[i].empty()) observer(*s.node, values[i]);  // empty: fused away
    for (size_t in : s.inputs)
      if (last_use_[in] == i) values[in] = Tensor();
  }
  if (profile) {
    std::vector<const Node*> nodes;
    for (const Step& s : steps_) nodes.push_back(s.node);
    print_profile(nodes, step_ms, done, x.dim(0));
  }
  std::vector<Tensor> outs;
  for (size_t o : output_steps_) {
    const bool convert = dequantize && graph_->is_quantized();
    outs.push_back(convert ? dequantize_output(*steps_[o].node, values[o]) : values[o]);
  }
  return outs;
}

}  // namespace apl
