// cast_to_integer: the quantized network's integer-valued float tensors become int8/int32
// (int32/int64 above 8 bits) and its Scaling factors fixed-point multipliers.
#include <algorithm>
#include <cmath>

#include "aidge_ptq_lite/executor.hpp"
#include "aidge_ptq_lite/op_geometry.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"
#include "aidge_ptq_lite/sign_map.hpp"
#include "quantize_internal.hpp"

namespace apl {
namespace {

template <typename T>
void cast_values(const float* src, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(static_cast<double>(src[i]));
}

Tensor to_integer(const Tensor& t, DType dtype, double limit, const Node& n, const char* what) {
  Tensor out(dtype, t.shape());
  const float* src = t.data<float>();
  const int64_t count = t.numel();
  // Checked first, cast after: the casts then run as plain loops (the checks are the same as
  // before, so is the first bad value reported).
  for (int64_t i = 0; i < count; ++i) {
    const double v = src[i];
    if (!(std::fabs(v) <= limit) || !is_integer_value(v))
      throw ValueError(n.label() + ": " + what + " code " + std::to_string(v) + " does not fit +-" +
                       std::to_string(limit) +
                       (std::string(what) == "bias"
                            ? ": the activation range before this layer is tiny next to its bias; is the "
                              "calibration data scaled as for inference (not e.g. x 1e-30)?"
                            : ""));
  }
  if (dtype == DType::I8) cast_values(src, count, out.data<int8_t>());
  else if (dtype == DType::I32) cast_values(src, count, out.data<int32_t>());
  else cast_values(src, count, out.data<int64_t>());
  return out;
}

int32_t to_offset(double v, const Node& n) {
  if (!(std::fabs(v) < 2147483647.0)) throw ValueError(n.label() + ": zero point offset " + std::to_string(v) + " does not fit int32");
  return static_cast<int32_t>(v);
}

// Sum of the integer weights of each output channel.
std::vector<int64_t> weight_sums(const Tensor& w) {
  const int64_t K = w.dim(0), per_k = w.numel() / K;
  std::vector<int64_t> sums(static_cast<size_t>(K), 0);
  const int8_t* p = w.data<int8_t>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < per_k; ++i) sums[static_cast<size_t>(k)] += p[k * per_k + i];
  return sums;
}

// A padded Conv reading codes of zero point z: z times the weights of its padding taps, per
// output channel and position (the kernel pads with code 0, the zero point means code z).
std::vector<int32_t> border_offsets(const Graph& g, const Node& conv, int32_t z) {
  if (z == 0 || conv.params[0].ndim() < 3) return {};
  const kernels::Conv2dShape s = window_geometry(conv, g.node(conv.inputs[0]).shape);
  if (s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0) return {};
  const int64_t Cg = s.channels_per_group(), OH = s.OH(), OW = s.OW();
  const int8_t* w = conv.params[0].data<int8_t>();
  std::vector<int32_t> map(static_cast<size_t>(s.K * OH * OW), 0);
  for (int64_t k = 0; k < s.K; ++k)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t sum = 0;
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t sx = 0; sx < s.S; ++sx) {
            const int64_t ih = oh * s.stride_h - s.pad_top + r * s.dil_h, iw = ow * s.stride_w - s.pad_left + sx * s.dil_w;
            if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) continue;
            for (int64_t c = 0; c < Cg; ++c) sum += w[((k * Cg + c) * s.R + r) * s.S + sx];
          }
        map[static_cast<size_t>((k * OH + oh) * OW + ow)] = to_offset(static_cast<double>(z) * sum, conv);
      }
  return map;
}

// The Scaling node's accumulator offset (see Requantization::acc_offset): its own zero point in
// accumulator units, minus the producer's input zero point where the producer sums codes.
std::vector<int32_t> accumulator_offsets(const Graph& g, const Node& scaling, double window) {
  const Node& producer = g.node(scaling.inputs[0]);
  const Requantization& rq = scaling.quant.requant;
  std::vector<double> offset(std::max<size_t>(rq.multiplier.size(), 1), 0.0);
  for (size_t c = 0; c < rq.multiplier.size() && scaling.quant.zero_point; ++c) {
    const FixedPointMultiplier& m = rq.multiplier[c];  // the factor as encoded: m / 2^s
    if (m.multiplier == 0) continue;
    offset[c] = std::nearbyint(scaling.quant.zero_point * std::ldexp(1.0, m.shift) / m.multiplier);
  }
  const int32_t z_in = producer.inputs.empty() || producer.quant.island ? 0 : zero_point_of(g, producer.inputs[0]);
  if (z_in && producer.traits().affine) {
    const std::vector<int64_t> sums = weight_sums(producer.params[0]);
    if (offset.size() == 1) offset.resize(sums.size(), offset[0]);
    for (size_t k = 0; k < sums.size(); ++k) offset[k] -= static_cast<double>(z_in) * static_cast<double>(sums[k]);
  } else if (z_in && producer.traits().summed_window) {
    for (double& o : offset) o -= static_cast<double>(z_in) * window;
  }
  if (std::all_of(offset.begin(), offset.end(), [](double o) { return o == 0.0; })) return {};
  std::vector<int32_t> out;
  for (double o : offset) out.push_back(to_offset(o, scaling));
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
      n.quant.border_offset = border_offsets(g, n, zero_point_of(g, n.inputs[0]));
    } else if (n.is(OpKind::Scaling)) {
      // Integer pools sum their window (no division): the 1/window goes into the rescaling.
      const Node& producer = g.node(n.inputs[0]);
      // (An island runs its float op, which averages.)
      const auto summed_window = producer.quant.island ? nullptr : producer.traits().summed_window;
      const double window = summed_window ? static_cast<double>(summed_window(g, producer)) : 1.0;
      Requantization& rq = n.quant.requant;
      if (rq.dequantize_point) {  // factors map the (summed) accumulator to float values
        for (float& f : rq.factor) f = static_cast<float>(f / window);
        rq.multiplier.clear();
        rq.acc_offset = accumulator_offsets(g, n, window);  // the input's zero point only
        continue;
      }
      rq.multiplier.clear();
      for (float f : rq.factor) rq.multiplier.push_back(rq.single_shift ? encode_shift(f) : encode_multiplier(f / window));
      rq.acc_offset = accumulator_offsets(g, n, window);
    }
  }
  g.invalidate();
}

}  // namespace apl
