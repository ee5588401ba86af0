// Exceptions and OpenMP. An exception that leaves an OpenMP parallel region calls std::terminate
// (the process aborts): every region whose body may throw (an allocation of per-thread scratch
// memory, a std::vector, a checked call) runs that body under a ParallelGuard, which keeps the
// first exception, skips the remaining work of every thread, and rethrows it after the region:
//
//   ParallelGuard guard;
//   #pragma omp parallel for
//   for (int64_t i = 0; i < n; ++i) guard.run([&] { ... });
//   guard.rethrow();
//
// In a `#pragma omp parallel` region with a nested `omp for`, the per-thread set-up goes through
// guard.run too; every thread still reaches the worksharing loop (as OpenMP requires) and its
// iterations are skipped once a thread failed. Internal to the library.
#pragma once
#include <atomic>
#include <exception>
#include <mutex>

namespace apl::kernels {

class ParallelGuard {
 public:
  template <class Body>
  void run(Body&& body) noexcept {
    if (failed()) return;
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  // After the region: the first exception of any thread, if one was thrown.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

}  // namespace apl::kernels
