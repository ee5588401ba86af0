// The sign map (sign_map.cpp): which activations of the integer network can use unsigned codes.
#pragma once
#include <map>
#include <string>
#include <utility>

#include "aidge_ptq_lite/graph.hpp"

namespace apl {

// Per node name: (all data inputs unsigned, output unsigned), for a graph with its Scaling nodes
// (after insert_scaling_nodes). "Unsigned" means the node's integer codes are unsigned, which
// needs non-negative values AND a scale-setting node (Input or Scaling) upstream that uses the
// unsigned range, since the ops in between (Relu, pools, pads, reshapes) keep their input's codes.
// - Input, Conv, Gemm, Sub and unlisted ops: signed.
// - Relu, LeakyRelu, Clip, MaxPool, AveragePool, GlobalAveragePool, Pad (value >= 0), Flatten,
//   Reshape, Identity, Dropout: as their input.
// - Add, Concat, Mul: unsigned iff all inputs are (and no constant operand).
// - Scaling (positive factors): as its input; also unsigned when all its consumers clamp at zero
//   (Relu, or Clip with min >= 0) and it is not a graph output: it then clamps at zero itself.
// - Joins (Add, Sub, Concat) add or copy codes of one step, so their inputs must share a sign: with
//   mixed inputs, the scale-setting node above each unsigned input is forced signed (to a fixpoint).
std::map<std::string, std::pair<bool, bool>> compute_sign_map(const Graph& g, bool verbose = false);

// Zero points (after calibration, with optimize_signs, at 8 bits and below): a signed Scaling node
// whose calibration min m is negative but small (-m <= range / 4: HardSwish, x * Sigmoid(x), a
// squeeze-excite product) gets unsigned codes with zero point z = ceil((2^n - 1) (-m) / (range - m)):
// step range / (2^n - 1 - z) instead of range / (2^(n-1) - 1), about one bit more. Only where
// every reader of its codes (through reshapes) takes zero points out exactly: Conv/Gemm (bias and
// border offsets), GlobalAveragePool (its Scaling node's offset), Mul of two activations, an
// element-wise lookup table; not joins, clamps, pads or graph outputs; not after a channel-stacking
// Concat (its inputs pass at factor 1, a zero point would round them again). Sets quant.is_unsigned and
// quant.zero_point; `ranges` are the (clipped) ranges normalize_activations will use.
// The zero point of the codes `name` carries: that of the node which set them (up through
// code-keeping ops such as reshapes); 0 for symmetric codes.
int32_t zero_point_of(const Graph& g, std::string name);

void choose_zero_points(Graph& g, const std::map<std::string, float>& ranges, int nb_bits, bool verbose = false);

}  // namespace apl
