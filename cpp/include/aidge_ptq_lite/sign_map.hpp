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

}  // namespace apl
