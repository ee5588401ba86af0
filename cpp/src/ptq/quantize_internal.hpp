// Pass entry points quantize_network uses without the public wrappers' side effects.
#pragma once
#include <cmath>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

// std::nearbyint(v) in the default rounding mode (to nearest, ties to even), inline: below 2^52,
// |v| + 2^52 lies where the double step is 1, so the addition rounds |v| to an integer as
// nearbyint does and the subtraction is exact; copysign gives nearbyint's sign (-0 for v in
// (-0.5, -0]). Larger magnitudes (integers already), Inf and NaN take nearbyint itself.
inline double round_to_integer(double v) {
  const double a = std::fabs(v);
  if (!(a < 0x1p52)) return std::nearbyint(v);
  return std::copysign((a + 0x1p52) - 0x1p52, v);
}

// v == std::nearbyint(v), inline (round_to_integer).
inline bool is_integer_value(double v) { return v == round_to_integer(v); }

// quantize_normalized_network without marking the graph quantized (quantize_from_calibration
// marks it once, after cast_to_integer).
void quantize_normalized(Graph& g, const QuantSpec& spec, bool no_quant, bool optimize_signs);

}  // namespace apl
