// apply_single_shift: power-of-two rescaling, the ratio compensated in the previous layer's
// weights (see ptq.hpp).
#include <algorithm>
#include <cmath>

#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

void apply_single_shift(Graph& g, int nb_bits, bool optimize_signs) {
  const QuantSpec spec(nb_bits);
  const double q_weight = spec.weight_max();
  const std::set<std::string> output_points = dequantize_points(g, quantizability_report(g).kept_float);
  for (Node& affine : g.mutable_nodes()) {
    if (!affine.traits().affine) continue;
    const auto users = g.consumers(affine.name);
    Node& scaling = g.node(users.at(0));
    if (output_points.count(scaling.name)) continue;  // dequantized in float: nothing to shift
    const double q_in = code_max(g.node(affine.inputs[0]), spec, optimize_signs);
    const double q_out = code_max(scaling, spec, optimize_signs);
    Tensor& factor = scaling.params[0];
    Tensor& w = affine.params[0];
    const int64_t K = w.dim(0), per_channel = w.numel() / K;
    if (factor.numel() != K) throw Error(scaling.label() + ": expected one factor per channel");
    for (int64_t k = 0; k < K; ++k) {
      float* wk = w.data<float>() + k * per_channel;
      double w_max = 0.0;  // normalized: <= 1 (below 1 for most channels of a per-tensor range)
      for (int64_t i = 0; i < per_channel; ++i) w_max = std::max(w_max, std::fabs(double(wk[i])));
      if (w_max == 0.0) w_max = 1.0;
      float& f = factor.data<float>()[k];
      const double m = f * q_out / (q_in * q_weight);  // the requantization factor to replace
      // The smallest power of two that keeps this channel's largest weight inside the range:
      // ratio * w_max lands in (0.5, 1], so a channel loses less than one bit of weight
      // resolution, and gains the bits that a per-tensor weight range left unused in it.
      const double ratio = m / std::exp2(std::ceil(std::log2(m * w_max)));
      for (int64_t i = 0; i < per_channel; ++i) wk[i] = static_cast<float>(wk[i] * ratio);
      affine.params[1].data<float>()[k] *= static_cast<float>(ratio);
      f = static_cast<float>(f / ratio);
    }
    scaling.quant.requant.single_shift = true;
  }
  g.invalidate();
}

}  // namespace apl
