// Depthwise plane kernel compiled for AVX512 (see depthwise_body.hpp).
#include "depthwise_body.hpp"
#include "float_internal.hpp"

namespace apl::kernels::detail {

void depthwise_plane_avx512(const Conv2dShape& s, const float* padded, int64_t padded_w,
                          const float* w, float bias, float* y) {
  depthwise_plane_any_stride(s, padded, padded_w, w, bias, y);
}

}  // namespace apl::kernels::detail
