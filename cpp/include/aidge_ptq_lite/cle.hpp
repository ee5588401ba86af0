// Cross-layer equalization (cle.cpp): balance the per-channel weight ranges of consecutive affine
// layers before quantization, without changing the network's function.
#pragma once
#include <string>
#include <vector>

#include "aidge_ptq_lite/graph.hpp"

namespace apl {

// Runs on a prepared graph (prepare_network), before insert_scaling_nodes. Equalizes every pair
// of Conv/Gemm layers A -> ... -> B joined by positively homogeneous, channel-preserving ops only
// (Relu, LeakyRelu, MaxPool, AveragePool, GlobalAveragePool, zero Pad, Flatten) where each tensor
// from A's output to B's input feeds nothing else: output channel i of A is divided by s_i and
// input channel i of B multiplied by s_i, s_i = sqrt(r1_i / r2_i), over all pairs until
// max |s_i - 1| < target_delta. Returns the pairs as "A -> B".
// ValueError if target_delta is not positive or the graph is quantized; GraphError if the graph
// is not prepared or already has Scaling nodes.
std::vector<std::string> cross_layer_equalization(Graph& g, float target_delta = 0.01f, bool verbose = false);

}  // namespace apl
