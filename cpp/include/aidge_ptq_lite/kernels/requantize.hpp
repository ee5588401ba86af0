// The one rounding rule of the integer network (TFLite single-rounding mode, ruy):
//
//   y = clamp((acc * m + (1 << (s - 1))) >> s, lo, hi)        computed in 64 bits (128 if wide)
//
// i.e. round half up of acc * m / 2^s. A real rescaling factor f > 0 is encoded as a Q31
// multiplier m in [2^30, 2^31) and a right shift s = 31 - e where f = (m / 2^31) * 2^e.
// A single shift is the special case m = 1: y = (acc + (1 << (k - 1))) >> k.
// s == 0 means no rounding term (f is an integer multiple).
// Bounds: |acc| < 2^31 and m < 2^31 give |acc * m| < 2^62, so int64 is exact for n <= 8 bits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "aidge_ptq_lite/errors.hpp"
#include "aidge_ptq_lite/fixed_point.hpp"

namespace apl {

// The scalar reference of the rule above, for 32-bit accumulators (n <= 8 bits).
inline int32_t requantize_one(int32_t acc, FixedPointMultiplier fp, int32_t lo, int32_t hi) {
  int64_t v = static_cast<int64_t>(acc) * fp.multiplier;
  if (fp.shift > 0) v = (v + (int64_t(1) << (fp.shift - 1))) >> fp.shift;
  return static_cast<int32_t>(std::clamp<int64_t>(v, lo, hi));
}

// The same rule for 64-bit accumulators (n > 8 bits), exact in 128 bits.
inline int64_t requantize_one_wide(int64_t acc, FixedPointMultiplier fp, int64_t lo, int64_t hi) {
  __int128 v = static_cast<__int128>(acc) * fp.multiplier;
  if (fp.shift > 0) v = (v + (static_cast<__int128>(1) << (fp.shift - 1))) >> fp.shift;
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<int64_t>(v);
}

}  // namespace apl
