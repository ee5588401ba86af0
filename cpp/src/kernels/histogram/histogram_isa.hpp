// Private: the per-ISA part of the histogram kernel, which turns values into table slots. Each
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

// Counts go to kSubHistograms interleaved uint32 tables: the counter of bin b in table k is
// tables[b * kSubHistograms + k] (its "slot"), and value i goes to table i % kSubHistograms. A
// run of values in one bin (ReLU zeros) then increments independent counters instead of waiting
// on the store-to-load latency of a single one; the counters of a bin share a cache line.
constexpr int kLog2SubHistograms = 2;
constexpr int kSubHistograms = 1 << kLog2SubHistograms;

// Writes the slot of each of the n values and returns max |x_i| as bits: the float's bits with
// the sign cleared, whose integer order is the float order, NaN and Inf being >= 0x7f800000.
using BinSlotsFn = uint32_t (*)(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots);
// max |x_i| as bits, the same order trick without binning (calibration ranges under MAX clipping).
using MaxAbsBitsFn = uint32_t (*)(const float* x, int64_t n);

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
uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots);
uint32_t max_abs_bits(const float* x, int64_t n);
}
namespace avx2 {
uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots);
uint32_t max_abs_bits(const float* x, int64_t n);
}
namespace avx512 {
uint32_t bin_slots(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* slots);
uint32_t max_abs_bits(const float* x, int64_t n);
}

}  // namespace apl::kernels
