// Private: the per-ISA part of the histogram kernel, which turns values into bin indices. Each
// namespace below lives in its own translation unit (histogram_<isa>.cpp) compiled with that
// ISA's flags; histogram.cpp calls them only when active_simd_level() allows it, and does the
// counting itself (scalar increments, the same for every level).
//
// Every level computes the bin index the same way, with the same float32 operations:
// t = |x| * inv_width (one rounding), then min(t, bins - 1) (NaN gives bins - 1), then truncation.
// Clamping before truncating keeps huge values from overflowing the int32 conversion.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace apl::kernels {

// Bin 0 can be left out of the list and only counted: after a ReLU most values are exact zeros,
// and a vector compare + popcount counts them for much less than a scalar increment each. Packing
// the other bins costs more than listing all of them when few values are in bin 0, so the caller
// chooses.
struct TileBins {
  uint32_t max_bits;  // max |x_i| as bits: the float's bits with the sign cleared, whose integer
                      // order is the float order, NaN and Inf being >= 0x7f800000
  int64_t listed;     // bin indices written, at the start of the buffer
};
// The bin buffer has room for n + kBinSlack indices: vector levels store whole vectors.
constexpr int64_t kBinSlack = 16;

// Writes the bin index of each of the n values, in order; with skip_bin0, only those not in
// bin 0, the n - listed others being in bin 0.
using TileBinsFn = TileBins (*)(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0,
                                uint32_t* out);
// max |x_i| as bits, the same order trick without binning (calibration ranges without histograms).
using MaxAbsBitsFn = uint32_t (*)(const float* x, int64_t n);
// The same, and the smallest x_i by value into *min (n >= 1; which zero when the smallest is a
// zero, and anything when some x_i is NaN, is left open: max_abs_min_f32 settles both).
using MaxAbsMinBitsFn = uint32_t (*)(const float* x, int64_t n, float* min);

inline uint32_t abs_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits & 0x7fffffffu;
}

inline uint32_t bin_index(float v, float inv_width, float last_bin) {
  const float t = std::fabs(v) * inv_width;
  return static_cast<uint32_t>(t < last_bin ? t : last_bin);
}

namespace scalar {
TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out);
uint32_t max_abs_bits(const float* x, int64_t n);
uint32_t max_abs_min_bits(const float* x, int64_t n, float* min);
}
namespace avx2 {
TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out);
uint32_t max_abs_bits(const float* x, int64_t n);
uint32_t max_abs_min_bits(const float* x, int64_t n, float* min);
}
namespace avx512 {
TileBins tile_bins(const float* x, int64_t n, float inv_width, int32_t bins, bool skip_bin0, uint32_t* out);
uint32_t max_abs_bits(const float* x, int64_t n);
uint32_t max_abs_min_bits(const float* x, int64_t n, float* min);
}

}  // namespace apl::kernels
