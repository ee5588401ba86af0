// apply_single_shift: power-of-two rescaling, the ratio compensated in the previous layer's
// weights (see ptq.hpp).
#include <cmath>

#include "aidge_ptq_lite/ops.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {

void apply_single_shift(Graph& g, int nb_bits, bool optimize_signs) {
  const double q_weight = std::ldexp(1.0, nb_bits - 1) - 1.0;
  const std::set<std::string> output_points = dequantize_points(g);
  for (Node& affine : g.mutable_nodes()) {
    if (!is_affine_op(affine.op)) continue;
    const auto users = g.consumers(affine.name);
    Node& scaling = g.node(users.at(0));
    if (output_points.count(scaling.name)) continue;  // dequantized in float: nothing to shift
    const double q_in = code_max(g.node(affine.inputs[0]), nb_bits, optimize_signs);
    const double q_out = code_max(scaling, nb_bits, optimize_signs);
    Tensor& factor = scaling.params[0];
    Tensor& w = affine.params[0];
    const int64_t K = w.dim(0), per_channel = w.numel() / K;
    for (int64_t k = 0; k < K; ++k) {
      float& f = factor.data<float>()[factor.numel() == 1 ? 0 : k];
      const double m = f * q_out / (q_in * q_weight);  // the requantization factor to replace
      const double ratio = m / std::exp2(std::ceil(std::log2(m)));  // in (0.5, 1]
      for (int64_t i = 0; i < per_channel; ++i) w.data<float>()[k * per_channel + i] *= static_cast<float>(ratio);
      affine.params[1].data<float>()[k] *= static_cast<float>(ratio);
      if (factor.numel() == K) f = static_cast<float>(f / ratio);
    }
    if (factor.numel() != K) throw Error(scaling.label() + ": expected one factor per channel");
    scaling.quant.power_of_two = true;
  }
  g.invalidate();
}

}  // namespace apl
