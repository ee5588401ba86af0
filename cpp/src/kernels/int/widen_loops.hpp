// The loops that widen int8 / uint8 codes to the int32 values a requantize run reads (a join's
// sums, a Scaling node's codes), compiled once per SIMD level (requantize.cpp at the baseline,
// requantize_avx512.cpp with AVX-512 flags): included into each translation unit's own unnamed
// namespace, so the copies built with different flags never meet at link time.
#pragma once
#include <cstdint>

namespace {

// y[i] = a[i] + b[i], or a[i] - b[i] (int8 +- int8 cannot overflow int32).
template <class A, class B>
void widen_sum_loop(const A* __restrict a, const B* __restrict b, int64_t n, bool subtract,
                    int32_t* __restrict y) {
  if (subtract)
    for (int64_t i = 0; i < n; ++i) y[i] = int32_t{a[i]} - int32_t{b[i]};
  else
    for (int64_t i = 0; i < n; ++i) y[i] = int32_t{a[i]} + int32_t{b[i]};
}

template <class T> void widen_loop(const T* __restrict x, int64_t n, int32_t* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i];
}

}  // namespace
