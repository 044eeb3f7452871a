"""`delta`: compute the denoising steps after the first on inter-step deltas of the activations.

    {name: delta, density: 0.3, bits: 4}
    {name: delta, density: 0.3, bits: 8, by_name: {"unet.up_blocks.3.*": 0.6}, classes: [conv]}

Differential computing (Cambricon-D, Kong et al., ISCA 2024; Ditto, HPCA 2025): the input of a
weight layer changes little between adjacent steps, and the layer is linear in it, so
`W x_t = W x_{t-1} + W (x_t - x_{t-1})`: the delta is sparse (`density`: the expected fraction
of nonzero delta elements) and fits in few bits (`bits`: 4 or 8; 16 keeps the activation
dtype).

Cost model: each conv/linear op of the loop (`classes`; attention and activation x activation
matmuls are not linear in one delta and run on full values) with steps s0 < s1 < ... runs as
itself in s0 and as a variant `<name>@delta` in the others, whose input precision is
int<bits> (weights and accumulation unchanged: `Op.precision`) and which carries a
`Sparsity(activations=density)` annotation, so the sparsity units of the arch decide what a
zero delta saves. Around the variant, `<name>@delta.encode` (an elementwise subtract of the
previous step's input: reads two inputs, writes the int<bits> delta, one vector op per input
element) and `<name>@delta.decode` (an elementwise add of the previous step's output: one
vector op per output element) run in the same steps; the previous input and output stay in
DRAM between steps (their footprint is not modeled). Deltas are decoded after every layer
(the non-linear ops between layers need full values), an upper bound on the encode/decode
work of designs that keep deltas flowing through linear chains. `by_name` sets the density of
ops matching a glob (the last match wins). With `density: 1, bits: 16` every step costs at
least the baseline. Quality (delta quantization error) is not modeled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sim.arch.schema import doc

from ..annotations import SPARSITY, Sparsity, sparsity_of
from ..errors import unknown
from ..ir import CONV_KINDS, Op, OpGraph, OpKind, numel
from . import Pass
from ._loop import GraphEdit, loop_ops, loop_stage
from ._select import fraction, require, rule_for

BITS = (4, 8, 16)
CLASSES = ("conv", "linear")
SUFFIX = "@delta"


@dataclass(frozen=True)
class DeltaOptions:
    density: float = field(default=0.3, metadata=doc("fraction of nonzero delta elements, in (0, 1]", max=1))
    bits: int = field(default=8, metadata=doc("bits per delta element: 4, 8 or 16 (the activation dtype)", "bits"))
    classes: Any = field(default=CLASSES, metadata=doc("op classes computed on deltas: conv, linear"))
    by_name: dict[str, float] = field(default_factory=dict, metadata=doc("delta density per op-name glob", max=1))
    stage: str = field(default="", metadata=doc("the loop stage (default: the pipeline's only loop)"))


def check_classes(classes: Any) -> frozenset[str]:
    where = "delta.classes"
    items = (classes,) if isinstance(classes, str) else classes
    require(isinstance(items, (list, tuple)) and len(items) > 0, "expected a list of op classes", where)
    for c in items:
        if c not in CLASSES:
            raise unknown("op class", str(c)[:40], CLASSES, where=where)
    return frozenset(items)


def eligible(op: Op, classes: frozenset[str]) -> bool:
    """A weight layer (conv/linear with weights) of the chosen classes running in >= 2 steps."""
    weight_layer = op.kind in CONV_KINDS or op.kind is OpKind.LINEAR
    return weight_layer and op.params > 0 and op.op_class in classes and len(op.step_indices) >= 2


def delta_variant(op: Op, density: float, bits: int) -> Op:
    """`op` computing on deltas: int<bits> inputs, sparse activations, the steps after its first."""
    precision = op.dtypes if bits == 16 else replace(op.dtypes, inputs=f"int{bits}")
    annotations = dict(op.annotations)
    if density < 1.0:
        base = sparsity_of(op) or Sparsity()
        annotations[SPARSITY] = replace(base, activations=density)
    changed = replace(op, name=op.name + SUFFIX, precision=precision, annotations=annotations)
    return changed.in_steps(op.step_indices[1:])


def codec_op(op: Op, what: str, shape: tuple[int, ...], outputs: str | None) -> Op:
    """The delta encode (x_t - x_{t-1}) or decode (y_{t-1} + W dx) of `op`: an elementwise op
    over two tensors of `shape`, in the steps of its delta variant."""
    dtypes = replace(op.dtypes, outputs=outputs) if outputs else op.precision
    coded = Op(
        name=f"{op.name}{SUFFIX}.{what}", kind=OpKind.ELEMENTWISE, inputs=(shape, shape), output=shape,
        dtype=op.dtype, vector_ops=numel(shape), stage=op.stage, block=op.block,
        attrs={"fn": f"delta_{what}"}, precision=dtypes,
    )  # fmt: skip
    return coded.in_steps(op.step_indices[1:])


def delta(graph: OpGraph, opts: DeltaOptions) -> OpGraph:
    require(opts.bits in BITS, f"must be one of {', '.join(map(str, BITS))}, got {opts.bits}", "delta.bits")
    for glob, d in opts.by_name.items():
        fraction(d, f"delta.by_name.{glob}", closed_low=False)
    classes = check_classes(opts.classes)
    stage = loop_stage(graph, opts.stage, "delta")
    require(not any(SUFFIX in n for n in graph.graph), "applied twice", "delta")
    edit = GraphEdit(graph)
    for op in loop_ops(graph, stage):
        if not eligible(op, classes):
            continue
        density = rule_for(op, {}, opts.by_name, opts.density)
        variant = delta_variant(op, density, opts.bits)
        low = None if opts.bits == 16 else f"int{opts.bits}"
        encode = codec_op(op, "encode", op.inputs[0], low)
        decode = codec_op(op, "decode", op.output, None)
        preds = list(graph.graph.predecessors(op.name))
        edit.replace(op.in_steps(op.step_indices[:1]))
        edit.insert(encode, preds, after=op.name)
        edit.insert(variant, [encode.name], after=encode.name)
        edit.insert(decode, [variant.name], after=variant.name)
        for succ in graph.graph.successors(op.name):
            edit.add_dep(succ, decode.name)
    return edit.build()


PASS = Pass("delta", DeltaOptions, delta, "compute steps after the first on sparse low-bit inter-step deltas")
