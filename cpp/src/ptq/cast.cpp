// cast_to_integer: the quantized network's integer-valued float tensors become int8/int32
// (int32/int64 above 8 bits) and its Scaling factors fixed-point multipliers.
#include <cmath>

#include "aidge_ptq_lite/ptq.hpp"

namespace apl {
namespace {

Tensor to_integer(const Tensor& t, DType dtype, double limit, const Node& n, const char* what) {
  Tensor out(dtype, t.shape());
  const float* src = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = src[i];
    if (!(std::fabs(v) <= limit) || v != std::nearbyint(v))
      throw Error(n.label() + ": " + what + " value " + std::to_string(v) +
                  " is not an integer within +-" + std::to_string(limit));
    if (dtype == DType::I8) out.data<int8_t>()[i] = static_cast<int8_t>(v);
    else if (dtype == DType::I32) out.data<int32_t>()[i] = static_cast<int32_t>(v);
    else out.data<int64_t>()[i] = static_cast<int64_t>(v);
  }
  return out;
}

// A power of two 2^-k as a pure rounding shift: multiplier 1, shift k (or 2^-k, shift 0 if k < 0).
FixedPointMultiplier encode_shift(double power_of_two) {
  const int k = -static_cast<int>(std::lround(std::log2(power_of_two)));
  if (k >= 0) return {1, k};
  return {static_cast<int32_t>(int64_t(1) << -k), 0};
}

}  // namespace

void cast_to_integer(Graph& g, int nb_bits) {
  const bool wide = nb_bits > 8;
  const double weight_limit = std::ldexp(1.0, nb_bits - 1) - 1.0;
  for (Node& n : g.mutable_nodes()) {
    if (n.traits().affine) {
      n.params[0] = to_integer(n.params[0], wide ? DType::I32 : DType::I8, weight_limit, n, "weight");
      n.params[1] = to_integer(n.params[1], wide ? DType::I64 : DType::I32,
                               wide ? 4.0e18 : 2147483647.0, n, "bias");
    } else if (n.is(OpKind::Scaling)) {
      // Integer pools sum their window (no division): the 1/window goes into the rescaling.
      const Node& producer = g.node(n.inputs[0]);
      const auto summed_window = producer.traits().summed_window;
      const double window = summed_window ? static_cast<double>(summed_window(g, producer)) : 1.0;
      float* f = n.params[0].data<float>();
      if (n.quant.dequantize_point) {  // factors map the (summed) accumulator to float values
        for (int64_t c = 0; c < n.params[0].numel(); ++c) f[c] = static_cast<float>(f[c] / window);
        continue;
      }
      n.quant.multiplier.clear();
      for (int64_t c = 0; c < n.params[0].numel(); ++c)
        n.quant.multiplier.push_back(n.quant.power_of_two ? encode_shift(f[c]) : encode_multiplier(f[c] / window));
    }
  }
  g.invalidate();
}

}  // namespace apl
