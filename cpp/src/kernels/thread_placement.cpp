#include "thread_placement.hpp"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace apl::kernels {
namespace {

bool placement_wanted() {
  for (const char* user_choice : {"OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"})
    if (std::getenv(user_choice)) return false;
  const char* v = std::getenv("APL_PIN_THREADS");
  return !(v && std::strcmp(v, "0") == 0);
}

bool pin_to(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof one, &one) == 0;
}

std::atomic<int> active_runs{0};
std::atomic<int> pinned_team{1};  // the team size whose workers are pinned

}  // namespace

ThreadPlacement::ThreadPlacement() {
  static const bool wanted = placement_wanted();
  const int team = omp_get_max_threads();
  if (!wanted || team < 2 || omp_in_parallel()) return;
  if (active_runs.fetch_add(1) != 0 || sched_getaffinity(0, sizeof caller_mask_, &caller_mask_) != 0) {
    active_runs.fetch_sub(1);
    return;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &caller_mask_)) cpus.push_back(c);
  if (static_cast<int>(cpus.size()) < team) {
    active_runs.fetch_sub(1);
    return;
  }
  if (team > pinned_team.load()) {
#pragma omp parallel num_threads(team)
    if (const int t = omp_get_thread_num(); t > 0) pin_to(cpus[static_cast<size_t>(t)]);
    pinned_team.store(team);
  }
  pinned_ = pin_to(cpus[0]);
  if (!pinned_) active_runs.fetch_sub(1);
}

ThreadPlacement::~ThreadPlacement() {
  if (!pinned_) return;
  sched_setaffinity(0, sizeof caller_mask_, &caller_mask_);
  active_runs.fetch_sub(1);
}

}  // namespace apl::kernels
