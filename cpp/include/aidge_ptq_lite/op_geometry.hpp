// Window geometry of the Conv, MaxPool and AveragePool nodes, for shape inference and kernels.
#pragma once
#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/kernels/conv_shape.hpp"

namespace apl {

// For a per-sample input shape (C, H, W); ShapeError / UnsupportedError naming the node.
kernels::Conv2dShape window_geometry(const Node& node, const Shape& input);

// A MaxPool / AveragePool as 2-D passes: one for (C, H, W) or (C, L) inputs; for (C, D, H, W)
// two, as the window is separable: a pass over (H, W) of the C * D depth planes, then a
// (kernel_d x 1) pass over (D, OH * OW). Maxima of maxima and sums of sums are the 3-D window's,
// and a count of cells inside is a product of per-axis counts, so averaging per pass is exact.
std::vector<kernels::Pool2dShape> pool_passes(const Node& node, const Shape& input);

}  // namespace apl
