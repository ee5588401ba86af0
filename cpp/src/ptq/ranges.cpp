// compute_ranges: max |x| of every node output over the calibration set, one batch at a time.
#include <cmath>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

float max_abs(const float* x, int64_t n, bool* finite) {
  float m = 0.f;
  bool ok = true;
#pragma omp parallel for reduction(max : m) reduction(&& : ok) schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    ok = ok && a <= 3.4028235e38f;  // false for NaN and Inf
    m = a > m ? a : m;
  }
  if (finite) *finite = ok;
  return m;
}

RangeCollector::RangeCollector(const Graph& g, int64_t histogram_bins)
    : graph_(g), histogram_bins_(histogram_bins) {
  if (g.is_quantized()) throw ValueError("compute_ranges: the graph is already quantized");
  if (histogram_bins > 0)
    for (const Node& n : g.nodes())
      if (n.op == "Scaling") histograms_.emplace(n.name, Histogram(histogram_bins));
}

void RangeCollector::update(const Tensor& batch) {
  bool finite = true;
  max_abs(batch.data<float>(), batch.numel(), &finite);
  if (!finite) throw ValueError("calibration data contains NaN or Inf");
  RangeMap batch_ranges;
  graph_.executor()->run(batch, [&](const Node& n, const Tensor& out) {
    // Only the Input and the Scaling nodes set scales (a NaN anywhere reaches a Scaling node).
    if ((n.op != "Input" && n.op != "Scaling") || out.dtype() != DType::F32) return;
    bool ok = true;
    const float m = max_abs(out.data<float>(), out.numel(), &ok);
    if (!ok) throw ValueError("calibration produced NaN or Inf at " + n.label() +
                              " (non-finite weights?)");
    batch_ranges[n.name] = m;
    auto h = histograms_.find(n.name);
    if (h != histograms_.end()) h->second.add(out.data<float>(), out.numel());
  });
  for (const auto& [name, m] : batch_ranges) ranges_[name] = std::max(ranges_[name], m);
  samples_ += batch.dim(0);
}

}  // namespace apl
