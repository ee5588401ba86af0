// quantize_normalized_network: from the normalized network (activations and weights in [-1, 1])
// to n-bit codes. Code range: signed [-(2^(n-1)-1), 2^(n-1)-1], unsigned [0, 2^n-1].
#include <algorithm>
#include <cmath>
#include <set>

#include "aidge_ptq_lite/ptq.hpp"

namespace apl {
namespace {


void scale_tensor(Tensor& t, double f, bool round) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = p[i] * f;
    p[i] = static_cast<float>(round ? std::nearbyint(v) : v);
  }
}

// Single shift: the factors are powers of two up to float rounding; make them exact.
void snap_to_powers_of_two(Tensor& factors) {
  float* f = factors.data<float>();
  for (int64_t i = 0; i < factors.numel(); ++i) f[i] = std::exp2(std::round(std::log2(f[i])));
}

}  // namespace

std::set<std::string> dequantize_points(const Graph& g) {
  const auto kept_float = quantizability_report(g).kept_float;
  const auto is_float = [&](const std::string& name) {
    return std::find(kept_float.begin(), kept_float.end(), name) != kept_float.end();
  };
  std::set<std::string> points;
  for (const Node& n : g.nodes()) {
    if (!n.is(OpKind::Scaling)) continue;
    const auto users = g.consumers(n.name);
    if (users.empty() ? g.is_output(n.name) : std::all_of(users.begin(), users.end(), is_float)) points.insert(n.name);
  }
  return points;
}

double code_max(const Node& n, int nb_bits, bool optimize_signs) {
  const int bits = optimize_signs && n.quant.is_unsigned ? nb_bits : nb_bits - 1;
  return std::ldexp(1.0, bits) - 1.0;
}

void check_nb_bits(int nb_bits) {
  if (nb_bits < 2 || nb_bits > 16)
    throw ValueError("nb_bits must be in 2..16, got " + std::to_string(nb_bits));
}

void quantize_normalized_network(Graph& g, int nb_bits, bool no_quant, bool optimize_signs) {
  check_nb_bits(nb_bits);
  const QuantizabilityReport report = quantizability_report(g);
  if (!report.unsupported.empty())
    throw UnsupportedError("cannot quantize: " + report.text());
  const bool round = !no_quant;
  const std::set<std::string> output_points = dequantize_points(g);
  const double q_weight = std::ldexp(1.0, nb_bits - 1) - 1.0;
  auto codes = [&](const Node& n) { return code_max(n, nb_bits, optimize_signs); };

  // Codes of each node's output: Q such that the float value S maps to the integer Q.
  std::map<std::string, double> q;
  for (Node& n : g.mutable_nodes()) {
    const bool float_tail = std::find(report.kept_float.begin(), report.kept_float.end(), n.name) != report.kept_float.end();
    n.quant.kept_float = float_tail;
    if (float_tail) continue;
    const double q_in = n.inputs.empty() ? 0.0 : q[n.inputs[0]];
    if (n.is(OpKind::Input) || n.is(OpKind::Scaling)) {
      q[n.name] = codes(n);
    } else if (n.traits().affine) {
      scale_tensor(n.params[0], q_weight, round);
      scale_tensor(n.params[1], q_weight * q_in, round);
      q[n.name] = q_weight * q_in;
    } else if (n.traits().multiplies_scales) {
      q[n.name] = q[n.inputs[0]] * q[n.inputs[1]];
    } else {
      q[n.name] = q_in;  // joins (inputs share a scale and a sign), pools, scale-keeping ops
    }
    for (const auto& [key, absent] : n.traits().activation_attributes)
      n.set_attr(key, static_cast<float>(n.attr_float(key, absent) * q_in));
    if (n.is(OpKind::Scaling)) {
      const double q_acc = q_in;
      n.quant.dequantize_point = output_points.count(n.name) != 0;
      // Requantization factor: from accumulator codes to output codes. A dequantization point
      // keeps the accumulator; its factor then maps accumulator codes to float values.
      const double to_codes = n.quant.dequantize_point ? n.quant.range : q[n.name];
      scale_tensor(n.params[0], to_codes / q_acc, false);
      if (n.quant.power_of_two) snap_to_powers_of_two(n.params[0]);
      if (n.quant.dequantize_point) q[n.name] = q_acc;
    }
    const bool is_unsigned = optimize_signs && n.quant.is_unsigned;
    n.quant.step = n.quant.range / q[n.name];
    n.quant.hi = static_cast<int32_t>(codes(n));
    n.quant.lo = is_unsigned ? 0 : -n.quant.hi;
  }
  QuantConfig config;
  config.nb_bits = nb_bits;
  config.no_quant = no_quant;
  config.optimize_signs = optimize_signs;
  g.set_quantized(config);
}

}  // namespace apl
