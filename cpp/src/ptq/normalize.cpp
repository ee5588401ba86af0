// normalize_parameters and normalize_activations: bring weights, then activations, into [-1, 1]
// while keeping the network's function, so that quantizing is only a scaling by 2^(n-1) - 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "aidge_ptq_lite/histogram.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {
namespace {

// The Scaling node right after `n` (insert_scaling_nodes put it there).
Node& scaling_after(Graph& g, const Node& n) {
  const auto users = g.consumers(n.name);
  if (users.size() != 1 || !g.node(users[0]).is(OpKind::Scaling))
    throw GraphError(n.label() + " is not followed by its Scaling node; run insert_scaling_nodes first");
  return g.node(users[0]);
}

void scale_channels(Tensor& t, const std::vector<float>& per_channel, bool divide) {
  const int64_t C = t.dim(0), inner = t.numel() / C;
  float* p = t.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    const float f = per_channel[per_channel.size() == 1 ? 0 : c];
    float* row = p + c * inner;
    if (divide) {
      for (int64_t i = 0; i < inner; ++i) row[i] = row[i] / f;
    } else {
      for (int64_t i = 0; i < inner; ++i) row[i] = row[i] * f;
    }
  }
}

// max(0, |x_i|...) as the loop `r = std::max(r, std::fabs(x_i))` gives it: the bit-order maximum
// of the SIMD kernel when no x_i is NaN (the same value then), else that loop itself (which
// skips NaN: std::max keeps r against NaN).
float max_abs_as_std_max(const float* x, int64_t n) {
  const float m = kernels::max_abs_f32(x, n);
  if (!std::isnan(m)) return m;
  float r = 0.f;
  for (int64_t i = 0; i < n; ++i) r = std::max(r, std::fabs(x[i]));
  return r;
}

}  // namespace

void normalize_parameters(Graph& g, bool channel_wise) {
  std::vector<std::string> affine;
  for (const Node& n : g.nodes())
    if (n.traits().affine) affine.push_back(n.name);
  for (const std::string& name : affine) {
    Node& n = g.node(name);
    Tensor& w = n.params[0];
    const int64_t K = w.dim(0), per_channel = w.numel() / K;
    // One weight per output channel (a depthwise 1x1 Conv: a BatchNormalization or per-channel
    // Mul that follows no layer) is a per-channel gain: its own range quantizes each exactly (up
    // to its Scaling factor, per channel anyway); a shared one leaves small gains a few codes.
    const bool by_channel = channel_wise || per_channel == 1;
    std::vector<float> range(by_channel ? K : 1, 0.f);
    const float* wp = w.data<float>();
    if (by_channel) {
      for (int64_t k = 0; k < K; ++k) range[k] = max_abs_as_std_max(wp + k * per_channel, per_channel);
    } else {
      range[0] = max_abs_as_std_max(wp, K * per_channel);
    }
    for (float& r : range) {
      if (!std::isfinite(r)) throw ValueError(n.label() + " has non-finite weights");
      if (r == 0.f) r = 1.f;  // an all-zero channel stays zero; never divide by 0
    }
    scale_channels(w, range, true);
    scale_channels(n.params[1], range, true);
    n.quant.weight_range = range;
    scale_channels(scaling_after(g, n).params[0], range, false);
  }
  g.invalidate();
}

RangeMap normalize_activations(Graph& g, const RangeMap& measured, bool verbose) {
  // Ranges of the nodes that set a scale: the Input and the Scaling nodes.
  RangeMap range;
  for (const Node& n : g.nodes()) {
    if (!n.is(OpKind::Input) && !n.is(OpKind::Scaling)) continue;
    auto it = measured.find(n.name);
    if (it == measured.end()) throw ValueError("normalize_activations: no range for " + n.label());
    if (!(it->second >= 0.f) || !std::isfinite(it->second))
      throw ValueError("normalize_activations: the range of " + n.label() + " is " + std::to_string(it->second) +
                       "; ranges are max |x| over the calibration set: finite and >= 0");
    range[n.name] = it->second > 0.f ? it->second : 1.f;  // a dead tensor (range 0) keeps scale 1
  }

  // Scale of every node output, derived from the ranges; joins raise the ranges of their
  // smaller branches to the largest one (max arbitration) until nothing changes. Raising a
  // branch whose codes are also read elsewhere (the Input, a block input feeding a conv and a
  // residual Add) coarsens them for those readers too: by more than kMaxSharedRaise, a Scaling
  // node on the join's input edge rescales them for the join alone instead (one more rounding
  // on that edge, none for the others).
  constexpr float kMaxSharedRaise = 2.f;
  std::map<std::string, float> scale;
  // Channel-stacking joins (Concat on the channels): the scale of each output channel, that of
  // the input it comes from; the Scaling node after the join rescales channel by channel.
  std::map<std::string, std::vector<float>> channel_scales;
  const auto stacks_channels = [&](const Node& n) {
    const auto users = g.consumers(n.name);
    return n.satisfies(&OpTraits::stacks_channels) && users.size() == 1 && g.node(users[0]).is(OpKind::Scaling) &&
           !g.is_output(n.name);
  };
  std::function<std::string(const std::string&)> scale_source = [&](const std::string& name) {
    const Node& n = g.node(name);
    if (n.is(OpKind::Input) || n.is(OpKind::Scaling)) return name;
    if (n.traits().keeps_codes) return scale_source(n.inputs[0]);
    throw GraphError("max arbitration: no Scaling node above " + n.label());
  };
  // Whether the codes reaching a join through `name` are read by anything else on the way up.
  const auto shared = [&](std::string name) {
    for (;;) {
      const Node& n = g.node(name);
      if (n.is(OpKind::Input) || g.consumers(name).size() > 1 || g.is_output(name)) return true;
      if (n.is(OpKind::Scaling)) return false;
      name = n.inputs[0];
    }
  };
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<std::pair<std::string, size_t>> rescaled_edges;  // (join, input index)
    for (const Node& n : g.nodes()) {
      if (n.is(OpKind::Input) || n.is(OpKind::Scaling)) {
        scale[n.name] = range[n.name];
      } else if (n.quant.island) {
        scale[n.name] = 1.f;  // computes real values from its dequantized inputs
      } else if (n.traits().multiplies_scales) {
        scale[n.name] = scale[n.inputs[0]] * scale[n.inputs[1]];
      } else if (stacks_channels(n)) {
        // An input that only this join reads is quantized at the join's output range directly
        // (one rounding, its channels then pass the Scaling node at factor 1); one read
        // elsewhere too keeps its own scale and is rescaled by the Scaling node.
        const float out_range = range[g.consumers(n.name)[0]];
        std::vector<float>& per_channel = channel_scales[n.name];
        per_channel.clear();
        float top = 0.f;
        for (const auto& in : n.inputs) {
          if (scale[in] < out_range && !shared(in)) {
            const std::string src = scale_source(in);
            if (verbose)
              std::printf("channel stacking at %s: %s range %.6g -> %.6g\n", n.label().c_str(), src.c_str(),
                          range[src], out_range);
            range[src] = out_range;
            changed = true;
          }
          top = std::max(top, scale[in]);
          per_channel.insert(per_channel.end(), static_cast<size_t>(g.node(in).shape.at(0)), scale[in]);
        }
        scale[n.name] = top;
      } else if (n.traits().join) {
        float top = 0.f;
        for (const auto& in : n.inputs) top = std::max(top, scale[in]);
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          const std::string& in = n.inputs[i];
          if (scale[in] == top) continue;
          if (top > kMaxSharedRaise * scale[in] && shared(in)) {
            rescaled_edges.emplace_back(n.name, i);
            continue;
          }
          const std::string src = scale_source(in);
          if (verbose)
            std::printf("max arbitration at %s: %s range %.6g -> %.6g\n", n.label().c_str(),
                        src.c_str(), range[src], top);
          range[src] = top;
          changed = true;
        }
        scale[n.name] = top;
      } else if (!n.inputs.empty()) {
        scale[n.name] = scale[n.inputs[0]];  // affine, pools, scale-keeping and float ops
      }
    }
    for (const auto& [join, i] : rescaled_edges) {
      const std::string in = g.node(join).inputs[i];
      Node s;
      s.name = g.unique_name(join + "_input" + std::to_string(i) + "_rescale");
      s.kind = OpKind::Scaling;
      s.inputs = {in};
      s.params = {Tensor(DType::F32, {g.node(in).shape.empty() ? 1 : g.node(in).shape[0]})};
      for (int64_t c = 0; c < s.params[0].numel(); ++c) s.params[0].data<float>()[c] = 1.f;
      s.quant.is_unsigned = g.node(in).quant.is_unsigned;  // a positive factor keeps the sign
      s.quant.max_abs = scale[in];
      range[s.name] = scale[in];  // raised to the join's scale on the next round
      if (verbose)
        std::printf("max arbitration at %s: input %s (read elsewhere too) rescaled by %s\n",
                    g.node(join).label().c_str(), in.c_str(), s.name.c_str());
      const std::string name = s.name;
      g.add_node(std::move(s));
      g.node(join).inputs[i] = name;
      changed = true;
    }
    if (!rescaled_edges.empty()) g.finalize();
  }

  // Rewrite: biases to the accumulator unit (input scale), Scaling factors from the accumulator
  // unit to their output range, activation attributes (Clip bounds) into normalized units.
  for (Node& n : g.mutable_nodes()) {
    n.quant.range = scale[n.name];
    if (n.is(OpKind::Input) || n.inputs.empty()) continue;
    const float in_scale = scale[n.inputs[0]];
    if (n.traits().affine) {
      scale_channels(n.params[1], {in_scale}, true);
    } else if (n.is(OpKind::Scaling)) {
      const auto stacked = channel_scales.find(n.inputs[0]);
      std::vector<float> to_output{scale[n.inputs[0]]};
      if (stacked != channel_scales.end()) to_output = stacked->second;
      for (float& f : to_output) f /= range[n.name];
      scale_channels(n.params[0], to_output, false);
    }
    if (n.quant.island) continue;  // its attributes stay in real units
    for (const ActivationAttribute& a : n.traits().activation_attributes)
      n.set_attr(a.key, n.attr_float(a.key, a.absent) / in_scale);
  }
  g.invalidate();
  RangeMap used;
  for (const auto& [name, r] : range) used[name] = r;
  return used;
}

}  // namespace apl
