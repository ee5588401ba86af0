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

namespace apl {

struct FixedPointMultiplier {
  int32_t multiplier = 1;  // m
  int32_t shift = 0;       // s, 0..62
};

// Nearest (m, s) encoding of factor f (0 < f < 2^31). f == 0 gives m = 0.
inline FixedPointMultiplier encode_multiplier(double f) {
  if (!(f >= 0.0) || !std::isfinite(f) || f >= 2147483648.0)
    throw ValueError("rescaling factor out of range: " + std::to_string(f));
  if (f == 0.0) return {0, 0};
  int e = 0;
  const double frac = std::frexp(f, &e);  // f = frac * 2^e, frac in [0.5, 1)
  int64_t m = static_cast<int64_t>(std::llround(frac * 2147483648.0));
  if (m == (int64_t(1) << 31)) {  // rounding reached 2^31: renormalise
    m >>= 1;
    ++e;
  }
  int s = 31 - e;
  if (s > 62) {  // tiny factor: drop precision of m rather than overflow the shift
    m >>= (s - 62);
    s = 62;
  }
  while (s < 0) {  // factor >= 2^31 is rejected above, so this never loops far
    m <<= 1;
    ++s;
  }
  return {static_cast<int32_t>(m), s};
}

inline double decode_multiplier(FixedPointMultiplier fp) {
  return std::ldexp(static_cast<double>(fp.multiplier), -fp.shift);
}

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
