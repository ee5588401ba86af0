// Depthwise kernel for the baseline ISA (the reference of the SIMD ones: same sums in the same
// order), and the choice of variant per SIMD level.
#include "float_internal.hpp"

namespace apl::kernels::detail {

void depthwise_flat_scalar(int64_t taps, const int64_t* tap_offset, const float* band,
                           const float* w, float bias, int64_t n, float* out) {
  for (int64_t p = 0; p < n; ++p) {
    float acc = bias;
    for (int64_t t = 0; t < taps; ++t) acc += w[t] * band[tap_offset[t] + p];
    out[p] = acc;
  }
}

DepthwiseFlatFn depthwise_flat_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return depthwise_flat_avx512;
    case SimdLevel::AVX2: return depthwise_flat_avx2;
    case SimdLevel::Scalar: break;
  }
  return depthwise_flat_scalar;
}

}  // namespace apl::kernels::detail
