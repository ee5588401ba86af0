// Pass entry points quantize_network uses without the public wrappers' side effects.
#pragma once
#include <cmath>

#include "aidge_ptq_lite/fixed_point.hpp"
#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

// v == std::nearbyint(v), inline (round_to_integer).
inline bool is_integer_value(double v) { return v == round_to_integer(v); }

// quantize_normalized_network without marking the graph quantized (quantize_from_calibration
// marks it once, after cast_to_integer).
void quantize_normalized(Graph& g, const QuantSpec& spec, bool no_quant, bool optimize_signs);

}  // namespace apl
