// The operator set: which ONNX ops the graph supports, their parameters and their shapes.
//
// Params layout per op (constants owned by the node):
//   Conv               {W (K, C/g, R, S), B (K) optional}
//   Gemm               {B, C optional}       attrs alpha, beta, transA (must be 0), transB
//   MatMul             {B (K, M)}            (the data operand is the first input)
//   BatchNormalization {scale, bias, mean, var}  attr epsilon
//   Add / Sub / Mul    {constant operand} when one operand is constant, attr const_index 0|1
//   Reshape            attr shape;  Pad: attr pads, value;  Clip: attrs min, max
//   Scaling            (PTQ) see ptq.hpp
#pragma once
#include <string>
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/kernels/conv_shape.hpp"

namespace apl {

const std::vector<std::string>& supported_ops();
bool is_supported_op(const std::string& op);
// "Add, AveragePool, ..." for error messages.
std::string supported_ops_list();

// Output shape per sample from the input shapes per sample; throws ShapeError / UnsupportedError
// naming the node.
Shape infer_shape(const Node& node, const std::vector<Shape>& inputs);

// Conv and Gemm: the nodes with weights, followed by a Scaling node in the quantized network.
inline bool is_affine_op(const std::string& op) { return op == "Conv" || op == "Gemm"; }
// Add, Sub and Concat: joins whose inputs must share a scale (max arbitration).
inline bool is_join_op(const std::string& op) { return op == "Add" || op == "Sub" || op == "Concat"; }

// Window geometry of a Conv, MaxPool or AveragePool node for a per-sample input shape (C, H, W).
kernels::Conv2dShape window_geometry(const Node& node, const Shape& input);

}  // namespace apl
