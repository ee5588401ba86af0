// compute_ranges: the range of every Input and Scaling node over the calibration set, one batch
// at a time (see ptq.hpp).
#include <algorithm>
#include <cmath>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

RangeCollector::RangeCollector(const Graph& g, int64_t histogram_bins) : graph_(g) {
  if (g.is_quantized()) throw ValueError("compute_ranges: the graph is already quantized");
  measures_[g.input()] = g.input();
  for (const Node& n : g.nodes()) {
    if (n.op != "Scaling") continue;
    if (histogram_bins > 0) histograms_.emplace(n.name, Histogram(histogram_bins));
    const auto users = g.consumers(n.name);
    const bool only_relus = !g.is_output(n.name) && !users.empty() &&
                            std::all_of(users.begin(), users.end(), [&](const std::string& u) { return g.node(u).op == "Relu"; });
    measures_[only_relus ? users.front() : n.name] = n.name;
  }
}

void RangeCollector::update(const Tensor& batch) {
  RangeMap batch_ranges;
  graph_.executor()->run(batch, [&](const Node& n, const Tensor& out) {
    // Only the Input and the Scaling nodes set scales. A NaN anywhere reaches a Scaling node, and
    // through the ReLU that measures it (ReLU keeps NaN).
    const auto h = histograms_.find(n.name);
    const auto measured = measures_.find(n.name);
    if ((h == histograms_.end() && measured == measures_.end()) || out.dtype() != DType::F32) return;
    // A histogram finds max |x| while binning: the values are then read once.
    float m = NAN;
    try {
      m = h != histograms_.end() ? h->second.add(out.data<float>(), out.numel())
                                 : kernels::max_abs_f32(out.data<float>(), out.numel());
    } catch (const ValueError&) {  // the histogram's NaN/Inf error, reworded below with the node
    }
    if (!std::isfinite(m))
      throw ValueError(n.op == "Input" ? std::string("calibration data contains NaN or Inf")
                                       : "calibration produced NaN or Inf at " + n.label() + " (non-finite weights?)");
    if (measured != measures_.end()) batch_ranges[measured->second] = m;
  });
  for (const auto& [name, m] : batch_ranges) ranges_[name] = std::max(ranges_[name], m);
  samples_ += batch.dim(0);
}

}  // namespace apl
