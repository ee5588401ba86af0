"""
aidge_ptq_lite compiled core: graph IR, float and integer executors, PTQ passes.
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['Error', 'Graph', 'GraphError', 'Histogram', 'Node', 'OptionError', 'QuantizabilityReport', 'QuantizeOptions', 'RangeCollector', 'ShapeError', 'UnsupportedOpError', 'adjust_ranges', 'cast_to_integer', 'compute_kl_clipping', 'compute_me_clipping', 'compute_sign_map', 'cross_layer_equalization', 'detected_simd_level', 'insert_scaling_nodes', 'normalize_activations', 'normalize_parameters', 'op_registry', 'prepare_network', 'quantizability_report', 'quantize_normalized_network', 'set_simd_level', 'simd_level', 'supported_ops']
class Error(RuntimeError):
    """
    Base class of the errors raised by aidge_ptq_lite's core.
    """
class GraphError(ValueError):
    """
    A malformed graph: a cycle, a missing producer, a duplicate or unknown node name (ValueError).
    """
class ShapeError(ValueError):
    """
    A tensor shape or rank that does not fit the graph, e.g. a forward input (ValueError).
    """
class UnsupportedOpError(NotImplementedError):
    """
    An op or attribute the library does not implement; the message names op, node and the supported set.
    """
class Node:
    """
    A read-only view (copy) of one graph node.
    """
    def __repr__(self) -> str:
        ...
    @property
    def attributes(self) -> dict:
        """
        Attributes as a dict.
        """
    @property
    def inputs(self) -> list[str]:
        """
        Names of the producer nodes, in order.
        """
    @property
    def name(self) -> str:
        """
        Unique node name.
        """
    @property
    def op(self) -> str:
        """
        Op type (ONNX name, 'Input', or 'Scaling').
        """
    @property
    def params(self) -> list:
        """
        Constant operands (copies), e.g. [weights, bias] for a Conv.
        """
    @property
    def quant(self) -> dict:
        """
        Quantization state (dict): ``max_abs`` (largest |x| in calibration; largest x for a Scaling node feeding only ReLUs), ``range`` (float value of
        the largest code: max_abs clipped, then raised by max arbitration), ``step`` (float value
        of one code), ``unsigned``, clamp ``lo``/``hi``, ``weight_range`` (affine nodes: max |W| per
        channel), and for Scaling nodes their requantization record: ``factor`` (float32 array: real
        factor per channel from accumulator codes to output codes, or to float values at a
        dequantization point), ``multiplier`` (its encoding: list of (m, shift), factor m / 2^shift),
        ``single_shift`` and ``dequantize_point``; ``kept_float``.
        """
    @property
    def shape(self) -> list[int]:
        """
        Output shape per sample (the batch axis is not included).
        """
class _Executor:
    pass
class Graph:
    """
    A network: named nodes with one output each, in topological order.
    
    Build one with ``aidge_ptq_lite.load_onnx``. ``forward`` runs the float network, or, after
    ``quantize_network``, the integer network. ``repr(g)`` prints a summary table.
    """
    def __init__(self) -> None:
        ...
    def __len__(self) -> int:
        ...
    def __repr__(self) -> str:
        ...
    def _add_node(self, name: str, op: str, inputs: collections.abc.Sequence[str], attrs: dict, params: collections.abc.Sequence[numpy.ndarray], domain: str = '') -> None:
        ...
    def _assign(self, arg0: Graph) -> None:
        ...
    def _finalize(self) -> None:
        ...
    def _set_outputs(self, arg0: collections.abc.Sequence[str]) -> None:
        ...
    def clone(self) -> Graph:
        """
        Deep copy: the clone shares no tensor with this graph (copy.copy and copy.deepcopy call it).
        """
    def consumers(self, name: str) -> list[str]:
        """
        Names of the nodes reading `name`.
        """
    def forward(self, x: typing.Any, dequantize: typing.Any = True) -> typing.Any:
        """
        Run the network on a batch.
        
        Parameters
        ----------
        x : numpy.ndarray
            float32 array of shape (N, *input_shape), e.g. (N, 1, 28, 28). Other float dtypes are converted.
            In a quantized graph a NaN input value becomes code 0 (the value 0) at every bit width, and
            +-Inf saturate to the extreme codes.
        dequantize : bool
            For a quantized graph: True (default) returns float32 values in the float network's units;
            False returns the raw integer values of the output (as float32-free int arrays).
        
        Returns
        -------
        numpy.ndarray, or a list of arrays for a graph with several outputs.
        
        Raises
        ------
        ShapeError
            If x does not have the input's shape (the message gives the expected shape).
        ValueError
            If x is not a float array.
        """
    def get_param(self, name: str, index: typing.SupportsInt | typing.SupportsIndex) -> numpy.ndarray:
        """
        Copy of param `index` of node `name`.
        """
    def intermediate_outputs(self, x: typing.Any, names: collections.abc.Sequence[str]) -> dict:
        """
        Run the network on ``x`` and return the outputs of the named nodes as float32 arrays (dict).
        
        For a quantized graph the codes are dequantized (code * step), so values compare directly with
        the float network's. Used by ``layer_report``.
        
        Raises
        ------
        GraphError
            If a name is not a node of the graph.
        """
    def node(self, name: str) -> Node:
        """
        The node with this name (a copy). Raises GraphError if there is none.
        """
    def nodes(self) -> list[Node]:
        """
        All nodes (copies), in topological order.
        """
    def remove(self, name: str) -> None:
        """
        Remove a single-input node; its consumers read its input instead. Refused (GraphError) on a
        quantized graph; if the consumers do not accept the node's input (ShapeError), the graph is
        left unchanged.
        """
    def set_param(self, name: str, index: typing.SupportsInt | typing.SupportsIndex, value: numpy.ndarray) -> None:
        """
        Replace param `index` of node `name` by a copy of `value` (same shape and dtype).
        """
    def summary(self) -> str:
        """
        Table of nodes: name, op, output shape, parameter count, inputs.
        """
    @property
    def input_name(self) -> str:
        """
        Name of the Input node.
        """
    @property
    def input_shape(self) -> list[int]:
        """
        Input shape per sample.
        """
    @property
    def is_quantized(self) -> bool:
        """
        True after quantize_network.
        """
    @property
    def nb_bits(self) -> typing.Any:
        """
        Bit width of a quantized graph, else None.
        """
    @property
    def outputs(self) -> list[str]:
        """
        Names of the output nodes.
        """
    @property
    def param_count(self) -> int:
        """
        Total number of constant values.
        """
    @property
    def quantization(self) -> typing.Any:
        """
        The options quantize_network was called with (dict, as QuantizeOptions.to_dict()), or None for a float graph.
        """
class Histogram:
    """
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
    """
    def __init__(self, bins: typing.SupportsInt | typing.SupportsIndex = 2048) -> None:
        ...
    def __repr__(self) -> str:
        ...
    def add(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> None:
        """
        Add |x| of every value of ``x`` (any shape; converted to float32 if needed). Multi-threaded
        inside; safe to call from several Python threads (calls are serialized: the GIL is held).
        
        Raises
        ------
        ValueError
            If ``x`` contains NaN or Inf (the histogram is unchanged).
        """
    def merge(self, other: Histogram) -> None:
        """
        Add the counts of ``other`` (the one with the smaller range is folded to the larger first).
        
        Raises
        ------
        ValueError
            If the two histograms have different bin counts.
        """
    @property
    def bin_width(self) -> float:
        """
        range / bins.
        """
    @property
    def bins(self) -> int:
        """
        Number of bins.
        """
    @property
    def counts(self) -> numpy.typing.NDArray[numpy.uint64]:
        """
        Counts per bin (a uint64 numpy copy); bin b covers [b, b + 1) * bin_width.
        """
    @property
    def range(self) -> float:
        """
        Upper end of the last bin, a power of two (0 while empty).
        """
    @property
    def total(self) -> int:
        """
        Number of values added.
        """
class OptionError(TypeError, ValueError):
    """
    A QuantizeOptions field of the wrong type or value (both TypeError and ValueError); the message names the field.
    """
class QuantizeOptions:
    """
    The options of ``quantize_network``, by keyword: ``QuantizeOptions(nb_bits=4, clipping_mode="MSE",
    channel_wise=True)``. A wrong type, a value out of its domain or an unknown field raises
    ``OptionError`` (a TypeError and a ValueError) naming the field. Fields: nb_bits, clipping_mode, cross_layer_equalization, optimize_signs,
    single_shift, no_quant, channel_wise, verbose, histogram_bins.
    """
    __hash__: typing.ClassVar[None] = None
    def __eq__(self, arg0: QuantizeOptions) -> bool:
        ...
    def __init__(self, **kwargs) -> None:
        """
        Options from keywords (defaults: 8 bits, MAX, every flag off).
        """
    def __repr__(self) -> str:
        ...
    def replace(self, **kwargs) -> QuantizeOptions:
        """
        A copy with the given fields changed (same checks as the constructor).
        """
    def to_dict(self) -> dict:
        """
        The fields as a dict.
        """
    @property
    def channel_wise(self) -> typing.Any:
        """
        One weight scale per output channel.
        """
    @channel_wise.setter
    def channel_wise(self, arg1: typing.Any) -> None:
        ...
    @property
    def clipping_mode(self) -> typing.Any:
        """
        How activation ranges are chosen: 'MAX' (default), 'MSE', 'AA' or 'KL'.
        """
    @clipping_mode.setter
    def clipping_mode(self, arg1: typing.Any) -> None:
        ...
    @property
    def cross_layer_equalization(self) -> typing.Any:
        """
        Balance the weight ranges of consecutive layers first (CLE).
        """
    @cross_layer_equalization.setter
    def cross_layer_equalization(self, arg1: typing.Any) -> None:
        ...
    @property
    def histogram_bins(self) -> typing.Any:
        """
        Bins of each activation histogram (MSE, AA, KL), a power of two (default 2048).
        """
    @histogram_bins.setter
    def histogram_bins(self, arg1: typing.Any) -> None:
        ...
    @property
    def nb_bits(self) -> typing.Any:
        """
        Bit width of weights and activations, 2..16 (default 8).
        """
    @nb_bits.setter
    def nb_bits(self, arg1: typing.Any) -> None:
        ...
    @property
    def no_quant(self) -> typing.Any:
        """
        The whole pipeline without rounding (debugging): outputs equal the float ones.
        """
    @no_quant.setter
    def no_quant(self, arg1: typing.Any) -> None:
        ...
    @property
    def optimize_signs(self) -> typing.Any:
        """
        Unsigned codes where activations are provably non-negative.
        """
    @optimize_signs.setter
    def optimize_signs(self, arg1: typing.Any) -> None:
        ...
    @property
    def single_shift(self) -> typing.Any:
        """
        Power-of-two rescaling, compensated in the weights.
        """
    @single_shift.setter
    def single_shift(self, arg1: typing.Any) -> None:
        ...
    @property
    def verbose(self) -> typing.Any:
        """
        Print progress and the arbitration decisions.
        """
    @verbose.setter
    def verbose(self, arg1: typing.Any) -> None:
        ...
class QuantizabilityReport:
    """
    Which nodes run in integers, stay float, or block quantization.
    """
    def __repr__(self) -> str:
        ...
    def __str__(self) -> str:
        ...
    @property
    def kept_float(self) -> list[str]:
        """
        Nodes run in float after the output dequantization (e.g. a final Softmax).
        """
    @property
    def ok(self) -> bool:
        """
        True when the graph can be quantized.
        """
    @property
    def quantized(self) -> list[str]:
        """
        Nodes that run in integers.
        """
    @property
    def unsupported(self) -> list[str]:
        """
        'op 'name': reason' for each node that prevents quantization.
        """
class RangeCollector:
    """
    Streaming calibration: ``update(batch)`` runs one float batch and keeps, for the Input and each
    Scaling node, the largest |x| seen so far. Memory does not grow with the number of batches.
    A Scaling node is measured where its codes are consumed: after the ReLU and MaxPool that all its
    consumers go through (the largest x > 0 after a ReLU; values a MaxPool drops do not count).
    """
    @typing.overload
    def __init__(self, graph: Graph, options: QuantizeOptions) -> None:
        """
        The collector ``quantize_network`` runs for ``options``: histograms for its clipping mode (none for
        MAX, which needs only the max).
        """
    @typing.overload
    def __init__(self, graph: Graph, histogram_bins: typing.SupportsInt | typing.SupportsIndex = 0, clipping_mode: str = 'MSE') -> None:
        """
        Collector for ``graph`` (a float graph, after ``insert_scaling_nodes``). With
        ``histogram_bins`` > 0 it also keeps a histogram of |x| (that many bins) per Scaling node, for the
        search of ``clipping_mode``: of the values where they are consumed, like the max, for "MSE" and
        "AA"; of the Scaling node's own output for "KL".
        """
    def update(self, batch: typing.Any) -> None:
        """
        Accumulate the ranges of one batch (float array (N, *input_shape)).
        
        Raises
        ------
        ValueError
            If the batch or an activation contains NaN or Inf (the message names the node).
        ShapeError
            If the batch has the wrong shape.
        """
    @property
    def histograms(self) -> dict[str, Histogram]:
        """
        Dict Scaling node name -> Histogram of |x| (empty without histogram_bins).
        """
    @property
    def ranges(self) -> dict[str, float]:
        """
        Dict node name (Input and Scaling nodes) -> max |x| where consumed (max x after a ReLU).
        """
    @property
    def samples(self) -> int:
        """
        Number of samples seen.
        """
def _multiplier_rescale(acc: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], multiplier: typing.SupportsInt | typing.SupportsIndex, shift: typing.SupportsInt | typing.SupportsIndex, lo: typing.SupportsInt | typing.SupportsIndex, hi: typing.SupportsInt | typing.SupportsIndex, out_unsigned: bool, out: numpy.ndarray | None = None) -> numpy.ndarray:
    """
    Kernel entry point for benchmarks and tests: the general requantization
    clamp((acc * multiplier + 2^(shift-1)) >> shift, lo, hi) of a 1-D int32 array, per tensor,
    shift in [0, 62] (multiplier 1 takes the shift-rescale loop). ``out`` as in ``_shift_rescale``.
    Releases the GIL.
    """
def _prepare_for_calibration(graph: Graph, options: QuantizeOptions) -> None:
    ...
def _quantize_network(graph: Graph, batches: collections.abc.Iterable, options: QuantizeOptions) -> None:
    """
    quantize_network's C++ entry point: pulls float batches from the iterable `batches`.
    """
def _shift_rescale(acc: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], shift: typing.SupportsInt | typing.SupportsIndex, lo: typing.SupportsInt | typing.SupportsIndex, hi: typing.SupportsInt | typing.SupportsIndex, out_unsigned: bool, out: numpy.ndarray | None = None) -> numpy.ndarray:
    """
    Kernel entry point for benchmarks and tests: clamp((acc + 2^(shift-1)) >> shift, lo, hi) of a
    1-D int32 array as int8 (uint8 if out_unsigned), shift in [0, 31]. Writes into ``out`` when
    given (contiguous, same size, that dtype), else a new array. Releases the GIL.
    """
def adjust_ranges(graph: Graph, clipping_mode: str, ranges: collections.abc.Mapping[str, typing.SupportsFloat | typing.SupportsIndex], histograms: collections.abc.Mapping[str, Histogram], nb_bits: typing.SupportsInt | typing.SupportsIndex = 8, optimize_signs: bool = False) -> dict[str, float]:
    """
    Clipping optimization: the range of each Scaling node of ``graph`` becomes
    min(max |x|, clip), where the clip minimises over its histogram the quantization MSE
    (``"MSE"``), mean absolute error (``"AA"``) or KL divergence (``"KL"``, TensorRT's entropy
    calibration) of ``nb_bits`` codes: 2^(n-1)-1 levels, or 2^n-1 for nodes marked unsigned when
    ``optimize_signs``. ``"MAX"`` returns ``ranges`` unchanged.
    
    Parameters
    ----------
    graph : Graph
        The prepared graph the ranges and histograms were collected on.
    clipping_mode : str
        "MAX", "MSE", "AA" or "KL".
    ranges : dict
        Node name -> max |x| (``compute_ranges``).
    histograms : dict
        Scaling node name -> Histogram (``compute_histograms``).
    
    Returns
    -------
    dict
        The adjusted ranges.
    
    Raises
    ------
    ValueError
        Unknown mode, nb_bits outside 2..16, or a Scaling node without range or histogram.
    """
def cast_to_integer(graph: Graph, nb_bits: typing.SupportsInt | typing.SupportsIndex = 8) -> None:
    """
    Store the quantized network's weights as int8 (int32 above 8 bits), biases as int32 (int64), and
    each Scaling factor as a fixed-point multiplier and shift, for the integer executor.
    """
def compute_kl_clipping(histogram: Histogram, nb_bits: typing.SupportsInt | typing.SupportsIndex = 8, is_unsigned: bool = False) -> float:
    """
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
    """
def compute_me_clipping(histogram: Histogram, nb_bits: typing.SupportsInt | typing.SupportsIndex = 8, exponent: typing.SupportsInt | typing.SupportsIndex = 2, is_unsigned: bool = False) -> float:
    """
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
    """
def compute_sign_map(graph: Graph, verbose: bool = False) -> dict[str, tuple[bool, bool]]:
    """
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
    """
def cross_layer_equalization(graph: Graph, target_delta: typing.SupportsFloat | typing.SupportsIndex = 0.009999999776482582, verbose: bool = False) -> list[str]:
    """
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
    """
def detected_simd_level() -> str:
    """
    The best SIMD level this CPU supports.
    """
def insert_scaling_nodes(graph: Graph) -> None:
    """
    Insert a Scaling node after every Conv, Gemm, AveragePool, GlobalAveragePool and joining node
    (Add, Sub, Mul, Concat). Each starts with factor 1 per output channel; in the integer network
    it becomes the requantizer of the accumulator before it. Mutates ``graph``.
    """
def normalize_activations(graph: Graph, ranges: collections.abc.Mapping[str, typing.SupportsFloat | typing.SupportsIndex], verbose: bool = False) -> dict[str, float]:
    """
    Make every activation lie in [-1, 1] given the calibrated ``ranges`` (dict node -> max |x|,
    from ``compute_ranges``, possibly clipped by ``adjust_ranges``).
    
    At joining nodes (Add, Sub, Concat) the branches must share a scale: the largest range wins
    (max arbitration) and the Scaling (or Input) node above each smaller branch takes it. Biases
    and Scaling factors are rescaled accordingly. Mutates ``graph``.
    
    Returns
    -------
    dict
        The ranges actually used, after arbitration.
    """
def normalize_parameters(graph: Graph, channel_wise: bool = False) -> None:
    """
    Scale each Conv/Gemm's weights and bias by 1 / max|W| (per output channel when
    ``channel_wise``), and multiply the following Scaling node's factor by the same amount, so that
    weights lie in [-1, 1] and the function is unchanged. Requires ``insert_scaling_nodes``.
    
    Raises
    ------
    GraphError
        If an affine node has no Scaling node after it.
    ValueError
        If weights are NaN or infinite.
    """
def op_registry() -> dict:
    """
    The op registry as the importer and exporter read it: dict ONNX op type -> dict of its traits
    row (cpp/src/ops/registry.cpp): ``domain``, ``min_inputs``/``max_inputs`` (-1: any),
    ``param_inputs`` (ONNX input indices moved into params), ``attribute_inputs`` (index -> attribute
    name), ``constant_operand``, ``activation_attributes`` (attributes in activation units),
    ``export_rule`` and the roles (``affine``, ``join``, ``needs_scaling``, ``keeps_codes``, ``rounds_codes``, ``view``,
    ``float_tail``, ``integer_kernel``). Includes the library's own "Input" and "Scaling".
    """
def prepare_network(graph: Graph) -> None:
    """
    Bring a float graph to the form the PTQ expects, without changing its function.
    
    Folds each BatchNormalization into the Conv/Gemm before it (a BatchNormalization with no such
    producer becomes a depthwise 1x1 Conv), removes Identity and Dropout, turns 2-D MatMul into
    Gemm, and gives every Conv/Gemm a bias. Mutates ``graph``.
    
    Raises
    ------
    ValueError
        If the graph is already quantized.
    """
def quantizability_report(graph: Graph) -> QuantizabilityReport:
    """
    Report which nodes of ``graph`` can be quantized.
    
    Run it on a prepared graph (``prepare_network``) for the final picture: BatchNormalization
    nodes that will be folded are reported as quantized.
    
    Returns
    -------
    QuantizabilityReport
        ``quantized``, ``kept_float`` and ``unsupported`` lists; ``str(report)`` is a summary.
    """
def quantize_normalized_network(graph: Graph, nb_bits: typing.SupportsInt | typing.SupportsIndex = 8, no_quant: bool = False, optimize_signs: bool = False) -> None:
    """
    Turn the normalized network into n-bit codes: weights times 2^(n-1)-1 and rounded (not rounded
    when ``no_quant``), biases at the accumulator scale, Scaling factors into requantization
    factors; the Scaling nodes feeding the outputs become dequantization points.
    
    Parameters
    ----------
    nb_bits : int
        2..16.
    no_quant : bool
        Run the same pipeline without rounding (debugging: outputs equal the float network's).
    optimize_signs : bool
        Use unsigned [0, 2^n-1] codes where the sign map allows.
    
    Raises
    ------
    ValueError
        If nb_bits is outside 2..16.
    UnsupportedOpError
        If a node cannot be quantized (see quantizability_report).
    """
def set_simd_level(level: str) -> None:
    """
    Force the SIMD level of every kernel ('scalar', 'avx2', 'avx512', 'amx'); the environment variable
    APL_SIMD caps it at start-up. Raises ValueError for an unknown level or one this CPU lacks.
    """
def simd_level() -> str:
    """
    The SIMD level the kernels use now: 'scalar', 'avx2', 'avx512' or 'amx'.
    """
def supported_ops() -> list[str]:
    """
    ONNX op types the importer and executors support, sorted.
    """
