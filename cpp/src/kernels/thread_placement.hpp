// Pins the OpenMP threads to CPUs for the length of a run (internal).
//
// Unpinned, a worker that slept while the caller was idle (say 0.2 s between two inferences) is
// often woken on the caller's CPU: both share one core for milliseconds until the scheduler
// moves one (measured: the zoo resnet at batch 64 took 45 ms after a 0.2 s pause, 26 ms back to
// back, 29 ms pinned). onnxruntime pins its pool threads for the same reason. Worker t stays on
// the t-th CPU of the process's affinity mask; the calling thread is held on the first one only
// while the guard lives, so the caller's own mask (and that of processes it starts) is given
// back after the run. Skipped when the user placed the threads (OMP_PROC_BIND, OMP_PLACES,
// GOMP_CPU_AFFINITY), set APL_PIN_THREADS=0, when the mask has fewer CPUs than threads, and for
// a run that overlaps another (two callers would be stacked on one CPU).
#pragma once
#include <sched.h>

namespace apl::kernels {

class ThreadPlacement {
 public:
  ThreadPlacement();
  ~ThreadPlacement();
  ThreadPlacement(const ThreadPlacement&) = delete;
  ThreadPlacement& operator=(const ThreadPlacement&) = delete;

 private:
  bool pinned_ = false;
  cpu_set_t caller_mask_;
};

}  // namespace apl::kernels
