// The parts the registry rows (registry.cpp) are made of: shape functions (shapes.cpp), float
// kernels (runtime/float_op_kernels.cpp) and integer kernels (runtime/int_op_kernels.cpp).
// Internal to the library.
#pragma once
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
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
    concat, flatten, reshape, pad;
}  // namespace shapes

namespace float_kernels {
KernelFn conv, maxpool, avgpool, global_avgpool, dense, batchnorm, leaky_relu, clip, softmax,
    binary, concat, pad, scaling, view,
    pointwise;  // runs the row's pointwise_f32
}  // namespace float_kernels

namespace integer_kernels {
KernelFn affine, scaling, relu, piecewise, maxpool, avgpool, global_avgpool, binary, pad;
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
