// Bindings of cross-layer equalization (cpp/src/ptq/cle.cpp) and the sign map (sign_map.cpp).
#include <pybind11/stl.h>

#include "aidge_ptq_lite/cle.hpp"
#include "aidge_ptq_lite/sign_map.hpp"
#include "bindings.hpp"

namespace py = pybind11;
using namespace apl;

void bind_cle_and_signs(py::module_& m) {
  m.def("cross_layer_equalization", &cross_layer_equalization, py::arg("graph"),
        py::arg("target_delta") = 0.01f, py::arg("verbose") = false, R"pbdoc(
Balance the per-channel weight ranges of consecutive affine layers (cross-layer equalization).

For each pair of Conv/Gemm layers A -> ... -> B joined only by positively homogeneous,
channel-preserving ops (Relu, LeakyRelu, MaxPool, AveragePool, GlobalAveragePool, zero Pad,
Flatten), where A's output and every tensor on the way to B feed nothing else (so pairs inside
residual branches count, tensors feeding an Add/Concat or several nodes do not): output channel
i of A (weights and bias) is divided by s_i and input channel i of B multiplied by s_i, with
s_i = sqrt(r1_i / r2_i), r1_i = max|W_A[i]| and r2_i = max|W_B[:, i]| (per group for grouped and
depthwise convolutions, which map channels 1:1). All pairs are swept until the largest
|s_i - 1| is below ``target_delta`` (at most 100 sweeps). The float function is unchanged up to
rounding. Mutates ``graph``; run it after ``prepare_network`` and before ``insert_scaling_nodes``.

Parameters
----------
graph : Graph
    A prepared float graph.
target_delta : float
    Convergence threshold on max |s_i - 1| (default 0.01).
verbose : bool
    Print each pair with the spread (max/min) of its channel ranges before and after.

Returns
-------
list of str
    The equalized pairs, as ``"A -> B"``.

Raises
------
ValueError
    If ``target_delta`` is not positive, or the graph is quantized.
GraphError
    If the graph is not prepared (a Conv/Gemm without bias or with transB=0) or already has
    Scaling nodes.
)pbdoc");

  m.def("compute_sign_map", &compute_sign_map, py::arg("graph"), py::arg("verbose") = false, R"pbdoc(
Decide which activations can use unsigned n-bit codes [0, 2^n - 1] (sign optimization).

A local analysis of ``graph`` after ``insert_scaling_nodes``. A node's output is unsigned when
its values are non-negative and the codes it carries are unsigned: Relu, pools, pads, reshapes,
LeakyRelu and Clip keep their input's codes; Add, Concat and Mul are unsigned when all inputs
are; a Scaling node keeps its input's sign, and is unsigned as well when all its consumers clamp
at zero (Relu, Clip with min >= 0), since it can clamp at zero itself; Input, Conv, Gemm and Sub
are signed. The inputs of a join (Add, Sub, Concat) must share a sign: when they mix, the
Scaling (or Input) node above each unsigned input is made signed, until nothing changes.

Parameters
----------
graph : Graph
    A graph with its Scaling nodes. Not modified.
verbose : bool
    Print the map, and each node forced signed with the join that required it.

Returns
-------
dict
    Node name -> (inputs_unsigned, output_unsigned); inputs_unsigned is True when every data
    input of the node is unsigned (False for the Input node).

Raises
------
Nothing of its own: the graph is only read. On a graph without Scaling nodes the map is still
valid, only more often signed.
)pbdoc");
}
