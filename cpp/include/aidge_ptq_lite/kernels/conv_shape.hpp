// Geometry of a 2-D convolution or pooling window, shared by float and integer kernels.
#pragma once
#include <cstdint>

namespace apl::kernels {

struct Conv2dShape {
  int64_t C = 0, H = 0, W = 0;  // input channels and spatial size (per sample, NCHW)
  int64_t K = 0;                // output channels
  int64_t R = 1, S = 1;         // kernel height and width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  // Pools with ceil_mode=1: the part of pad_bottom / pad_right that only completes the last
  // window (not a pad of the model): an average over it counts neither input nor padding.
  int64_t ceil_extra_h = 0, ceil_extra_w = 0;

  int64_t OH() const { return (H + pad_top + pad_bottom - dil_h * (R - 1) - 1) / stride_h + 1; }
  int64_t OW() const { return (W + pad_left + pad_right - dil_w * (S - 1) - 1) / stride_w + 1; }
  int64_t channels_per_group() const { return C / groups; }
  int64_t outputs_per_group() const { return K / groups; }
  bool is_depthwise() const { return groups == C && groups == K && groups > 1; }
};

// Pooling window: C is the channel count (K is unused), R x S the window.
using Pool2dShape = Conv2dShape;

}  // namespace apl::kernels
