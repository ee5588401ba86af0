// compute_ranges: the range of every Input and Scaling node over the calibration set, one batch
// at a time (see ptq.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

// The end of the ReLU / MaxPool chain that all consumers of `scaling` go through (see ptq.hpp).
// A network output is measured where it is.
static std::string consumed_at(const Graph& g, const std::string& scaling) {
  std::string at = scaling;
  while (!g.is_output(at)) {
    const auto users = g.consumers(at);
    if (users.empty()) break;
    const OpTraits& first = g.node(users.front()).traits();
    const bool same_pointwise_op = first.measured_through == MeasuredThrough::AnyUsers &&
        std::all_of(users.begin(), users.end(), [&](const std::string& u) { return g.node(u).kind == first.kind; });
    if (!same_pointwise_op && !(users.size() == 1 && first.measured_through != MeasuredThrough::No)) break;
    at = users.front();
  }
  return at;
}

RangeCollector::RangeCollector(const Graph& g, int64_t histogram_bins, const std::string& clipping_mode) {
  if (g.is_quantized()) throw ValueError("compute_ranges: the graph is already quantized");
  check_clipping_mode(clipping_mode);
  range_at_[g.input()] = g.input();
  for (const Node& n : g.nodes()) {
    if (!n.is(OpKind::Scaling)) continue;
    const std::string consumed = consumed_at(g, n.name);
    range_at_[consumed] = n.name;
    if (histogram_bins <= 0) continue;
    histograms_.emplace(n.name, Histogram(histogram_bins));
    histogram_at_[clipping_mode == "KL" ? n.name : consumed] = n.name;
  }
  for (const Node& n : g.nodes())
    if (n.traits().affine && !n.traits().transposed_weights) channel_sums_[n.inputs[0]];
  executor_ = std::make_shared<const Executor>(g);
}

std::map<std::string, std::vector<float>> RangeCollector::channel_means() const {
  std::map<std::string, std::vector<float>> means;
  for (const auto& [name, sums] : channel_sums_) {
    const auto count = channel_counts_.find(name);
    if (count == channel_counts_.end() || count->second == 0) continue;
    for (double s : sums) means[name].push_back(static_cast<float>(s / static_cast<double>(count->second)));
  }
  return means;
}

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void RangeCollector::update(const Tensor& batch) {
  RangeMap batch_ranges, batch_mins;
  const auto run_start = std::chrono::steady_clock::now();
  executor_->run(batch, [&](const Node& n, const Tensor& out) {
    const auto sums_start = std::chrono::steady_clock::now();
    const auto sums = channel_sums_.find(n.name);
    if (sums != channel_sums_.end() && out.dtype() == DType::F32 && out.ndim() >= 2) {
      const int64_t N = out.dim(0), C = out.dim(1), inner = out.numel() / std::max<int64_t>(N * C, 1);
      std::vector<double>& acc = sums->second;
      acc.resize(static_cast<size_t>(C), 0.0);
      const float* p = out.data<float>();
      for (int64_t b = 0; b < N; ++b)
        for (int64_t c = 0; c < C; ++c) {
          double s = 0.0;
          for (int64_t i = 0; i < inner; ++i) s += p[(b * C + c) * inner + i];
          acc[static_cast<size_t>(c)] += s;
        }
      channel_counts_[n.name] += N * inner;
    }
    const auto ranges_start = std::chrono::steady_clock::now();
    times_.channel_sums += std::chrono::duration<double>(ranges_start - sums_start).count();
    struct AddTime {
      double& total;
      std::chrono::steady_clock::time_point t0;
      ~AddTime() { total += seconds_since(t0); }
    } add_time{times_.ranges, ranges_start};
    // A NaN anywhere reaches a Scaling node, and the ReLU and MaxPool after it keep NaN.
    const auto range_of = range_at_.find(n.name);
    const auto histogram_of = histogram_at_.find(n.name);
    if ((range_of == range_at_.end() && histogram_of == histogram_at_.end()) || out.dtype() != DType::F32) return;
    // A histogram finds max |x| while binning: where both are taken, the values are read once.
    float m = NAN;
    try {
      m = histogram_of != histogram_at_.end() ? histograms_.at(histogram_of->second).add(out.data<float>(), out.numel())
                                              : kernels::max_abs_f32(out.data<float>(), out.numel());
    } catch (const ValueError&) {  // the histogram's NaN/Inf error, reworded below with the node
    }
    if (!std::isfinite(m))
      throw ValueError(n.is(OpKind::Input) ? std::string("calibration data contains NaN or Inf")
                                       : "calibration produced NaN or Inf at " + n.label() + " (non-finite weights?)");
    if (range_of == range_at_.end()) return;
    batch_ranges[range_of->second] = m;
    const float* p = out.data<float>();
    batch_mins[range_of->second] = out.numel() ? *std::min_element(p, p + out.numel()) : 0.f;
  });
  times_.run += seconds_since(run_start);
  for (const auto& [name, m] : batch_ranges) ranges_[name] = std::max(ranges_[name], m);
  for (const auto& [name, m] : batch_mins) {
    const auto it = mins_.find(name);
    mins_[name] = it == mins_.end() ? m : std::min(it->second, m);
  }
  samples_ += batch.dim(0);
}

}  // namespace apl
