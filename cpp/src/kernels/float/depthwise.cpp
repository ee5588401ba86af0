// Depthwise plane kernel for the baseline ISA, and the choice of variant per SIMD level.
#include "depthwise_body.hpp"
#include "float_internal.hpp"

namespace apl::kernels::detail {

void depthwise_plane_scalar(const Conv2dShape& s, const float* padded, int64_t padded_w,
                            const float* w, float bias, float* y) {
  depthwise_plane_any_stride(s, padded, padded_w, w, bias, y);
}

DepthwisePlaneFn depthwise_plane_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::AMX:  // AMX tiles serve the int8 GEMMs; vector kernels are AVX512 here
    case SimdLevel::AVX512: return depthwise_plane_avx512;
    case SimdLevel::AVX2: return depthwise_plane_avx2;
    case SimdLevel::Scalar: break;
  }
  return depthwise_plane_scalar;
}

}  // namespace apl::kernels::detail
