// adjust_ranges: clipping optimization. Each Scaling node's range becomes the clip value that
// minimises the chosen quantization error over its activation histogram (see histogram.hpp).
#include <algorithm>
#include <exception>
#include <vector>

#include "aidge_ptq_lite/ptq.hpp"
#include "aidge_ptq_lite/quant_spec.hpp"

namespace apl {

RangeMap adjust_ranges(const Graph& g, const std::string& mode, const RangeMap& ranges,
                       const std::map<std::string, Histogram>& histograms, int nb_bits,
                       bool optimize_signs) {
  check_clipping_mode(mode);
  const QuantSpec spec(nb_bits);  // checked before any search
  RangeMap adjusted = ranges;
  if (mode == "MAX") return adjusted;
  // The searches of the nodes are independent: collected in node order, run on the threads,
  // applied in node order (the first failing node's error is the one thrown, as before).
  struct Search {
    const Node* node;
    const Histogram* histogram;
    float* range;
    float clip = 0.f;
    std::exception_ptr error;
  };
  std::vector<Search> searches;
  for (const Node& n : g.nodes()) {
    if (!n.is(OpKind::Scaling)) continue;
    auto h = histograms.find(n.name);
    auto r = adjusted.find(n.name);
    if (h == histograms.end() || r == adjusted.end())
      throw ValueError("adjust_ranges: no histogram or range for " + n.label());
    if (h->second.total() == 0 || r->second == 0.f) continue;
    searches.push_back({&n, &h->second, &r->second, 0.f, nullptr});
  }
  const int64_t count = static_cast<int64_t>(searches.size());
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
  for (int64_t i = 0; i < count; ++i) {
    Search& s = searches[static_cast<size_t>(i)];
    try {
      const bool is_unsigned = optimize_signs && s.node->quant.is_unsigned;
      s.clip = mode == "KL" ? compute_kl_clipping(*s.histogram, nb_bits, is_unsigned)
                            : compute_me_clipping(*s.histogram, nb_bits, mode == "MSE" ? 2 : 1, is_unsigned);
    } catch (...) {
      s.error = std::current_exception();
    }
  }
  for (Search& s : searches) {
    if (s.error) std::rethrow_exception(s.error);
    *s.range = std::min(*s.range, s.clip);
  }
  return adjusted;
}

}  // namespace apl
