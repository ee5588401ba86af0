// Histogram of |x| with a power-of-two range that grows by folding (see histogram.hpp). Because
// range and bin count are powers of two, the bin width is one too: |x| * (bins / range) is exact,
// so bin edges are exact, and folding 2^k bins into one gives exactly the bins that binning with
// the larger range would give. That is what makes streaming and merging exact.
#include "aidge_ptq_lite/histogram.hpp"

#include <cmath>
#include <numeric>
#include <string>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

namespace {

constexpr int64_t kMaxBins = int64_t(1) << 24;  // bins - 1 is exact in float32
const float kMinRange = std::ldexp(1.f, -64);    // all-zero data still gets a positive range
const float kMaxRange = std::ldexp(1.f, 127);    // the largest power of two in float32

// The smallest power of two strictly above max_abs, within [kMinRange, kMaxRange].
float range_above(float max_abs) {
  if (max_abs < kMinRange) return kMinRange;
  if (max_abs >= kMaxRange) return kMaxRange;
  int exponent;
  std::frexp(max_abs, &exponent);  // max_abs = f * 2^exponent, f in [0.5, 1)
  return std::ldexp(1.f, exponent);
}

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

Histogram::Histogram(int64_t bins) {
  if (bins < 2 || bins > kMaxBins || !is_power_of_two(bins))
    throw ValueError("Histogram: bins must be a power of two in [2, 2^24], got " + std::to_string(bins));
  counts_.assign(bins, 0);
}

float Histogram::add(const float* x, int64_t n) { return add(x, n, nullptr); }

float Histogram::add(const float* x, int64_t n, float* min) {
  if (n <= 0) {
    if (min) *min = 0.f;
    return 0.f;
  }
  // Binning with the current range also finds max |x|, so a batch is read once unless it needs
  // a larger range (and the first batch, whose range is not known before its max: that read
  // also finds the min when asked).
  std::vector<uint64_t> batch(counts_.size(), 0);
  bool min_found = false;
  float largest;
  if (range_ > 0) {
    largest = kernels::histogram_abs_f32(x, n, static_cast<float>(bins()) / range_, bins(), batch.data());
  } else if (min) {
    largest = kernels::max_abs_min_f32(x, n, min);
    min_found = true;
  } else {
    largest = kernels::max_abs_f32(x, n);
  }
  if (!std::isfinite(largest)) throw ValueError("Histogram.add: the data contains NaN or Inf");
  if (min && !min_found) kernels::max_abs_min_f32(x, n, min);
  if (largest >= range_ && range_ < kMaxRange) {
    grow_to(range_above(largest));
    std::fill(batch.begin(), batch.end(), 0);
    kernels::histogram_abs_f32(x, n, static_cast<float>(bins()) / range_, bins(), batch.data());
  }
  for (size_t b = 0; b < counts_.size(); ++b) counts_[b] += batch[b];
  return largest;
}

void Histogram::grow_to(float new_range) {
  if (new_range <= range_) return;
  if (range_ > 0) {
    const int fold_bits = std::ilogb(new_range) - std::ilogb(range_);  // fold 2^fold_bits bins into one
    const int shift = std::min<int>(fold_bits, std::ilogb(static_cast<float>(bins())));
    // In place: bin b >> shift <= b was already visited when b is.
    for (size_t b = 1; b < counts_.size(); ++b) {
      const uint64_t c = counts_[b];
      counts_[b] = 0;
      counts_[b >> shift] += c;
    }
  }
  range_ = new_range;
}

void Histogram::merge(const Histogram& other) {
  if (other.bins() != bins())
    throw ValueError("Histogram.merge: bin counts differ (" + std::to_string(bins()) + " and " +
                     std::to_string(other.bins()) + ")");
  Histogram folded = other;
  folded.grow_to(range_);
  grow_to(other.range_);
  for (size_t b = 0; b < counts_.size(); ++b) counts_[b] += folded.counts_[b];
}

uint64_t Histogram::total() const { return std::accumulate(counts_.begin(), counts_.end(), uint64_t(0)); }

}  // namespace apl
