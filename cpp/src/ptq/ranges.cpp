// compute_ranges: the range of every Input and Scaling node over the calibration set, one batch
// at a time (see ptq.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

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

RangeCollector::RangeCollector(const Graph& g, int64_t histogram_bins, const std::string& clipping_mode,
                               bool channel_means) {
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
    if (channel_means && n.traits().affine && !n.traits().transposed_weights) channel_sums_[n.inputs[0]];
  // Only these outputs are read: the executor runs the other nodes fused into their producers'
  // output passes (a Conv with its Scaling node and Relu), as a plain forward does.
  ExecutorOptions options;
  options.observed.emplace();
  for (const auto* watched : {&range_at_, &histogram_at_})
    for (const auto& entry : *watched) options.observed->push_back(entry.first);
  for (const auto& entry : channel_sums_) options.observed->push_back(entry.first);
  executor_ = std::make_shared<const Executor>(g, options);
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

// out[r] = the sum of row r (`inner` values) of p, in double, added in index order: the exact
// operations of the plain loop `s = 0; for i: s += p[r * inner + i]` (channel_row_sums_reference),
// so the sums, the channel means and the corrected biases stay bit-identical. The plain loop is
// bound by the latency of its one chain of additions; here each step advances the chains of
// kChains rows at once (independent, so they overlap), and threads take blocks of rows.
constexpr int64_t kChains = 8;
constexpr int64_t kParallelValues = int64_t(1) << 18;

// Rows [r0, r0 + nr) of p (nr <= kChains): their sums into out[r0..].
void sum_rows(const float* p, int64_t r0, int64_t nr, int64_t inner, double* out) {
  if (nr == kChains) {
    double s[kChains] = {};
    const float* row = p + r0 * inner;
    for (int64_t i = 0; i < inner; ++i) {
#pragma GCC unroll 8
      for (int64_t k = 0; k < kChains; ++k) s[k] += row[k * inner + i];
    }
    for (int64_t k = 0; k < kChains; ++k) out[r0 + k] = s[k];
  } else {
    for (int64_t r = r0; r < r0 + nr; ++r) {
      double s = 0.0;
      for (int64_t i = 0; i < inner; ++i) s += p[r * inner + i];
      out[r] = s;
    }
  }
}

uint32_t float_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// The row sums, and when max_abs is given, max |x| and the min of the whole tensor as
// kernels::max_abs_min_f32 gives them, read in the same pass: each block of rows (whole groups of
// kChains rows, about kBlockValues values) is summed, then scanned for its max and min while it
// is still in cache.
constexpr int64_t kBlockValues = int64_t(1) << 16;

void channel_row_sums(const float* p, int64_t rows, int64_t inner, double* out, float* max_abs = nullptr,
                      float* min = nullptr) {
  const int64_t group_values = std::max<int64_t>(kChains * inner, 1);
  const int64_t rows_per_block = kChains * std::max<int64_t>(1, kBlockValues / group_values);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  uint32_t max_bits = 0;
  float lo = std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static) reduction(max : max_bits) reduction(min : lo) \
    if (rows * inner >= kParallelValues && blocks > 1)
  for (int64_t bi = 0; bi < blocks; ++bi) {
    const int64_t first = bi * rows_per_block, last = std::min(rows, first + rows_per_block);
    for (int64_t r0 = first; r0 < last; r0 += kChains) sum_rows(p, r0, std::min(kChains, last - r0), inner, out);
    if (max_abs && (last - first) * inner > 0) {
      float block_min;
      const float m = kernels::max_abs_min_f32(p + first * inner, (last - first) * inner, &block_min);
      max_bits = std::max(max_bits, float_bits(m));
      lo = std::min(lo, block_min);
    }
  }
  if (!max_abs) return;
  const int64_t n = rows * inner;
  if (n == 0) {
    *max_abs = 0.f;
    *min = 0.f;
    return;
  }
  // As in max_abs_min_f32: a zero minimum is the first zero of the whole tensor, with its sign.
  if (lo == 0.f) lo = *std::find(p, p + n, 0.f);
  std::memcpy(max_abs, &max_bits, sizeof max_bits);
  *min = lo;
}

}  // namespace

void channel_row_sums_reference(const float* p, int64_t rows, int64_t inner, double* out) {
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t i = 0; i < inner; ++i) s += p[r * inner + i];
    out[r] = s;
  }
}

void RangeCollector::update(const Tensor& batch) {
  RangeMap batch_ranges, batch_mins;
  const auto run_start = std::chrono::steady_clock::now();
  executor_->run(batch, [&](const Node& n, const Tensor& out) {
    const auto sums_start = std::chrono::steady_clock::now();
    bool fused_range = false;
    float fused_max = NAN, fused_min = 0.f;
    const auto sums = channel_sums_.find(n.name);
    if (sums != channel_sums_.end() && out.dtype() == DType::F32 && out.ndim() >= 2) {
      const int64_t N = out.dim(0), C = out.dim(1), inner = out.numel() / std::max<int64_t>(N * C, 1);
      std::vector<double>& acc = sums->second;
      acc.resize(static_cast<size_t>(C), 0.0);
      row_sums_.resize(static_cast<size_t>(N * C));
      // A tensor whose range is measured without a histogram: its max and min in the same pass.
      fused_range = range_at_.count(n.name) && !histogram_at_.count(n.name) && N * C * inner == out.numel();
      channel_row_sums(out.data<float>(), N * C, inner, row_sums_.data(), fused_range ? &fused_max : nullptr,
                       &fused_min);
      // Added into the channels' totals in the order of the plain loop: sample by sample.
      for (int64_t b = 0; b < N; ++b)
        for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += row_sums_[static_cast<size_t>(b * C + c)];
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
    // A histogram finds max |x| while binning: where both are taken, the values are read once
    // (and once more for the min where a range is measured too, but for the first batch, whose
    // max is read before binning). Without a histogram, max |x| and the min take one pass.
    float m = NAN, low = 0.f;
    const float* p = out.data<float>();
    try {
      if (histogram_of != histogram_at_.end()) {
        m = histograms_.at(histogram_of->second).add(p, out.numel(), range_of != range_at_.end() ? &low : nullptr);
      } else if (fused_range) {
        m = fused_max, low = fused_min;
      } else {
        m = kernels::max_abs_min_f32(p, out.numel(), &low);
      }
    } catch (const ValueError&) {  // the histogram's NaN/Inf error, reworded below with the node
    }
    if (!std::isfinite(m))
      throw ValueError(n.is(OpKind::Input) ? std::string("calibration data contains NaN or Inf")
                                       : "calibration produced NaN or Inf at " + n.label() + " (non-finite weights?)");
    if (range_of == range_at_.end()) return;
    batch_ranges[range_of->second] = m;
    batch_mins[range_of->second] = low;  // std::min_element's, 0 when empty (max_abs_min_f32)
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
