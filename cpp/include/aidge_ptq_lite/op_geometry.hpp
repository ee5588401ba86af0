// Window geometry of the Conv, MaxPool and AveragePool nodes, for shape inference and kernels.
#pragma once
#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/kernels/conv_shape.hpp"

namespace apl {

// For a per-sample input shape (C, H, W); ShapeError / UnsupportedError naming the node.
kernels::Conv2dShape window_geometry(const Node& node, const Shape& input);

}  // namespace apl
