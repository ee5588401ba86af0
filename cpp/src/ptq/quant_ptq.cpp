// quantize_network, in two halves around calibration, and the options it takes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "aidge_ptq_lite/cle.hpp"
#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/sign_map.hpp"
#include "quantize_internal.hpp"

namespace apl {
namespace {

// The stage profile of quantize_network: with APL_PTQ_STAGES=1 in the environment it prints one
// line to stderr, "ptq stages (ms): <stage> <ms>, ...", the wall time of every pass in order
// (benchmarks/bench_quantize.py --stages reads it). Off, it costs one getenv per call.
class StageTimer {
 public:
  explicit StageTimer(bool on) : on_(on), t_(std::chrono::steady_clock::now()) {}
  bool on() const { return on_; }
  // Closes the stage running since the last mark (or the start) under `name`.
  void mark(const char* name) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    add(name, std::chrono::duration<double>(now - t_).count());
    t_ = now;
  }
  void add(const char* name, double seconds) { stages_.emplace_back(name, seconds); }
  void restart() { t_ = std::chrono::steady_clock::now(); }
  void print() const {
    if (!on_) return;
    std::string line = "ptq stages (ms):";
    for (size_t i = 0; i < stages_.size(); ++i) {
      char item[96];
      std::snprintf(item, sizeof item, "%s %s %.2f", i ? "," : "", stages_[i].first, stages_[i].second * 1e3);
      line += item;
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point t_;
  std::vector<std::pair<const char*, double>> stages_;
};

bool stage_profile_requested() {
  const char* v = std::getenv("APL_PTQ_STAGES");
  return v && *v && std::string(v) != "0";
}

void noop_mark(StageTimer* t, const char* name) {
  if (t) t->mark(name);
}

}  // namespace

void check_clipping_mode(const std::string& mode) {
  if (mode != "MAX" && mode != "MSE" && mode != "AA" && mode != "KL")
    throw ValueError("unknown clipping mode '" + mode + "' (expected MAX, MSE, AA or KL)");
}

void QuantizeOptions::validate() const {
  (void)spec();  // nb_bits
  check_clipping_mode(clipping_mode);
  if (histogram_bins < 2 || histogram_bins > (int64_t(1) << 24) || (histogram_bins & (histogram_bins - 1)))
    throw ValueError("histogram_bins must be a power of two in [2, 2^24], got " + std::to_string(histogram_bins));
}

static void prepare_for_calibration(Graph& g, const QuantizeOptions& o, StageTimer* t) {
  o.validate();
  if (g.is_quantized()) throw ValueError("the graph is already quantized");
  prepare_network(g);
  noop_mark(t, "prepare_network");
  const QuantizabilityReport report = quantizability_report(g);
  if (!report.unsupported.empty()) throw UnsupportedError("cannot quantize: " + report.text());
  noop_mark(t, "quantizability_report");
  if (o.cross_layer_equalization) cross_layer_equalization(g, 0.01f, o.verbose);
  if (o.cross_layer_equalization) noop_mark(t, "cross_layer_equalization");
  insert_scaling_nodes(g);
  noop_mark(t, "insert_scaling_nodes");
  if (o.optimize_signs) {
    for (const auto& [name, signs] : compute_sign_map(g, o.verbose)) g.node(name).quant.is_unsigned = signs.second;
    noop_mark(t, "sign_map");
  }
  normalize_parameters(g, o.channel_wise);
  noop_mark(t, "normalize_parameters");
}

void prepare_for_calibration(Graph& g, const QuantizeOptions& o) { prepare_for_calibration(g, o, nullptr); }

static void quantize_from_calibration(Graph& g, const RangeCollector& calibration, const QuantizeOptions& o,
                                      StageTimer* t) {
  o.validate();
  if (calibration.samples() == 0) throw ValueError("calibration set is empty");
  // All-zero calibration data gives the input no range: it used to take 1.0 silently (lenet:
  // 91% -> 54% top-1). A dead inner tensor is legitimate; a dead input is a wrong data set.
  const auto input_range = calibration.ranges().find(g.input());
  if (input_range != calibration.ranges().end() && input_range->second == 0.f)
    throw ValueError("calibration data is all zeros (the input's range over " +
                     std::to_string(calibration.samples()) +
                     " samples is 0); calibrate on real samples, normalized as for inference");
  const RangeMap ranges = adjust_ranges(g, o.clipping_mode, calibration.ranges(), calibration.histograms(),
                                        o.nb_bits, o.optimize_signs);
  noop_mark(t, "adjust_ranges");
  const auto means = calibration.channel_means();
  for (Node& n : g.mutable_nodes()) {
    auto it = calibration.ranges().find(n.name);
    if (it != calibration.ranges().end()) n.quant.max_abs = it->second;
    auto low = calibration.mins().find(n.name);
    if (low != calibration.mins().end()) n.quant.min_value = low->second;
    if (!n.traits().affine) continue;
    auto mean = means.find(n.inputs[0]);
    n.quant.input_mean = mean != means.end() ? mean->second : std::vector<float>{};
  }
  noop_mark(t, "record_calibration");
  if (o.optimize_signs && o.zero_points && !o.no_quant) {
    choose_zero_points(g, ranges, o.nb_bits, o.verbose);
    noop_mark(t, "choose_zero_points");
  }
  normalize_activations(g, ranges, o.verbose);
  noop_mark(t, "normalize_activations");
  if (o.single_shift) {
    apply_single_shift(g, o.nb_bits, o.optimize_signs);
    noop_mark(t, "single_shift");
  }
  quantize_normalized(g, o.spec(), o.no_quant, o.optimize_signs);
  noop_mark(t, "quantize_normalized");
  if (!o.no_quant) {
    cast_to_integer(g, o.nb_bits);
    noop_mark(t, "cast_to_integer");
  }
  g.set_quantized(o);  // once, when every pass has run
}

void quantize_from_calibration(Graph& g, const RangeCollector& calibration, const QuantizeOptions& o) {
  quantize_from_calibration(g, calibration, o, nullptr);
}

void quantize_network(Graph& g, const CalibrationBatches& next_batch, const QuantizeOptions& o) {
  o.validate();
  if (g.is_quantized())
    throw ValueError("the graph is already quantized; quantize a fresh load_onnx() or a clone taken before quantizing");
  StageTimer timer(stage_profile_requested());
  StageTimer* t = timer.on() ? &timer : nullptr;
  Graph work = g.clone();  // the caller's graph changes only once everything has succeeded
  noop_mark(t, "clone");
  prepare_for_calibration(work, o, t);
  RangeCollector calibration(work, o);
  noop_mark(t, "collector");
  Tensor batch;
  double fetch = 0;
  for (int64_t i = 1;; ++i) {
    const auto fetch_start = std::chrono::steady_clock::now();
    if (!next_batch(batch)) break;
    fetch += std::chrono::duration<double>(std::chrono::steady_clock::now() - fetch_start).count();
    calibration.update(batch);
    if (o.verbose)
      std::fprintf(stderr, "\rcalibration: batch %lld, %lld samples", static_cast<long long>(i),
                   static_cast<long long>(calibration.samples()));
  }
  if (o.verbose) std::fprintf(stderr, "\n");
  if (t) {
    const RangeCollector::Times& c = calibration.times();
    timer.add("next_batch", fetch);
    timer.add("forward", c.run - c.channel_sums - c.ranges);
    timer.add("channel_sums", c.channel_sums);
    timer.add("ranges_histograms", c.ranges);
    timer.restart();
  }
  quantize_from_calibration(work, calibration, o, t);
  g = std::move(work);
  noop_mark(t, "assign");
  timer.print();
}

}  // namespace apl
