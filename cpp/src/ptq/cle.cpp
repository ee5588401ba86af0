// cross_layer_equalization: for consecutive affine layers A -> ... -> B, move a positive factor
// s_i from output channel i of A to input channel i of B. The ops between satisfy
// f(x / s) = f(x) / s channel by channel, so the function is unchanged while the weight ranges of
// A's output channels and B's input channels meet at sqrt(r1_i * r2_i).
#include "aidge_ptq_lite/cle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

namespace apl {
namespace {

constexpr int kMaxSweeps = 100;

// Where the weights of B that read channel c of A's output lie: for each row of the channel's
// group, `block` consecutive floats (a Conv's R*S taps, or the H*W features a Flatten made of c).
struct InputChannelLayout {
  int64_t rows_per_group, channels_per_group, row_length, block;

  template <class F> void for_each_block(Tensor& w, int64_t c, F visit) const {
    const int64_t group = c / channels_per_group, local = c % channels_per_group;
    for (int64_t row = group * rows_per_group; row < (group + 1) * rows_per_group; ++row)
      visit(w.data<float>() + row * row_length + local * block);
  }
};

struct LayerPair {
  std::string first, second;
  InputChannelLayout layout;
};

InputChannelLayout input_channel_layout(const Node& second, int64_t features_per_channel) {
  const Tensor& w = second.params[0];
  const int64_t rows = w.dim(0), row_length = w.numel() / rows;
  const bool conv = w.ndim() >= 3;  // 2-D, or 1-D windows
  const int64_t groups = conv ? second.attr_int("group", 1) : 1;
  const int64_t block = conv ? row_length / w.dim(1) : features_per_channel;
  return {rows / groups, row_length / block, row_length, block};
}

// The affine layer that `first`'s output reaches through homogeneous channel-wise ops alone,
// when every tensor on the way feeds nothing else (so scaling it changes nothing elsewhere).
std::optional<LayerPair> pair_starting_at(const Graph& g, const Node& first) {
  int64_t features_per_channel = 1;
  std::string tensor = first.name;
  for (;;) {
    const auto users = g.consumers(tensor);
    if (users.size() != 1 || g.is_output(tensor)) return std::nullopt;
    const Node& next = g.node(users[0]);
    if (next.inputs.size() != 1) return std::nullopt;
    if (next.traits().affine)
      return LayerPair{first.name, next.name, input_channel_layout(next, features_per_channel)};
    // Ops f with f(s * x) = s * f(x) for s > 0 that keep channel c of their input in channel c.
    if (!next.satisfies(&OpTraits::homogeneous)) return std::nullopt;
    const Shape& in = g.node(tensor).shape;
    if (next.shape.size() == 1 && in.size() >= 2)  // flattened: channel c is H*W (or L) features
      features_per_channel *= shape_numel(in) / in.at(0);
    tensor = next.name;
  }
}

std::vector<float> output_channel_ranges(const Tensor& w) {
  const int64_t channels = w.dim(0), row_length = w.numel() / channels;
  std::vector<float> r(channels, 0.f);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < row_length; ++i)
      r[c] = std::max(r[c], std::fabs(w.data<float>()[c * row_length + i]));
  return r;
}

std::vector<float> input_channel_ranges(Tensor& w, const InputChannelLayout& layout, int64_t channels) {
  std::vector<float> r(channels, 0.f);
  for (int64_t c = 0; c < channels; ++c)
    layout.for_each_block(w, c, [&](const float* p) {
      for (int64_t i = 0; i < layout.block; ++i) r[c] = std::max(r[c], std::fabs(p[i]));
    });
  return r;
}

// max / min of the non-zero channel ranges (1 for a single or empty channel set).
double spread(const std::vector<float>& r) {
  float lo = 0.f, hi = 0.f;
  for (float v : r)
    if (v > 0.f) {
      lo = lo == 0.f ? v : std::min(lo, v);
      hi = std::max(hi, v);
    }
  return lo > 0.f ? static_cast<double>(hi) / lo : 1.0;
}

// One equalization step of a pair; returns max |s_i - 1|.
float equalize(Graph& g, const LayerPair& pair) {
  Node& first = g.node(pair.first);
  Tensor& w1 = first.params[0];
  Tensor& w2 = g.node(pair.second).params[0];
  const int64_t channels = w1.dim(0), row_length = w1.numel() / channels;
  const std::vector<float> r1 = output_channel_ranges(w1);
  const std::vector<float> r2 = input_channel_ranges(w2, pair.layout, channels);
  float change = 0.f;
  for (int64_t c = 0; c < channels; ++c) {
    // A dead channel on either side has nothing to balance (and would give s = 0 or inf).
    if (!(r1[c] > 0.f && r2[c] > 0.f) || !std::isfinite(r1[c]) || !std::isfinite(r2[c])) continue;
    const float s = std::sqrt(r1[c] / r2[c]);
    for (int64_t i = 0; i < row_length; ++i) w1.data<float>()[c * row_length + i] /= s;
    first.params[1].data<float>()[c] /= s;
    pair.layout.for_each_block(w2, c, [&](float* p) {
      for (int64_t i = 0; i < pair.layout.block; ++i) p[i] *= s;
    });
    change = std::max(change, std::fabs(s - 1.f));
  }
  return change;
}

void check_prepared(const Graph& g) {
  if (g.is_quantized()) throw ValueError("cross_layer_equalization: the graph is already quantized");
  for (const Node& n : g.nodes()) {
    if (n.is(OpKind::Scaling))
      throw GraphError("cross_layer_equalization must run before insert_scaling_nodes (found " + n.label() +
                       ")");
    if (n.traits().affine && (n.params.size() != 2 || (n.is(OpKind::Gemm) && n.attr_int("transB", 0) != 1)))
      throw GraphError("cross_layer_equalization: " + n.label() +
                       " is not in canonical form; run prepare_network first");
  }
}

// Spread of A's output-channel ranges and of B's input-channel ranges.
std::pair<double, double> pair_spreads(Graph& g, const LayerPair& pair) {
  const Tensor& w1 = g.node(pair.first).params[0];
  return {spread(output_channel_ranges(w1)),
          spread(input_channel_ranges(g.node(pair.second).params[0], pair.layout, w1.dim(0)))};
}

}  // namespace

std::vector<std::string> cross_layer_equalization(Graph& g, float target_delta, bool verbose) {
  if (!(target_delta > 0.f)) throw ValueError("cross_layer_equalization: target_delta must be > 0");
  check_prepared(g);
  std::vector<LayerPair> pairs;
  for (const Node& n : g.nodes())
    if (n.traits().affine)
      if (auto pair = pair_starting_at(g, n)) pairs.push_back(*pair);

  std::vector<std::pair<double, double>> before;
  if (verbose)
    for (const LayerPair& pair : pairs) before.push_back(pair_spreads(g, pair));
  int sweeps = 0;
  float change = 0.f;
  do {
    change = 0.f;
    for (const LayerPair& pair : pairs) change = std::max(change, equalize(g, pair));
  } while (++sweeps < kMaxSweeps && change >= target_delta);

  std::vector<std::string> names;
  for (size_t i = 0; i < pairs.size(); ++i) {
    names.push_back(pairs[i].first + " -> " + pairs[i].second);
    if (!verbose) continue;
    const auto after = pair_spreads(g, pairs[i]);
    std::printf("CLE %s: range spread (max/min) of output channels %.3g -> %.3g, "
                "of input channels %.3g -> %.3g\n",
                names.back().c_str(), before[i].first, after.first, before[i].second, after.second);
  }
  if (verbose)
    std::printf("CLE: %zu pair(s), %d sweep(s), last max |s - 1| = %.3g\n", pairs.size(), sweeps, change);
  return names;
}

}  // namespace apl
