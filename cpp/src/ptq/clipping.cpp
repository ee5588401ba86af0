// Clipping searches over a histogram of |x| (histogram.hpp): the clip value that minimises the
// expected quantization error (MSE / AA), and TensorRT's entropy calibration (KL).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

namespace {

void check_not_empty(const Histogram& h, const char* what) {
  if (h.total() == 0) throw ValueError(std::string(what) + ": the histogram is empty");
}

int64_t last_nonzero_bin(const std::vector<uint64_t>& counts) {
  int64_t b = static_cast<int64_t>(counts.size()) - 1;
  while (b > 0 && counts[b] == 0) --b;
  return b;
}

// ---- Expected error (MSE / AA) -------------------------------------------------------------------
//
// The density of |x| is taken as uniform inside each bin, and lengths are in bin widths. For a
// clip c and `levels` steps of s = c / levels, q(t) = s * min(round(t / s), levels), and
//   E(x) = integral over [0, x] of |t - q(t)|^P dt = 2 m A(s / 2) + A(x - m s),
//   m = min(round(x / s), levels),  A(a) = integral over [0, a] of |u|^P du = a |a|^(P-1) / (P+1),
// since every whole step contributes 2 A(s/2) and beyond c the error is t - c. A bin [b, b+1)
// holding n values then contributes n (E(b+1) - E(b)): the rounding error below c and the
// clipping error above it, exact for the piecewise-uniform density.
template <int P>
double power_integral(double a) {
  if constexpr (P == 1) return a * std::fabs(a) / 2;
  else return a * a * a * (1.0 / 3);  // a multiply: a division would bound the search loop
}

// Zeros are quantized exactly, whatever the clip: the excess of bin 0 over bin 1 is taken as a
// point mass at zero (ReLU outputs) and left out, instead of being spread over bin 0 (the KL
// search applies the same rule).
std::vector<double> counts_without_point_mass_at_zero(const std::vector<uint64_t>& counts) {
  std::vector<double> out(counts.begin(), counts.end());
  out[0] = std::min(out[0], out[1]);
  return out;
}

template <int P>
class ExpectedError {
 public:
  ExpectedError(const std::vector<uint64_t>& counts, int64_t levels)
      : counts_(counts_without_point_mass_at_zero(counts)), levels_(static_cast<double>(levels)),
        count_from_(counts.size() + 1, 0.0), centre_sum_from_(counts.size() + 1, 0.0),
        centre_square_sum_from_(counts.size() + 1, 0.0) {
    for (int64_t b = static_cast<int64_t>(counts_.size()) - 1; b >= 0; --b) {
      const double n = counts_[b], centre = b + 0.5;
      count_from_[b] = count_from_[b + 1] + n;
      centre_sum_from_[b] = centre_sum_from_[b + 1] + n * centre;
      centre_square_sum_from_[b] = centre_square_sum_from_[b + 1] + n * centre * centre;
    }
  }

  // Sum over the values of |x - q(x)|^P for the clip c (in bin widths, c > 0).
  double operator()(double clip) const {
    const double step = clip / levels_, inv_step = 1 / step, whole_step = 2 * power_integral<P>(step / 2);
    auto primitive = [&](double x) {
      const double m = std::min(static_cast<double>(static_cast<int64_t>(x * inv_step + 0.5)), levels_);
      return m * whole_step + power_integral<P>(x - m * step);
    };
    const auto bins = static_cast<int64_t>(counts_.size());
    const int64_t below = std::min(static_cast<int64_t>(clip), bins);  // bins [0, below) lie under c
    double error = 0, at_lower_edge = 0;
    for (int64_t b = 0; b < below; ++b) {
      const double at_upper_edge = primitive(b + 1.0);
      error += counts_[b] * (at_upper_edge - at_lower_edge);
      at_lower_edge = at_upper_edge;
    }
    if (below == bins) return error;
    // The bin holding c, then the bins wholly above it (clipping error from the suffix sums).
    error += counts_[below] * (primitive(below + 1.0) - at_lower_edge);
    const int64_t above = below + 1;
    const double n = count_from_[above], sum = centre_sum_from_[above], square_sum = centre_square_sum_from_[above];
    if constexpr (P == 1)
      return error + sum - clip * n;  // bin mean of (t - c) is centre - c
    else
      return error + square_sum - 2 * clip * sum + clip * clip * n + n / 12;  // (centre - c)^2 + 1/12
  }

 private:
  std::vector<double> counts_;
  double levels_;
  // Over the bins from b on: number of values, sum of bin centres, sum of squared centres.
  std::vector<double> count_from_, centre_sum_from_, centre_square_sum_from_;
};

// Candidates: every kCoarseStride-th bin edge up to the end of the data, then every edge around
// the best one, then steps of 1/kFineSteps bin around the best edge. The error integrates the
// histogram, so it varies smoothly over a few bins and the coarse pass lands next to its minimum.
template <int P>
double best_clip_in_bins(const Histogram& h, int64_t levels) {
  constexpr int64_t kCoarseStride = 4, kFineSteps = 32;
  const ExpectedError<P> error(h.counts(), levels);
  const double end_of_data = static_cast<double>(last_nonzero_bin(h.counts()) + 1);
  double best_clip = 1, best_error = error(best_clip);
  auto try_clips = [&](double first, double last, double spacing) {
    for (double clip = first; clip <= last; clip += spacing)
      if (const double e = error(clip); e < best_error) best_error = e, best_clip = clip;
  };
  try_clips(1 + kCoarseStride, end_of_data, kCoarseStride);
  try_clips(std::max(1.0, best_clip - kCoarseStride + 1), std::min(end_of_data, best_clip + kCoarseStride - 1), 1);
  try_clips(best_clip - 1 + 1.0 / kFineSteps, best_clip + 1 - 1.0 / kFineSteps, 1.0 / kFineSteps);
  return best_clip;
}

// ---- KL divergence (TensorRT entropy calibration) ----------------------------------------------

double x_log_x(double x) { return x > 0 ? x * std::log(x) : 0.0; }

}  // namespace

float compute_me_clipping(const Histogram& h, int nb_bits, int exponent, bool is_unsigned) {
  const QuantSpec spec(nb_bits);
  if (exponent != 1 && exponent != 2)
    throw ValueError("compute_me_clipping: exponent must be 1 (AA) or 2 (MSE), got " + std::to_string(exponent));
  check_not_empty(h, "compute_me_clipping");
  const int64_t levels = spec.code_max(is_unsigned);  // steps above zero
  const double clip = exponent == 1 ? best_clip_in_bins<1>(h, levels) : best_clip_in_bins<2>(h, levels);
  return static_cast<float>(clip * h.bin_width());
}

// For each candidate i (bins kept, from `levels` to the end of the data), with n_j the counts and
// N their total:
//   P = n_0 .. n_{i-2}, n_{i-1} + (values in bins >= i)       (outliers folded into the last bin)
//   Q = n_0 .. n_{i-1} merged into `levels` groups of i / levels bins (the last group takes the
//       rest), each group's count spread evenly over its bins where P is not zero,
//   KL(P/N || Q/sum Q) = (sum P log P - sum P log Q) / N + log(sum Q / N).
// Per group, P log Q sums to (P's group total) * log(group count / nonzero bins), so one candidate
// costs O(levels) with prefix sums. Smoothing as in MXNet / onnxruntime (eps = 1e-4 moved to the
// empty bins) only matters where Q is empty and P is not (the folded outliers): Q is eps there.
// Elsewhere its effect is O(eps / count) and is left out.
float compute_kl_clipping(const Histogram& h, int nb_bits, bool is_unsigned) {
  const QuantSpec spec(nb_bits);
  check_not_empty(h, "compute_kl_clipping");
  const int64_t levels = int64_t(spec.code_max(is_unsigned)) + 1;  // TensorRT's bins: 2^(n-1) or 2^n
  // Exact zeros (ReLU outputs) are quantized exactly whatever the clip; left in, their spike
  // drags the divergence towards tiny clips. Same point-mass rule as the MSE search.
  std::vector<uint64_t> n = h.counts();
  n[0] = std::min(n[0], n[1]);
  const int64_t bins = h.bins();
  if (bins < levels) return h.range();

  constexpr double kSmoothing = 1e-4;
  std::vector<uint64_t> count_before(bins + 1, 0), nonzero_before(bins + 1, 0);
  std::vector<double> x_log_x_before(bins + 1, 0.0);
  for (int64_t b = 0; b < bins; ++b) {
    count_before[b + 1] = count_before[b] + n[b];
    nonzero_before[b + 1] = nonzero_before[b] + (n[b] != 0);
    x_log_x_before[b + 1] = x_log_x_before[b] + x_log_x(static_cast<double>(n[b]));
  }
  const uint64_t total = count_before[bins];

  // Keeping bins past the last non-empty one only coarsens Q: the candidates stop there.
  const int64_t last_candidate = std::max(levels, last_nonzero_bin(n) + 1);
  double best_divergence = std::numeric_limits<double>::infinity();
  int64_t best_kept = last_candidate;
  for (int64_t kept = levels; kept <= last_candidate; ++kept) {
    if (count_before[kept] == 0) continue;  // Q would be empty
    const uint64_t outliers = total - count_before[kept];
    const uint64_t last_p = n[kept - 1] + outliers;
    const double p_log_p = x_log_x_before[kept - 1] + x_log_x(static_cast<double>(last_p));
    const int64_t group = kept / levels;
    double p_log_q = 0;
    for (int64_t g = 0; g < levels; ++g) {
      const int64_t begin = g * group, end = g == levels - 1 ? kept : begin + group;
      const uint64_t q_total = count_before[end] - count_before[begin];
      uint64_t p_total = q_total, p_nonzero = nonzero_before[end] - nonzero_before[begin];
      if (end == kept && outliers > 0) {
        p_total += outliers;
        p_nonzero += n[kept - 1] == 0;
      }
      if (p_total == 0) continue;
      const double log_q = q_total > 0 ? std::log(static_cast<double>(q_total) / static_cast<double>(p_nonzero))
                                       : std::log(kSmoothing);
      p_log_q += static_cast<double>(p_total) * log_q;
    }
    const double divergence = (p_log_p - p_log_q) / static_cast<double>(total) +
                              std::log(static_cast<double>(count_before[kept]) / static_cast<double>(total));
    if (divergence < best_divergence) best_divergence = divergence, best_kept = kept;
  }
  return std::min((static_cast<float>(best_kept) + 0.5f) * h.bin_width(), h.range());
}

}  // namespace apl
