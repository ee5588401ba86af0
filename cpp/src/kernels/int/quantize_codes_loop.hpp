// The input quantization loop, compiled once per SIMD level (int_ops.cpp at the baseline,
// int_ops_avx512.cpp with AVX-512 flags): included into each translation unit's own unnamed
// namespace, so the copies built with different flags never meet at link time.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace {

// y[i] = clamp(round_half_even(x[i] * scale), lo, hi) in double, NaN to code 0; +-Inf and huge
// values saturate. Branch-free so that it vectorises: rounding after the clamp to the integer
// bounds equals clamping the rounded value, and below 2^52 the 2^52 addition rounds as nearbyint.
// Arguments by value and restrict pointers: a byte store could otherwise alias them.
template <class T>
void quantize_codes_loop(const float* __restrict x, int64_t n, double scale, double lo, double hi,
                         T* __restrict y) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i] * scale;
    v = v == v ? v : 0.0;
    v = std::min(std::max(v, lo), hi);
    y[i] = static_cast<T>(static_cast<int32_t>(std::copysign((std::fabs(v) + 0x1p52) - 0x1p52, v)));
  }
}

}  // namespace
