// Fixed-point encoding of a real rescaling factor f > 0: a Q31 multiplier m in [2^30, 2^31) and
// a right shift s with f ~= m / 2^s. The rounding rule that applies it is in
// kernels/requantize.hpp (one rounding, half up, TFLite's single-rounding mode).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

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

// A power of two 2^-k as a pure rounding shift: multiplier 1, shift k (or 2^-k, shift 0 if k < 0).
inline FixedPointMultiplier encode_shift(double power_of_two) {
  const int k = -static_cast<int>(std::lround(std::log2(power_of_two)));
  if (k >= 0) return {1, k};
  return {static_cast<int32_t>(int64_t(1) << -k), 0};
}

// std::nearbyint(v) in the default rounding mode (to nearest, ties to even), inline: below 2^52,
// |v| + 2^52 lies where the double step is 1, so the addition rounds |v| to an integer as
// nearbyint does and the subtraction is exact; copysign gives nearbyint's sign (-0 for v in
// (-0.5, -0]). Larger magnitudes (integers already), Inf and NaN take nearbyint itself.
inline double round_to_integer(double v) {
  const double a = std::fabs(v);
  if (!(a < 0x1p52)) return std::nearbyint(v);
  return std::copysign((a + 0x1p52) - 0x1p52, v);
}

}  // namespace apl
