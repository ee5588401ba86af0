// Build a small network in C++, quantize it to 8 bits and run it in integers.
// (Python users load ONNX with aidge_ptq_lite.load_onnx; the C++ API takes graphs built in code.)
#include <aidge_ptq_lite/graph.hpp>
#include <aidge_ptq_lite/ptq.hpp>

#include <cmath>
#include <cstdio>
#include <random>

using namespace apl;

static Tensor random_tensor(Shape shape, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, scale);
  Tensor t(DType::F32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = normal(rng);
  return t;
}

int main() {
  std::mt19937 rng(0);
  Graph g;
  Node input;
  input.name = "x";
  input.kind = apl::OpKind::Input;
  input.shape = {3, 16, 16};
  g.add_node(input);
  Node conv;
  conv.name = "conv";
  conv.kind = apl::OpKind::Conv;
  conv.inputs = {"x"};
  conv.set_attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.params = {random_tensor({8, 3, 3, 3}, 0.3f, rng), random_tensor({8}, 0.1f, rng)};
  g.add_node(conv);
  Node relu;
  relu.name = "relu";
  relu.kind = apl::OpKind::Relu;
  relu.inputs = {"conv"};
  g.add_node(relu);
  Node pool;
  pool.name = "pool";
  pool.kind = apl::OpKind::GlobalAveragePool;
  pool.inputs = {"relu"};
  g.add_node(pool);
  g.set_outputs({"pool"});
  g.finalize();

  const Tensor x = random_tensor({16, 3, 16, 16}, 1.f, rng);
  const Tensor reference = g.forward(x)[0];

  QuantizeOptions options;  // 8 bits, MAX clipping
  options.clipping_mode = "MSE";
  bool given = false;  // calibration: one batch here; the source is called until it returns false
  quantize_network(g, [&](Tensor& batch) {
    if (given) return false;
    batch = x;
    return given = true;
  }, options);

  const Tensor y = g.forward(x)[0];
  double worst = 0, peak = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    worst = std::max(worst, std::fabs(double(y.data<float>()[i]) - reference.data<float>()[i]));
    peak = std::max(peak, std::fabs(double(reference.data<float>()[i])));
  }
  std::printf("%s\nint8 vs float: max |diff| / max |y| = %.4f\n", g.summary().c_str(), worst / peak);
  return worst / peak < 0.05 ? 0 : 1;
}
