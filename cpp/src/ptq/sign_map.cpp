// compute_sign_map: a local analysis deciding which activations can use unsigned n-bit codes
// [0, 2^n - 1] instead of signed ones, doubling their resolution (see sign_map.hpp for the rules).
#include "aidge_ptq_lite/sign_map.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {
namespace {

using SignOf = std::map<std::string, bool>;  // node name -> output unsigned

// A requantizer clamps at zero for free when every consumer would clamp there anyway.
bool feeds_only_zero_clamps(const Graph& g, const Node& n) {
  if (g.is_output(n.name)) return false;
  const auto users = g.consumers(n.name);
  return !users.empty() && std::all_of(users.begin(), users.end(),
                                       [&](const std::string& u) { return g.node(u).satisfies(&OpTraits::clamps_at_zero); });
}

bool has_positive_factors(const Node& scaling) {
  const Tensor& f = scaling.params.at(0);
  return std::all_of(f.data<float>(), f.data<float>() + f.numel(), [](float v) { return v > 0.f; });
}

bool all_unsigned(const std::vector<std::string>& names, const SignOf& sign) {
  return !names.empty() &&
         std::all_of(names.begin(), names.end(), [&](const std::string& n) { return sign.at(n); });
}

// One topological pass of the local rules; `forced` nodes are signed whatever the rules say.
SignOf output_signs(const Graph& g, const std::set<std::string>& forced) {
  SignOf sign;
  for (const Node& n : g.nodes()) {
    bool is_unsigned = false;
    if (n.satisfies(&OpTraits::sign_as_input)) {
      is_unsigned = sign.at(n.inputs.at(0));
    } else if (n.traits().sign_all_inputs) {
      is_unsigned = n.params.empty() && all_unsigned(n.inputs, sign);  // a constant operand may be negative
    } else if (n.is(OpKind::Scaling)) {
      is_unsigned = (sign.at(n.inputs.at(0)) && has_positive_factors(n)) || feeds_only_zero_clamps(g, n);
    } else if (n.satisfies(&OpTraits::non_negative)) {
      is_unsigned = true;  // Sigmoid, Softmax: whatever the input (a float island's output)
    }
    sign[n.name] = is_unsigned && !forced.count(n.name);
  }
  return sign;
}

// The node whose codes `name` carries: up through code-keeping ops to the one that set them.
std::string code_source(const Graph& g, std::string name) {
  while (g.node(name).traits().keeps_codes) name = g.node(name).inputs.at(0);
  return name;
}

// Whether every reader of `name`'s codes takes a zero point out exactly (see choose_zero_points).
bool readers_take_zero_points(const Graph& g, const std::string& name) {
  if (g.is_output(name)) return false;
  const auto users = g.consumers(name);
  return !users.empty() && std::all_of(users.begin(), users.end(), [&](const std::string& u) {
    const Node& r = g.node(u);
    if (r.quant.island) return true;  // a lookup table of the input codes, or dequantized inputs
    if (r.traits().view) return readers_take_zero_points(g, u);
    if (r.traits().affine) return !r.traits().transposed_weights && r.inputs.at(0) == name;
    if (r.is(OpKind::GlobalAveragePool)) return true;
    return r.is(OpKind::Mul) && r.params.empty() && r.inputs.size() == 2;
  });
}

// The reshapes between a node given unsigned codes and their readers carry them too.
void mark_views_unsigned(Graph& g, const std::string& name) {
  for (const std::string& u : g.consumers(name)) {
    Node& r = g.node(u);
    if (!r.traits().view) continue;
    r.quant.is_unsigned = true;
    mark_views_unsigned(g, u);
  }
}

}  // namespace

int32_t zero_point_of(const Graph& g, std::string name) {
  return g.node(code_source(g, std::move(name))).quant.zero_point;
}

// How far below zero a "nearly non-negative" tensor may reach, relative to its range. Measured on
// the realworld set: up to 0.19 in MobileNetV3 (HardSwish, squeeze-excite) and 0.06-0.17 for
// x * Sigmoid(x) and pools; tensors near 0.4 (Concat of signed branches, Elu) lost 0.2-1 dB with a
// zero point (values below the calibration min clamp at code 0), so they stay symmetric.
constexpr double kNearlyNonNegative = 0.25;

void choose_zero_points(Graph& g, const std::map<std::string, float>& ranges, int nb_bits, bool verbose) {
  const QuantSpec spec(nb_bits);
  if (spec.wide()) return;
  const double levels = spec.code_max(true);
  for (Node& n : g.mutable_nodes()) {
    n.quant.zero_point = 0;
    if (!n.is(OpKind::Scaling) || n.quant.is_unsigned) continue;
    // After a channel-stacking Concat the Scaling node passes its inputs' codes at factor 1 (one
    // rounding, upstream); a zero point would round them a second time (measured: -0.8 dB).
    if (g.node(n.inputs.at(0)).satisfies(&OpTraits::stacks_channels)) continue;
    const auto r = ranges.find(n.name);
    const double range = r == ranges.end() ? 0.0 : r->second, below = -static_cast<double>(n.quant.min_value);
    if (!(range > 0.0) || !(below > 0.0) || below > range * kNearlyNonNegative || !readers_take_zero_points(g, n.name)) continue;
    n.quant.zero_point = static_cast<int32_t>(std::clamp(std::ceil(levels * below / (range + below)), 1.0, levels - 1));
    n.quant.is_unsigned = true;
    mark_views_unsigned(g, n.name);
    if (verbose)
      std::printf("zero point: %s min %.4g range %.4g -> unsigned, zero point %d\n", n.label().c_str(), -below, range,
                  n.quant.zero_point);
  }
}

std::map<std::string, std::pair<bool, bool>> compute_sign_map(const Graph& g, bool verbose) {
  std::set<std::string> forced;
  SignOf sign;
  // Forcing a node signed can make another join mixed downstream: repeat until nothing changes.
  for (bool changed = true; changed;) {
    sign = output_signs(g, forced);
    changed = false;
    for (const Node& n : g.nodes()) {
      if (!n.traits().join || all_unsigned(n.inputs, sign)) continue;
      for (const std::string& in : n.inputs) {
        if (!sign.at(in)) continue;
        const std::string source = code_source(g, in);
        if (verbose)
          std::printf("sign map: %s forced signed (feeds %s, whose inputs mix signs)\n",
                      g.node(source).label().c_str(), n.label().c_str());
        forced.insert(source);
        changed = true;
      }
    }
  }

  std::map<std::string, std::pair<bool, bool>> map;
  for (const Node& n : g.nodes()) {
    map[n.name] = {all_unsigned(n.inputs, sign), sign.at(n.name)};
    if (verbose)
      std::printf("sign map: %-40s inputs %-8s output %s\n", n.label().c_str(),
                  n.inputs.empty() ? "-" : (map[n.name].first ? "unsigned" : "signed"),
                  map[n.name].second ? "unsigned" : "signed");
  }
  return map;
}

}  // namespace apl
