// prepare_network and quantizability_report: bring a float graph to the canonical form the
// other passes expect, and say which nodes can run in integers.
#include <cmath>
#include <set>
#include <sstream>

#include "../ops/op_parts.hpp"
#include "aidge_ptq_lite/ptq.hpp"

namespace apl {
namespace {

// Gemm as y = x * W^T + b with W (M, K) and b (M): transB=1, alpha and beta folded.
void canonicalize_gemm(Node& n) {
  Tensor b = n.params.at(0);
  const bool trans_b = n.attr_int("transB", 0) != 0;
  const float alpha = n.attr_float("alpha", 1.f), beta = n.attr_float("beta", 1.f);
  const int64_t M = trans_b ? b.dim(0) : b.dim(1), K = trans_b ? b.dim(1) : b.dim(0);
  Tensor w(DType::F32, {M, K});
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)
      w.data<float>()[m * K + k] = alpha * b.data<float>()[trans_b ? m * K + k : k * M + m];
  Tensor bias(DType::F32, {M});
  if (n.params.size() > 1)
    for (int64_t m = 0; m < M; ++m)
      bias.data<float>()[m] = beta * n.params[1].data<float>()[n.params[1].numel() == 1 ? 0 : m];
  n.params = {w, bias};
  n.kind = OpKind::Gemm;
  n.attrs.clear();
  n.set_attr("transB", int64_t{1});
}

void ensure_conv_bias(Node& n) {
  if (n.params.size() < 2) n.params.push_back(Tensor(DType::F32, {n.params[0].dim(0)}));
  n.params[0] = n.params[0].clone();  // never edit tensors shared with a model the user holds
  n.params[1] = n.params[1].clone();
}

// Per-channel affine y = a[c] * x + b[c] of an inference BatchNorm.
void batchnorm_coefficients(const Node& bn, std::vector<float>& a, std::vector<float>& b) {
  const float eps = bn.attr_float("epsilon", 1e-5f);
  const int64_t C = bn.params[0].numel();
  a.resize(C);
  b.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    const float gamma = bn.params[0].data<float>()[c], beta = bn.params[1].data<float>()[c];
    const float mean = bn.params[2].data<float>()[c], var = bn.params[3].data<float>()[c];
    a[c] = gamma / std::sqrt(var + eps);
    b[c] = beta - mean * a[c];
  }
}

// A constant Add / Sub / Mul / Div as y = a[c] * x + b[c], when its constant is a scalar or one
// value per channel (axis 1) and the output has the data's shape; false otherwise (a full-shape
// constant stays a float island).
bool constant_operand_coefficients(const Graph& g, const Node& n, std::vector<float>& a, std::vector<float>& b) {
  const bool add = n.is(OpKind::Add), sub = n.is(OpKind::Sub), mul = n.is(OpKind::Mul), div = n.is(OpKind::Div);
  if (!(add || sub || mul || div) || n.params.size() != 1 || n.inputs.size() != 1) return false;
  if (n.shape.empty() || g.node(n.inputs[0]).shape != n.shape) return false;
  const int64_t const_index = n.attr_int("const_index", 1);
  if (div && const_index == 0) return false;  // c / x
  const Tensor& k = n.params[0];
  const int64_t C = n.shape[0];
  const size_t rank = n.shape.size() + 1, kr = k.shape().size();
  if (k.numel() != 1) {
    if (kr > rank) return false;
    for (size_t j = 0; j < kr; ++j)
      if (k.dim(static_cast<int>(j)) != (j + rank - kr == 1 ? C : 1)) return false;
  }
  a.assign(C, 1.f);
  b.assign(C, 0.f);
  for (int64_t c = 0; c < C; ++c) {
    const float v = k.data<float>()[k.numel() == 1 ? 0 : c];
    if (add) {
      b[c] = v;
    } else if (sub && const_index == 1) {  // x - v
      b[c] = -v;
    } else if (sub) {  // v - x
      a[c] = -1.f;
      b[c] = v;
    } else {
      a[c] = mul ? v : 1.f / v;
    }
  }
  return true;
}

// Into the Conv/Gemm before it: output channel k (weights row k, bias k) becomes a[k] x + b[k].
void fold_affine_into(Node& affine, const std::vector<float>& a, const std::vector<float>& b) {
  Tensor& w = affine.params[0];
  const int64_t K = w.dim(0), per_channel = w.numel() / K;
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t i = 0; i < per_channel; ++i) w.data<float>()[k * per_channel + i] *= a[k];
    float& bias = affine.params[1].data<float>()[k];
    bias = bias * a[k] + b[k];
  }
}

// A per-channel affine that follows no Conv/Gemm, on a 4-D tensor: a depthwise 1x1 Conv (scale
// as weight, shift as bias), quantized like any Conv.
Node per_channel_affine_as_depthwise_conv(const Node& op, const std::vector<float>& a, const std::vector<float>& b) {
  const int64_t C = static_cast<int64_t>(a.size());
  Node conv;
  conv.name = op.name;
  conv.kind = OpKind::Conv;
  conv.inputs = op.inputs;
  conv.set_attr("group", C);
  conv.set_attr("kernel_shape", std::vector<int64_t>{1, 1});
  Tensor w(DType::F32, {C, 1, 1, 1}), bias(DType::F32, {C});
  for (int64_t c = 0; c < C; ++c) {
    w.data<float>()[c] = a[c];
    bias.data<float>()[c] = b[c];
  }
  conv.params = {w, bias};
  return conv;
}

// A ReduceMean over (H, W) of a 4-D tensor: a global average pool (and a Flatten without keepdims).
bool is_spatial_mean(const Graph& g, const Node& n) {
  if (!n.is(OpKind::ReduceMean) || g.node(n.inputs[0]).shape.size() != 3) return false;
  const std::vector<bool> axes = reduced_axes(n, 4);
  return axes == std::vector<bool>{false, false, true, true};
}

void spatial_mean_as_global_pool(Graph& g, const std::string& name) {
  const Node mean = g.node(name);
  const bool keep = mean.attr_int("keepdims", 1) != 0;
  Node pool;
  pool.name = keep ? name : g.unique_name(name + "_pool");
  pool.kind = OpKind::GlobalAveragePool;
  pool.inputs = mean.inputs;
  if (keep) {
    g.replace(name, pool);
    return;
  }
  // Each edit re-infers shapes: the Flatten goes in first (a no-op on the flat mean), so that
  // consumers never see the pool's (C, 1, 1); then it takes the ReduceMean's name (graph outputs
  // keep their names).
  Node flatten;
  flatten.name = g.unique_name(name + "_flatten");
  flatten.kind = OpKind::Flatten;
  g.insert_after(name, flatten);
  g.replace(name, pool);
  Node renamed = g.node(flatten.name);
  renamed.name = name;
  g.replace(flatten.name, renamed);
}

}  // namespace

void prepare_network(Graph& g) {
  if (g.is_quantized()) throw ValueError("prepare_network: the graph is already quantized");
  std::vector<std::string> names;
  for (const Node& n : g.nodes()) names.push_back(n.name);

  for (const std::string& name : names) {
    Node& n = g.node(name);
    if (n.traits().removed_by_prepare) {
      g.remove(name);
    } else if (n.is(OpKind::MatMul) && g.node(n.inputs[0]).shape.size() == 1) {
      Node gemm = n;
      canonicalize_gemm(gemm);
      g.replace(name, gemm);
    } else if (n.is(OpKind::Gemm)) {
      canonicalize_gemm(n);
    } else if (n.is(OpKind::Conv) || n.is(OpKind::ConvTranspose)) {
      ensure_conv_bias(n);
    } else if (is_spatial_mean(g, n)) {
      spatial_mean_as_global_pool(g, name);
    }
  }
  // Per-channel affine ops (BatchNormalization, a constant Add / Sub / Mul / Div per channel or
  // scalar): folded into the Conv/Gemm before them when they are its sole consumer (exact), else a
  // depthwise 1x1 Conv on a 4-D tensor; anything else stays a float island.
  for (const std::string& name : names) {
    if (!g.contains(name)) continue;
    const Node op = g.node(name);
    std::vector<float> a, b;
    if (op.traits().folds_into_affine) batchnorm_coefficients(op, a, b);
    else if (!constant_operand_coefficients(g, op, a, b)) continue;
    const std::string producer = op.inputs[0];
    const Node& p = g.node(producer);
    if (p.traits().affine && p.params.size() == 2 && p.params[0].dim(0) == static_cast<int64_t>(a.size()) &&
        g.consumers(producer).size() == 1 && !g.is_output(producer)) {
      fold_affine_into(g.node(producer), a, b);
      g.remove(name);
    } else if (op.shape.size() == 3) {
      g.replace(name, per_channel_affine_as_depthwise_conv(op, a, b));
    }
  }
  g.finalize();
}

// ---- quantizability ------------------------------------------------------------------------------

QuantizabilityReport quantizability_report(const Graph& g) {
  // Why a node has no integer form: a float-only op, or a blocker of its op for this node.
  const auto no_integer_form = [](const Node& n) -> std::string {
    const OpTraits& t = n.traits();
    const std::string blocker = t.quantization_blocker ? t.quantization_blocker(n) : "";
    if (!blocker.empty()) return blocker;
    return t.float_only ? "no integer form" : "";
  };
  QuantizabilityReport r;
  // Such a node is kept float when everything after it is float too (or an output): the float
  // tail, run after the output dequantization. Views between such nodes go with them.
  std::set<std::string> float_tail;
  for (auto it = g.nodes().rbegin(); it != g.nodes().rend(); ++it) {
    const Node& n = *it;
    if (n.is(OpKind::Input) || n.is(OpKind::Scaling)) continue;
    const bool float_node = !no_integer_form(n).empty();
    if (!float_node && !n.traits().view) continue;
    bool tail = true;
    for (const std::string& c : g.consumers(n.name)) tail = tail && float_tail.count(c);
    if (tail && (float_node || !g.consumers(n.name).empty())) float_tail.insert(n.name);
  }
  // Anywhere else it is a float island: dequantize, float op, quantize.
  for (const Node& n : g.nodes()) {
    const std::string reason = no_integer_form(n);
    if (float_tail.count(n.name)) {
      r.kept_float.push_back(n.name);
    } else if (reason.empty()) {
      r.quantized.push_back(n.name);
    } else if (!n.traits().float_kernel) {
      r.unsupported.push_back(n.label() + ": " + reason + ", and no float kernel");
    } else {
      r.islands.push_back(n.name);
      r.island_reasons.push_back(n.label() + ": " + reason);
    }
  }
  return r;
}

std::string QuantizabilityReport::text() const {
  std::ostringstream os;
  os << quantized.size() << " node(s) quantized, " << kept_float.size() << " kept in float, "
     << islands.size() << " float island(s), " << unsupported.size() << " unsupported";
  if (!kept_float.empty()) {
    os << "\nkept in float:";
    for (const auto& n : kept_float) os << " " << n;
  }
  for (const auto& why : island_reasons) os << "\nfloat island (dequantize, float op, quantize): " << why;
  for (const auto& u : unsupported) os << "\nunsupported: " << u;
  return os.str();
}

}  // namespace apl
