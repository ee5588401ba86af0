// Cross-layer equalization (function kept, ranges balanced, which pairs) and the sign map (known
// answers on small graphs).
#include <gtest/gtest.h>

#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "aidge_ptq_lite/cle.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/sign_map.hpp"

using namespace apl;
using apl::test::input_node;
constexpr auto make = apl::test::make_node;

namespace {


// Normal weights whose output channel k is multiplied by channel_scale[k % size]: badly balanced.
Tensor random_weights(Shape shape, std::mt19937& rng, const std::vector<float>& channel_scale = {1.f}) {
  Tensor t(DType::F32, shape);
  std::normal_distribution<float> normal(0.f, 1.f);
  const int64_t per_channel = t.numel() / shape[0];
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = normal(rng) * channel_scale[(i / per_channel) % channel_scale.size()];
  return t;
}

Node conv(const std::string& name, const std::string& input, Tensor w, std::mt19937& rng, int64_t group = 1) {
  Node n = make(name, "Conv", {input});
  const int64_t pad = w.dim(2) / 2;
  n.set_attr("pads", std::vector<int64_t>{pad, pad, pad, pad});
  n.set_attr("group", group);
  n.params = {w, random_weights({w.dim(0)}, rng)};
  return n;
}

Node gemm(const std::string& name, const std::string& input, Tensor w, std::mt19937& rng) {
  Node n = make(name, "Gemm", {input});
  n.set_attr("transB", int64_t{1});
  n.params = {w, random_weights({w.dim(0)}, rng)};
  return n;
}

Tensor random_input(Shape per_sample, int64_t batch, std::mt19937& rng) {
  per_sample.insert(per_sample.begin(), batch);
  return random_weights(per_sample, rng);
}

double relative_difference(const Tensor& a, const Tensor& b) {
  double diff = 0.0, ref = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
    ref = std::max(ref, static_cast<double>(std::fabs(b.data<float>()[i])));
  }
  return diff / ref;
}

// max |W[k, ...]| per output channel k.
std::vector<float> output_ranges(const Tensor& w) {
  const int64_t K = w.dim(0), inner = w.numel() / K;
  std::vector<float> r(K, 0.f);
  for (int64_t i = 0; i < w.numel(); ++i) {
    float& range = r[i / inner];
    range = std::max(range, std::fabs(w.data<float>()[i]));
  }
  return r;
}

// max |W[:, c, ...]| per input channel c of a non-grouped Conv.
std::vector<float> input_ranges(const Tensor& w) {
  const int64_t C = w.dim(1), inner = w.numel() / (w.dim(0) * C);
  std::vector<float> r(C, 0.f);
  for (int64_t i = 0; i < w.numel(); ++i) {
    float& range = r[(i / inner) % C];
    range = std::max(range, std::fabs(w.data<float>()[i]));
  }
  return r;
}

// Runs CLE and checks the float function did not change.
std::vector<std::string> equalize_keeping_function(Graph& g, const Shape& input_shape, std::mt19937& rng) {
  const Tensor x = random_input(input_shape, 4, rng);
  const Tensor before = g.forward(x)[0].clone();
  const auto pairs = cross_layer_equalization(g);
  EXPECT_LT(relative_difference(g.forward(x)[0], before), 1e-5);
  return pairs;
}

}  // namespace

TEST(Cle, ConvReluConvRangesBecomeEqual) {
  std::mt19937 rng(1);
  Graph g;
  g.add_node(input_node({2, 6, 6}));
  g.add_node(conv("conv1", "x", random_weights({4, 2, 3, 3}, rng, {0.01f, 1.f, 30.f, 0.2f}), rng));
  g.add_node(make("relu", "Relu", {"conv1"}));
  g.add_node(conv("conv2", "relu", random_weights({3, 4, 3, 3}, rng), rng));
  g.set_outputs({"conv2"});
  g.finalize();

  EXPECT_EQ(equalize_keeping_function(g, {2, 6, 6}, rng), std::vector<std::string>{"conv1 -> conv2"});
  const auto r1 = output_ranges(g.node("conv1").params[0]), r2 = input_ranges(g.node("conv2").params[0]);
  for (size_t c = 0; c < r1.size(); ++c) EXPECT_NEAR(r1[c] / r2[c], 1.f, 1e-5f) << "channel " << c;
}

TEST(Cle, DepthwiseLayerTakesPartInTwoPairs) {
  std::mt19937 rng(2);
  Graph g;
  g.add_node(input_node({3, 5, 5}));
  g.add_node(conv("expand", "x", random_weights({6, 3, 1, 1}, rng, {0.05f, 4.f, 1.f}), rng));
  g.add_node(make("relu1", "Relu", {"expand"}));
  g.add_node(conv("depthwise", "relu1", random_weights({6, 1, 3, 3}, rng, {10.f, 0.1f}), rng, 6));
  g.add_node(make("relu2", "Relu", {"depthwise"}));
  g.add_node(conv("project", "relu2", random_weights({4, 6, 1, 1}, rng), rng));
  g.set_outputs({"project"});
  g.finalize();

  EXPECT_EQ(equalize_keeping_function(g, {3, 5, 5}, rng),
            (std::vector<std::string>{"expand -> depthwise", "depthwise -> project"}));
  // At convergence both pairs are balanced to within the last (small) steps. A depthwise layer
  // reads input channel c with its row c only, so its input ranges are its output ranges.
  const auto expand = output_ranges(g.node("expand").params[0]);
  const auto depthwise = output_ranges(g.node("depthwise").params[0]);
  const auto project = input_ranges(g.node("project").params[0]);
  for (size_t c = 0; c < expand.size(); ++c) {
    EXPECT_NEAR(expand[c] / depthwise[c], 1.f, 0.05f) << "channel " << c;
    EXPECT_NEAR(depthwise[c] / project[c], 1.f, 0.05f) << "channel " << c;
  }
}

TEST(Cle, ResidualBranchPairButNotAcrossTheJoin) {
  std::mt19937 rng(3);
  Graph g;
  g.add_node(input_node({4, 4, 4}));
  g.add_node(conv("stem", "x", random_weights({4, 4, 3, 3}, rng), rng));
  g.add_node(make("stem_relu", "Relu", {"stem"}));  // feeds the branch and the shortcut
  g.add_node(conv("branch1", "stem_relu", random_weights({4, 4, 3, 3}, rng, {0.1f, 3.f}), rng));
  g.add_node(make("branch_relu", "Relu", {"branch1"}));
  g.add_node(conv("branch2", "branch_relu", random_weights({4, 4, 3, 3}, rng), rng));
  g.add_node(make("add", "Add", {"branch2", "stem_relu"}));
  g.add_node(make("out_relu", "Relu", {"add"}));
  g.add_node(conv("head", "out_relu", random_weights({2, 4, 1, 1}, rng), rng));
  g.set_outputs({"head"});
  g.finalize();

  EXPECT_EQ(equalize_keeping_function(g, {4, 4, 4}, rng), std::vector<std::string>{"branch1 -> branch2"});
}

TEST(Cle, FlattenSpreadsAChannelOverItsFeatures) {
  std::mt19937 rng(4);
  Graph g;
  g.add_node(input_node({1, 6, 6}));
  g.add_node(conv("conv", "x", random_weights({3, 1, 3, 3}, rng, {0.02f, 1.f, 8.f}), rng));
  g.add_node(make("relu", "Relu", {"conv"}));
  Node pool = make("pool", "MaxPool", {"relu"});
  pool.set_attr("kernel_shape", std::vector<int64_t>{2, 2});
  pool.set_attr("strides", std::vector<int64_t>{2, 2});
  g.add_node(pool);
  g.add_node(make("flatten", "Flatten", {"pool"}));
  g.add_node(gemm("fc", "flatten", random_weights({5, 27}, rng), rng));
  g.set_outputs({"fc"});
  g.finalize();

  EXPECT_EQ(equalize_keeping_function(g, {1, 6, 6}, rng), std::vector<std::string>{"conv -> fc"});
  const auto r1 = output_ranges(g.node("conv").params[0]);
  const Tensor& fc = g.node("fc").params[0];
  for (int64_t c = 0; c < 3; ++c) {
    float r2 = 0.f;
    for (int64_t m = 0; m < 5; ++m)
      for (int64_t f = 0; f < 9; ++f) r2 = std::max(r2, std::fabs(fc.data<float>()[m * 27 + c * 9 + f]));
    EXPECT_NEAR(r1[c] / r2, 1.f, 1e-5f) << "channel " << c;
  }
}

TEST(Cle, RejectsUnpreparedGraphsAndBadDelta) {
  std::mt19937 rng(5);
  Graph g;
  g.add_node(input_node({4}));
  g.add_node(gemm("fc1", "x", random_weights({3, 4}, rng), rng));
  g.add_node(make("relu", "Relu", {"fc1"}));
  g.add_node(gemm("fc2", "relu", random_weights({2, 3}, rng), rng));
  g.set_outputs({"fc2"});
  g.finalize();
  EXPECT_THROW(cross_layer_equalization(g, 0.f), ValueError);
  Graph with_scaling = g.clone();
  insert_scaling_nodes(with_scaling);
  EXPECT_THROW(cross_layer_equalization(with_scaling), GraphError);
  g.node("fc2").set_attr("transB", int64_t{0});
  EXPECT_THROW(cross_layer_equalization(g), GraphError);
}

// ---- sign map ------------------------------------------------------------------------------------

namespace {

using SignMap = std::map<std::string, std::pair<bool, bool>>;

SignMap signs_after_scaling(Graph& g) {
  prepare_network(g);
  insert_scaling_nodes(g);
  return compute_sign_map(g);
}

}  // namespace

TEST(SignMap, ReluChainIsUnsignedFromTheFirstScaler) {
  std::mt19937 rng(6);
  Graph g;
  g.add_node(input_node({2, 4, 4}));
  g.add_node(conv("conv1", "x", random_weights({3, 2, 3, 3}, rng), rng));
  g.add_node(make("relu1", "Relu", {"conv1"}));
  g.add_node(conv("conv2", "relu1", random_weights({3, 3, 3, 3}, rng), rng));
  g.add_node(make("relu2", "Relu", {"conv2"}));
  g.set_outputs({"relu2"});
  g.finalize();
  const SignMap s = signs_after_scaling(g);
  EXPECT_EQ(s.at("x"), std::make_pair(false, false));
  EXPECT_EQ(s.at("conv1"), std::make_pair(false, false));
  EXPECT_EQ(s.at("conv1_scaling"), std::make_pair(false, true));  // clamps at zero for relu1
  EXPECT_EQ(s.at("relu1"), std::make_pair(true, true));
  EXPECT_EQ(s.at("conv2"), std::make_pair(true, false));
  EXPECT_EQ(s.at("relu2"), std::make_pair(true, true));
}

TEST(SignMap, ConcatOfMixedBranchesForcesTheUnsignedSourceSigned) {
  std::mt19937 rng(7);
  Graph g;
  g.add_node(input_node({2, 4, 4}));
  g.add_node(conv("a", "x", random_weights({3, 2, 3, 3}, rng), rng));
  g.add_node(make("a_relu", "Relu", {"a"}));
  g.add_node(make("a_pool", "MaxPool", {"a_relu"}));
  g.node("a_pool").set_attr("kernel_shape", std::vector<int64_t>{1, 1});
  g.add_node(conv("b", "x", random_weights({3, 2, 3, 3}, rng), rng));
  Node cat = make("cat", "Concat", {"a_pool", "b"});
  cat.set_attr("axis", int64_t{1});
  g.add_node(cat);
  g.set_outputs({"cat"});
  g.finalize();
  const SignMap s = signs_after_scaling(g);
  for (const char* name : {"a_scaling", "a_relu", "a_pool", "b_scaling", "cat", "cat_scaling"})
    EXPECT_FALSE(s.at(name).second) << name;
  EXPECT_FALSE(s.at("cat").first);
}

TEST(SignMap, AddOfReluBranchesAndScalerAfterItStayUnsigned) {
  std::mt19937 rng(8);
  Graph g;
  g.add_node(input_node({2, 4, 4}));
  for (const std::string b : {"a", "b"}) {
    g.add_node(conv(b, "x", random_weights({3, 2, 3, 3}, rng), rng));
    g.add_node(make(b + "_relu", "Relu", {b}));
  }
  g.add_node(make("add", "Add", {"a_relu", "b_relu"}));
  g.add_node(make("gap", "GlobalAveragePool", {"add"}));
  g.set_outputs({"gap"});
  g.finalize();
  const SignMap s = signs_after_scaling(g);
  EXPECT_EQ(s.at("add"), std::make_pair(true, true));
  EXPECT_EQ(s.at("add_scaling"), std::make_pair(true, true));
  EXPECT_EQ(s.at("gap"), std::make_pair(true, true));
  EXPECT_EQ(s.at("gap_scaling"), std::make_pair(true, true));
}

TEST(SignMap, ScalerWithAnotherConsumerThanReluStaysSigned) {
  std::mt19937 rng(9);
  Graph g;
  g.add_node(input_node({2, 4, 4}));
  g.add_node(conv("conv", "x", random_weights({2, 2, 3, 3}, rng), rng));
  g.add_node(make("relu", "Relu", {"conv"}));
  g.add_node(make("sub", "Sub", {"relu", "conv"}));
  g.set_outputs({"sub"});
  g.finalize();
  const SignMap s = signs_after_scaling(g);
  EXPECT_FALSE(s.at("conv_scaling").second);
  EXPECT_FALSE(s.at("relu").second);  // its codes are the signed codes of conv_scaling
  EXPECT_FALSE(s.at("sub").second);
}
