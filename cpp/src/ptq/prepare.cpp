// prepare_network and quantizability_report: bring a float graph to the canonical form the
// other passes expect, and say which nodes can run in integers.
#include <cmath>
#include <set>
#include <sstream>

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

void fold_batchnorm_into(Node& affine, const Node& bn) {
  std::vector<float> a, b;
  batchnorm_coefficients(bn, a, b);
  Tensor& w = affine.params[0];
  const int64_t K = w.dim(0), per_channel = w.numel() / K;
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t i = 0; i < per_channel; ++i) w.data<float>()[k * per_channel + i] *= a[k];
    float& bias = affine.params[1].data<float>()[k];
    bias = bias * a[k] + b[k];
  }
}

Node batchnorm_as_depthwise_conv(const Node& bn) {
  std::vector<float> a, b;
  batchnorm_coefficients(bn, a, b);
  const int64_t C = static_cast<int64_t>(a.size());
  Node conv;
  conv.name = bn.name;
  conv.kind = OpKind::Conv;
  conv.inputs = bn.inputs;
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
    }
  }
  for (const std::string& name : names) {
    if (!g.contains(name) || !g.node(name).traits().folds_into_affine) continue;
    const Node bn = g.node(name);
    const std::string producer = bn.inputs[0];
    if (g.node(producer).traits().affine && g.consumers(producer).size() == 1 &&
        !g.is_output(producer)) {
      fold_batchnorm_into(g.node(producer), bn);
      g.remove(name);
    } else if (bn.shape.size() == 3) {
      g.replace(name, batchnorm_as_depthwise_conv(bn));
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
