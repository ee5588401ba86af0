// Helpers shared by the C++ tests: run a check at every SIMD level and thread count, and build
// graph nodes tersely.
#pragma once
#include <gtest/gtest.h>
#include <omp.h>

#include <string>
#include <vector>

#include "aidge_ptq_lite/graph.hpp"
#include "aidge_ptq_lite/ops.hpp"
#include "aidge_ptq_lite/simd.hpp"

namespace apl::test {

inline std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::AVX2, SimdLevel::AVX512, SimdLevel::AMX})
    if (static_cast<int>(l) <= static_cast<int>(detected_simd_level())) levels.push_back(l);
  return levels;
}

// Restores the SIMD level and thread count a test changes.
class KernelSettingsGuard {
 public:
  KernelSettingsGuard() : level_(active_simd_level()), threads_(omp_get_max_threads()) {}
  ~KernelSettingsGuard() {
    set_simd_level(level_);
    omp_set_num_threads(threads_);
  }

 private:
  SimdLevel level_;
  int threads_;
};

// Calls body() at every supported SIMD level with 1 and 2 threads, asserting the level took
// (a silently disabled SIMD path would otherwise pass as scalar); restores both afterwards.
template <class Body>
void for_each_level_and_threads(Body body) {
  KernelSettingsGuard guard;
  for (SimdLevel level : supported_levels())
    for (int threads : {1, 2}) {
      set_simd_level(level);
      ASSERT_EQ(active_simd_level(), level);
      omp_set_num_threads(threads);
      SCOPED_TRACE(std::string("level ") + simd_level_name(level) + ", " + std::to_string(threads) +
                   " thread(s)");
      body();
    }
}

inline Node make_node(const std::string& name, const std::string& op, std::vector<std::string> inputs) {
  Node n;
  n.name = name;
  n.kind = op_kind(op, "", name);
  n.inputs = std::move(inputs);
  return n;
}

inline Node input_node(Shape shape, const std::string& name = "x") {
  Node n = make_node(name, "Input", {});
  n.shape = std::move(shape);
  return n;
}

}  // namespace apl::test
