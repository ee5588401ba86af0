// Body of the depthwise plane kernel, written for auto-vectorisation along the output width and
// compiled once per SIMD level (depthwise.cpp, depthwise_avx2.cpp, depthwise_avx512.cpp). The
// anonymous namespace keeps each compilation's copy private to its translation unit.
#pragma once
#include "aidge_ptq_lite/kernels/conv_shape.hpp"

namespace apl::kernels::detail {
namespace {

// kStride > 0 fixes the horizontal stride at compile time (contiguous or even/odd loads);
// kStride == 0 reads it from the shape.
template <int kStride>
void depthwise_plane_body(const Conv2dShape& s, const float* padded, int64_t padded_w,
                          const float* w, float bias, float* y) {
  const int64_t OH = s.OH(), OW = s.OW();
  const int64_t stride_w = kStride > 0 ? kStride : s.stride_w;
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* __restrict out = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) out[ow] = bias;
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t col = 0; col < s.S; ++col) {
        const float weight = w[r * s.S + col];
        const float* __restrict in =
            padded + (oh * s.stride_h + r * s.dil_h) * padded_w + col * s.dil_w;
        for (int64_t ow = 0; ow < OW; ++ow) out[ow] += weight * in[ow * stride_w];
      }
  }
}

inline void depthwise_plane_any_stride(const Conv2dShape& s, const float* padded,
                                       int64_t padded_w, const float* w, float bias, float* y) {
  if (s.stride_w == 1)
    depthwise_plane_body<1>(s, padded, padded_w, w, bias, y);
  else if (s.stride_w == 2)
    depthwise_plane_body<2>(s, padded, padded_w, w, bias, y);
  else
    depthwise_plane_body<0>(s, padded, padded_w, w, bias, y);
}

}  // namespace
}  // namespace apl::kernels::detail
