// Bindings of the clipping optimization: the streamed Histogram of |x| and the clipping searches.
#include <pybind11/numpy.h>

#include "aidge_ptq_lite/histogram.hpp"
#include "bindings.hpp"

namespace py = pybind11;
using namespace apl;

void bind_clipping(py::module_& m) {
  py::class_<Histogram>(m, "Histogram", R"pbdoc(
Histogram of |x| over [0, range) in ``bins`` equal bins, filled batch by batch.

``range`` is a power of two chosen from the data; when a batch holds larger values it doubles
and the bins fold pairwise, which is exact. Two histograms therefore merge exactly: the
histogram of two halves of the data, merged, equals the histogram of the whole. Calibration
streams batches through ``add`` and never holds activations.

Parameters
----------
bins : int
    Number of bins, a power of two in [2, 2^24] (default 2048).

Raises
------
ValueError
    If bins is not a power of two in that interval.
)pbdoc")
      .def(py::init<int64_t>(), py::arg("bins") = 2048)
      .def("add", [](Histogram& h, const py::array_t<float, py::array::c_style | py::array::forcecast>& x) {
            // Holds the GIL: adds from several Python threads are serialized, not torn.
            h.add(x.data(), x.size());
          }, py::arg("x"), R"pbdoc(
Add |x| of every value of ``x`` (any shape; converted to float32 if needed). Multi-threaded
inside; safe to call from several Python threads (calls are serialized: the GIL is held).

Raises
------
ValueError
    If ``x`` contains NaN or Inf (the histogram is unchanged).
)pbdoc")
      .def("merge", &Histogram::merge, py::arg("other"), R"pbdoc(
Add the counts of ``other`` (the one with the smaller range is folded to the larger first).

Raises
------
ValueError
    If the two histograms have different bin counts.
)pbdoc")
      .def_property_readonly("counts", [](const Histogram& h) {
            const std::vector<uint64_t>& c = h.counts();
            return py::array_t<uint64_t>(static_cast<py::ssize_t>(c.size()), c.data());
          }, "Counts per bin (a uint64 numpy copy); bin b covers [b, b + 1) * bin_width.")
      .def_property_readonly("range", &Histogram::range,
                             "Upper end of the last bin, a power of two (0 while empty).")
      .def_property_readonly("bins", &Histogram::bins, "Number of bins.")
      .def_property_readonly("bin_width", &Histogram::bin_width, "range / bins.")
      .def_property_readonly("total", &Histogram::total, "Number of values added.")
      .def("__repr__", [](const Histogram& h) {
        return "<Histogram bins=" + std::to_string(h.bins()) + " range=" + std::to_string(h.range()) +
               " total=" + std::to_string(h.total()) + ">";
      });

  m.def("compute_me_clipping", &compute_me_clipping, py::arg("histogram"), py::arg("nb_bits") = 8,
        py::arg("exponent") = 2, py::arg("is_unsigned") = false, R"pbdoc(
Clip value minimising the expected quantization error E|x - q(x)|^exponent over a histogram of |x|.

q rounds to steps of clip / L and saturates at the clip, with L = 2^(nb_bits-1) - 1 levels
(signed) or 2^nb_bits - 1 (unsigned). The error of each candidate is computed exactly for a
density uniform inside each bin: the rounding error below the clip and the clipping error above
it. Candidates are every bin edge up to the largest value, then 1/32 of a bin around the best.

Parameters
----------
histogram : Histogram
    Histogram of |x|.
nb_bits : int
    2..16.
exponent : int
    2 for the mean squared error (MSE), 1 for the mean absolute error (AA).
is_unsigned : bool
    The values are non-negative and use unsigned codes [0, 2^nb_bits - 1].

Returns
-------
float
    The clip value (in the units of x).

Raises
------
ValueError
    If nb_bits is outside 2..16, exponent is not 1 or 2, or the histogram is empty.
)pbdoc");

  m.def("compute_kl_clipping", &compute_kl_clipping, py::arg("histogram"), py::arg("nb_bits") = 8,
        py::arg("is_unsigned") = false, R"pbdoc(
Clip value minimising the KL divergence between a histogram of |x| and its quantized version
(TensorRT's entropy calibration).

For each candidate number of kept bins i >= L: P is the first i bins with the values above
folded into the last one; Q is those i bins merged into L groups and spread back over the
non-empty bins of P. The clip is (best i + 0.5) * bin_width, at most ``range``. L is
2^(nb_bits-1) (signed) or 2^nb_bits (unsigned); with fewer bins than L the result is ``range``.

Parameters
----------
histogram : Histogram
    Histogram of |x|.
nb_bits : int
    2..16.
is_unsigned : bool
    The values are non-negative and use unsigned codes (twice the levels).

Returns
-------
float
    The clip value (in the units of x).

Raises
------
ValueError
    If nb_bits is outside 2..16 or the histogram is empty.
)pbdoc");
}
