// insert_scaling_nodes: a Scaling node after each node whose output is an accumulator (affine
// layers, average pools, joins) and after each float island. In the integer network each becomes
// a requantizer.
#include <set>

#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

void insert_scaling_nodes(Graph& g) {
  const QuantizabilityReport report = quantizability_report(g);
  const std::set<std::string> islands(report.islands.begin(), report.islands.end());
  const std::set<std::string> tail(report.kept_float.begin(), report.kept_float.end());
  std::vector<std::string> targets;
  for (Node& n : g.mutable_nodes()) {
    n.quant.island = islands.count(n.name) != 0;
    if (tail.count(n.name) || !(n.traits().needs_scaling || n.quant.island)) continue;
    // A layer with an empty output (Gemm with a (K, 0) B) runs in float, but has no values to
    // calibrate a Scaling node on: say so here, naming it, not the Scaling node after it.
    if (shape_numel(n.shape) == 0)
      throw ShapeError(n.label() + ": its output " + shape_str(n.shape) +
                       " is empty, so it cannot be quantized; remove the layer or give it outputs");
    const auto users = g.consumers(n.name);
    const bool has_one = users.size() == 1 && g.node(users[0]).is(OpKind::Scaling);
    if (!has_one) targets.push_back(n.name);
  }
  for (const std::string& name : targets) {
    Node s;
    s.name = g.unique_name(name + "_scaling");
    s.kind = OpKind::Scaling;
    const int64_t channels = g.node(name).shape.empty() ? 1 : g.node(name).shape[0];
    Tensor factor(DType::F32, {channels});
    for (int64_t c = 0; c < channels; ++c) factor.data<float>()[c] = 1.f;
    s.params = {factor};
    g.insert_after(name, std::move(s));
  }
}

}  // namespace apl
