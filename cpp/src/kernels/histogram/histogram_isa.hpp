// Private: the per-ISA loops of the histogram kernel. Each namespace below lives in its own
// translation unit (histogram_<isa>.cpp) compiled with that ISA's flags; histogram.cpp calls them
// only when active_simd_level() allows it.
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
// tables[b * kSubHistograms + k], and consecutive values go to different tables. A run of values
// in one bin (ReLU zeros) then increments independent counters instead of waiting on the
// store-to-load latency of a single one; the 4 counters of a bin share a cache line.
constexpr int kLog2SubHistograms = 2;
constexpr int kSubHistograms = 1 << kLog2SubHistograms;

// Adds n values to the tables and returns max |x_i| as bits (the float's bits with the sign
// cleared: integer order is float order, and NaN/Inf are >= 0x7f800000). Each table counter
// grows by at most n: the caller flushes the tables before they can overflow.
using HistogramBlockFn = uint32_t (*)(const float* x, int64_t n, float inv_width, int32_t bins,
                                      uint32_t* tables);

inline uint32_t abs_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits & 0x7fffffffu;
}

inline int32_t bin_index(float v, float inv_width, float last_bin) {
  const float t = std::fabs(v) * inv_width;
  return static_cast<int32_t>(t < last_bin ? t : last_bin);
}

// ++tables[slot[i]] for the kLanes slots a vector stored: read back two at a time as 64-bit
// words (two loads per four increments), cheaper than a chain of per-lane extract instructions,
// which all compete for one shuffle port.
template <int kLanes>
inline void increment_slots(const int32_t* slot, uint32_t* tables) {
  for (int lane = 0; lane < kLanes; lane += 2) {
    uint64_t pair;
    std::memcpy(&pair, slot + lane, sizeof pair);
    ++tables[static_cast<uint32_t>(pair)];
    ++tables[pair >> 32];
  }
}

namespace scalar {
uint32_t histogram_block(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* tables);
}
namespace avx2 {
uint32_t histogram_block(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* tables);
}
namespace avx512 {
uint32_t histogram_block(const float* x, int64_t n, float inv_width, int32_t bins, uint32_t* tables);
}

}  // namespace apl::kernels
