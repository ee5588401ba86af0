// cast_to_integer: the quantized network's integer-valued float tensors become int8/int32
// (int32/int64 above 8 bits) and its Scaling factors fixed-point multipliers.
#include <cmath>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {
namespace {

Tensor to_integer(const Tensor& t, DType dtype, double limit, const Node& n, const char* what) {
  Tensor out(dtype, t.shape());
  const float* src = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = src[i];
    if (!(std::fabs(v) <= limit) || v != std::nearbyint(v))
      throw ValueError(n.label() + ": " + what + " code " + std::to_string(v) + " does not fit +-" +
                       std::to_string(limit) +
                       (std::string(what) == "bias"
                            ? ": the activation range before this layer is tiny next to its bias; is the "
                              "calibration data scaled as for inference (not e.g. x 1e-30)?"
                            : ""));
    if (dtype == DType::I8) out.data<int8_t>()[i] = static_cast<int8_t>(v);
    else if (dtype == DType::I32) out.data<int32_t>()[i] = static_cast<int32_t>(v);
    else out.data<int64_t>()[i] = static_cast<int64_t>(v);
  }
  return out;
}

}  // namespace

void cast_to_integer(Graph& g, int nb_bits) {
  const QuantSpec spec(nb_bits);
  for (Node& n : g.mutable_nodes()) {
    if (n.quant.island && n.traits().elementwise) {
      n.quant.lut = island_lookup_table(g, n);
      n.quant.lut_first_code = g.node(n.inputs[0]).quant.lo;
    } else if (n.traits().affine) {
      n.params[0] = to_integer(n.params[0], spec.weight_dtype(), spec.weight_max(), n, "weight");
      n.params[1] = to_integer(n.params[1], spec.bias_dtype(), spec.bias_limit(), n, "bias");
    } else if (n.is(OpKind::Scaling)) {
      // Integer pools sum their window (no division): the 1/window goes into the rescaling.
      const Node& producer = g.node(n.inputs[0]);
      // (An island runs its float op, which averages.)
      const auto summed_window = producer.quant.island ? nullptr : producer.traits().summed_window;
      const double window = summed_window ? static_cast<double>(summed_window(g, producer)) : 1.0;
      Requantization& rq = n.quant.requant;
      if (rq.dequantize_point) {  // factors map the (summed) accumulator to float values
        for (float& f : rq.factor) f = static_cast<float>(f / window);
        continue;
      }
      rq.multiplier.clear();
      for (float f : rq.factor) rq.multiplier.push_back(rq.single_shift ? encode_shift(f) : encode_multiplier(f / window));
    }
  }
  g.invalidate();
}

}  // namespace apl
