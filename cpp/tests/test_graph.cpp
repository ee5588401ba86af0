// Graph IR: construction, topological order, edits, clone, shape inference and the float executor.
#include <gtest/gtest.h>

#include "aidge_ptq_lite/executor.hpp"
#include "test_support.hpp"

#include "aidge_ptq_lite/graph.hpp"

using namespace apl;
using apl::test::input_node;
constexpr auto make = apl::test::make_node;

namespace {


Tensor filled(Shape shape, float start, float step) {
  Tensor t(DType::F32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + step * static_cast<float>(i);
  return t;
}

// x -> relu -> add(relu, x) -> out
Graph small_residual() {
  Graph g;
  g.add_node(input_node({2, 3}));
  g.add_node(make("relu", "Relu", {"x"}));
  g.add_node(make("add", "Add", {"relu", "x"}));
  g.set_outputs({"add"});
  g.finalize();
  return g;
}

std::vector<std::string> order(const Graph& g) {
  std::vector<std::string> names;
  for (const Node& n : g.nodes()) names.push_back(n.name);
  return names;
}

}  // namespace

TEST(Graph, SortsTopologicallyWhateverTheInsertionOrder) {
  Graph g;
  g.add_node(make("add", "Add", {"relu", "x"}));
  g.add_node(make("relu", "Relu", {"x"}));
  g.add_node(input_node({4}));
  g.set_outputs({"add"});
  g.finalize();
  EXPECT_EQ(order(g), (std::vector<std::string>{"x", "relu", "add"}));
  EXPECT_EQ(g.node("add").shape, (Shape{4}));
}

TEST(Graph, CycleIsReportedWithItsNodes) {
  Graph g;
  g.add_node(input_node({4}));
  g.add_node(make("a", "Add", {"x", "b"}));
  g.add_node(make("b", "Relu", {"a"}));
  g.set_outputs({"b"});
  try {
    g.finalize();
    FAIL() << "cycle not detected";
  } catch (const GraphError& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos);
  }
}

TEST(Graph, MissingProducerAndDuplicateNames) {
  Graph g;
  g.add_node(input_node({4}));
  g.add_node(make("r", "Relu", {"nowhere"}));
  g.set_outputs({"r"});
  EXPECT_THROW(g.finalize(), GraphError);
  EXPECT_THROW(g.add_node(make("r", "Relu", {"x"})), GraphError);
}

TEST(Graph, UnsupportedOpNamesOpAndNode) {
  // The registry refuses an unknown op when the node is made, naming op, node and the set.
  try {
    make("weird", "Einsum", {"x"});
    FAIL();
  } catch (const UnsupportedError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Einsum (node 'weird')"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Conv"), std::string::npos);  // lists the supported set
  }
  EXPECT_THROW(op_kind("Relu", "com.example", "r"), UnsupportedError);  // custom domain
}

TEST(Graph, EveryOpKindHasOneRegistryRow) {
  for (int k = 0; k < static_cast<int>(OpKind::Count); ++k) {
    const OpTraits& t = op_traits(static_cast<OpKind>(k));
    EXPECT_EQ(static_cast<int>(t.kind), k);
    EXPECT_EQ(op_kind(t.name), t.kind) << t.name;
    if (t.kind != OpKind::Input) {
      EXPECT_NE(t.infer_shape, nullptr) << t.name;
      EXPECT_NE(t.float_kernel, nullptr) << t.name;
    }
    if (t.affine || t.join || t.multiplies_scales) EXPECT_TRUE(t.needs_scaling) << t.name;
    if (t.view) EXPECT_TRUE(t.keeps_codes) << t.name;
  }
}

TEST(Graph, InsertAfterRewiresConsumersAndOutputs) {
  Graph g = small_residual();
  g.insert_after("x", make("id", "Identity", {}));
  EXPECT_EQ(g.node("relu").inputs, (std::vector<std::string>{"id"}));
  EXPECT_EQ(g.node("add").inputs, (std::vector<std::string>{"relu", "id"}));
  g.insert_after("add", make("tail", "Identity", {}));
  EXPECT_EQ(g.outputs(), (std::vector<std::string>{"tail"}));
  EXPECT_EQ(order(g), (std::vector<std::string>{"x", "id", "relu", "add", "tail"}));
}

TEST(Graph, RemoveReconnectsAndReplaceKeepsConsumers) {
  Graph g = small_residual();
  g.insert_after("x", make("id", "Identity", {}));
  g.remove("id");
  EXPECT_EQ(g.node("add").inputs, (std::vector<std::string>{"relu", "x"}));
  EXPECT_FALSE(g.contains("id"));
  EXPECT_THROW(g.remove("add"), GraphError);  // two inputs

  g.replace("relu", make("sig", "Sigmoid", {"x"}));
  EXPECT_EQ(g.node("add").inputs, (std::vector<std::string>{"sig", "x"}));
  EXPECT_FALSE(g.contains("relu"));
  EXPECT_EQ(g.consumers("x"), (std::vector<std::string>{"sig", "add"}));
}

TEST(Graph, CloneSharesNoTensor) {
  Graph g;
  g.add_node(input_node({2}));
  Node mul = make("mul", "Mul", {"x"});
  mul.params.push_back(filled({2}, 1.f, 1.f));
  g.add_node(mul);
  g.set_outputs({"mul"});
  g.finalize();
  Graph c = g.clone();
  c.node("mul").params[0].data<float>()[0] = 100.f;
  EXPECT_EQ(g.node("mul").params[0].data<float>()[0], 1.f);
  EXPECT_EQ(c.node("mul").params[0].data<float>()[0], 100.f);
}

TEST(Graph, ForwardRunsAndChecksTheInputShape) {
  Graph g = small_residual();
  Tensor x = filled({2, 2, 3}, -3.f, 0.5f);
  Tensor y = g.forward(x)[0];
  ASSERT_EQ(y.shape(), (Shape{2, 2, 3}));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data<float>()[i];
    EXPECT_FLOAT_EQ(y.data<float>()[i], std::max(v, 0.f) + v);
  }
  EXPECT_THROW(g.forward(filled({2, 3, 2}, 0.f, 1.f)), ShapeError);
  EXPECT_THROW(g.forward(filled({2, 6}, 0.f, 1.f)), ShapeError);
}

TEST(Graph, ShapeInferenceOfWindowsAndDense) {
  Graph g;
  g.add_node(input_node({3, 8, 8}));
  Node conv = make("conv", "Conv", {"x"});
  conv.params.push_back(filled({4, 3, 3, 3}, 0.f, 0.01f));
  conv.set_attr("strides", std::vector<int64_t>{2, 2});
  conv.set_attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.add_node(conv);
  Node pool = make("pool", "MaxPool", {"conv"});
  pool.set_attr("kernel_shape", std::vector<int64_t>{2, 2});
  pool.set_attr("strides", std::vector<int64_t>{2, 2});
  g.add_node(pool);
  g.add_node(make("flat", "Flatten", {"pool"}));
  Node fc = make("fc", "Gemm", {"flat"});
  fc.params.push_back(filled({5, 16}, 0.f, 0.01f));
  fc.set_attr("transB", int64_t{1});
  g.add_node(fc);
  g.set_outputs({"fc"});
  g.finalize();
  EXPECT_EQ(g.node("conv").shape, (Shape{4, 4, 4}));
  EXPECT_EQ(g.node("pool").shape, (Shape{4, 2, 2}));
  EXPECT_EQ(g.node("flat").shape, (Shape{16}));
  EXPECT_EQ(g.node("fc").shape, (Shape{5}));
  EXPECT_EQ(g.param_count(), 4 * 27 + 80);

  Node bad = make("fc2", "Gemm", {"conv"});  // 4-D input to a Gemm
  bad.params.push_back(filled({5, 16}, 0.f, 0.01f));
  g.add_node(bad);
  EXPECT_THROW(g.finalize(), ShapeError);
}

TEST(Executor, RunsAtTheSimdLevelItWasBuiltWith) {
  test::KernelSettingsGuard guard;
  Graph g;
  g.add_node(input_node({4}));
  g.add_node(make("relu", "Relu", {"x"}));
  g.set_outputs({"relu"});
  g.finalize();
  const Executor scalar(g, ExecutorOptions{SimdLevel::Scalar});
  const Executor best(g);
  EXPECT_EQ(scalar.simd_level(), SimdLevel::Scalar);
  EXPECT_EQ(best.simd_level(), active_simd_level());
  set_simd_level(detected_simd_level());  // a later change of the global level does not reach it
  std::vector<SimdLevel> seen;
  scalar.run(Tensor(DType::F32, {2, 4}), [&](const Node&, const Tensor&) { seen.push_back(active_simd_level()); });
  ASSERT_EQ(seen.size(), 2u);
  for (SimdLevel l : seen) EXPECT_EQ(l, SimdLevel::Scalar);
  EXPECT_EQ(active_simd_level(), detected_simd_level());  // the scope ends with the run
}
