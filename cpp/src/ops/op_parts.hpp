// The parts the registry rows (registry.cpp) are made of: shape functions (shapes.cpp), float
// kernels (runtime/float_op_kernels.cpp) and integer kernels (runtime/int_op_kernels.cpp).
// Internal to the library.
#pragma once
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/kernels/conv_shape.hpp"
#include "aidge_ptq_lite/ops.hpp"

namespace apl {

// Function types: `KernelFn conv;` declares the function conv (a row stores its address).
using ShapeFnType = Shape(const Node&, const std::vector<Shape>&);
using KernelFn = std::unique_ptr<OpKernel>(const Graph&, const Node&);

namespace shapes {
ShapeFnType window,  // Conv, MaxPool, AveragePool
    same,            // element-wise: the input's shape
    softmax, batchnorm, global_pool, gemm, matmul,
    binary,          // numpy broadcasting, with a possible constant operand
    concat, flatten, reshape, pad,
    // data movement and geometry
    transpose, slice, squeeze, unsqueeze, resize, conv_transpose;
}  // namespace shapes

// ---- data movement and geometry: plans the shape functions validate and the kernels run ----
// Slice: per non-batch axis, the first input index, the step and the output length.
struct SliceAxis {
  int64_t start = 0, step = 1, count = 0;
};
std::vector<SliceAxis> slice_plan(const Node& node, const Shape& input);

// Resize: per non-batch axis, the output length and the scale of the coordinate transform.
struct ResizePlan {
  bool linear = false;
  Shape out;
  std::vector<float> scale;
};
ResizePlan resize_plan(const Node& node, const Shape& input);

// ConvTranspose as a Conv (stride 1, no pads) over the input spread out by the strides: input
// cell (h, w) lands at (offset_h + h * stride_h, offset_w + w * stride_w) of a zero plane of
// conv.H x conv.W; cells outside that plane are cropped (pads larger than the window).
struct ConvTransposeGeometry {
  kernels::Conv2dShape conv;
  int64_t in_h = 1, in_w = 1, stride_h = 1, stride_w = 1, offset_h = 0, offset_w = 0;
};
ConvTransposeGeometry conv_transpose_geometry(const Node& node, const Shape& input);

// AveragePool in integers sums its window; the Scaling node after it divides by this divisor:
// the window size, or where the count varies per cell (ceil_mode=1, pads with
// count_include_pad=0) lcm(1..R) * lcm(1..S), a multiple of every count, by which the kernel
// weighs each cell's sum (avgpool_border_kernels.cpp). 0: too large for exact int32 sums of
// 8-bit codes (255 * divisor < 2^31).
constexpr int64_t kMaxAveragePoolDivisor = int64_t{1} << 23;
bool average_pool_divisor_varies(const Node& node);
int64_t average_pool_divisor(const Node& node);

namespace float_kernels {
KernelFn conv, maxpool, avgpool, global_avgpool, dense, batchnorm, leaky_relu, clip, softmax,
    binary, concat, scaling, view,
    transpose, slice, pad, resize, conv_transpose,  // data movement and geometry
    pointwise;  // runs the row's pointwise_f32
}  // namespace float_kernels

namespace integer_kernels {
KernelFn affine, scaling, relu, piecewise, maxpool, avgpool, global_avgpool, binary,
    conv_transpose,  // data movement and geometry (Transpose, Slice, Pad, Resize use the float one)
    avgpool_any_divisor;  // avgpool, with per-cell weights where the count varies
}  // namespace integer_kernels

// ---- element-wise, reductions and per-channel ops (runtime/elementwise_op_kernels.cpp) ----
namespace shapes {
ShapeFnType variadic,  // Sum: numpy broadcasting of every input
    prelu,             // the slope broadcasts to the input
    reduce,            // Reduce*: attribute axes (never the batch), keepdims
    lrn;
}  // namespace shapes
namespace float_kernels {
KernelFn sum, prelu, hard_sigmoid, elu, selu, log_softmax, lrn, reduce_mean, reduce_max, reduce_sum, div,
    pow, max, min;
}  // namespace float_kernels
namespace integer_kernels {
KernelFn sum, prelu;
}  // namespace integer_kernels
// Which axes of a full-rank (batch first) tensor a Reduce* node reduces.
std::vector<bool> reduced_axes(const Node& n, size_t rank);
// ---- end of element-wise ----

}  // namespace apl
