"""Operator IR: `Op` records in an `OpGraph` (a networkx DiGraph of data dependencies).

The IR is hardware-agnostic. Every op carries its shapes, parameter count, MACs (for the
GEMM-like kinds: conv, linear, attention), vector work (element operations of the non-GEMM
kinds), bytes touched, and tags (pipeline stage, block path, attention taxonomy). The
simulator lowers ops to kernels; builders never look at hardware.

The step plan: a pipeline is a sequence of stages (text encoder, denoiser, decoder, ...); an
op inside a loop (the denoising loop, autoregressive decoding) runs once per step of that loop.
`Op.steps` lists the loop steps an op runs in (`None`: every step, `range(repeat)`), and
`Op.repeat` is how many times it runs per pipeline invocation. Step-level transforms (skip the
first K steps, reuse deep features on some steps, compute on deltas) give ops different step
sets, or add per-step variants of an op; identical ops are still evaluated once.
`OpGraph.step_plan()` lists the resulting steps in execution order.

Precision: `Op.precision` holds the dtypes of an op's inputs, weights, outputs and
accumulation when a pass has set them (`workloads.passes`); `None` means the op runs at the
hardware's native operand type. `Op.dtypes` always gives the dtypes (the model's by default).
Annotations (`Op.annotations`: sparsity, approximation, epilogue fusion) are set by passes,
never by builders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # networkx and pandas load on first use: `import workloads` stays light
    import networkx as nx
    import pandas as pd

Shape = tuple[int, ...]

DTYPE_BITS: Mapping[str, int] = MappingProxyType(
    {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4, "int32": 32, "int64": 64}
)
DTYPE_BYTES: Mapping[str, int] = MappingProxyType({k: v // 8 for k, v in DTYPE_BITS.items() if v >= 8})
# Dtypes of GEMM operands and results a precision pass may choose.
COMPUTE_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")


@dataclass(frozen=True)
class Precision:
    """Dtypes of one op: its activation inputs, weights, outputs and accumulator.

    `scores` is the dtype attention materializes its score matrix in (None: `outputs`), e.g.
    fp32 for SD 2.1's `upcast_attention`.
    """

    inputs: str = "fp16"
    weights: str = "fp16"
    outputs: str = "fp16"
    accum: str = "fp32"
    scores: str | None = None

    def __post_init__(self) -> None:
        for name in ("inputs", "weights", "outputs", "accum", "scores"):
            value = getattr(self, name)
            if value is not None and value not in DTYPE_BITS:
                raise ValueError(f"unknown dtype {value!r} for {name}; expected one of {', '.join(DTYPE_BITS)}")

    @classmethod
    def uniform(cls, dtype: str) -> Precision:
        """Every operand in `dtype`, accumulation in fp32 (int32 for integer types)."""
        return cls(dtype, dtype, dtype, "int32" if dtype.startswith("int") else "fp32")

    @property
    def compute(self) -> str:
        """The dtype the MACs run in: the wider of inputs and weights (weight-only quantized
        weights are dequantized to the activations' type)."""
        return max(self.inputs, self.weights, key=lambda d: DTYPE_BITS[d])


class OpKind(str, Enum):
    """What an op computes. The simulator has one lowering per kind."""

    CONV1D = "conv1d"
    CONV2D = "conv2d"
    CONV3D = "conv3d"
    LINEAR = "linear"
    MATMUL = "matmul"  # batched activation x activation product (no weights)
    ATTENTION = "attention"  # softmax(Q K^T / sqrt(d)) V, lowered fused or unfused
    GROUP_NORM = "group_norm"
    LAYER_NORM = "layer_norm"
    SOFTMAX = "softmax"
    ACTIVATION = "activation"  # SiLU, GELU, GEGLU gate, ...
    ELEMENTWISE = "elementwise"  # add, mul, scale
    RESAMPLE = "resample"  # nearest upsample, strided/avg downsample without weights
    DATA_MOVEMENT = "data_movement"  # permute/transpose/contiguous copies, concat
    EMBEDDING = "embedding"  # table lookup


GEMM_KINDS = frozenset(
    {OpKind.CONV1D, OpKind.CONV2D, OpKind.CONV3D, OpKind.LINEAR, OpKind.MATMUL, OpKind.ATTENTION}
)
CONV_KINDS = frozenset({OpKind.CONV1D, OpKind.CONV2D, OpKind.CONV3D})

_OP_CLASS = {
    OpKind.CONV1D: "conv",
    OpKind.CONV2D: "conv",
    OpKind.CONV3D: "conv",
    OpKind.LINEAR: "linear",
    OpKind.MATMUL: "linear",
    OpKind.ATTENTION: "attention",
    OpKind.GROUP_NORM: "norm",
    OpKind.LAYER_NORM: "norm",
    OpKind.SOFTMAX: "softmax",
    OpKind.ACTIVATION: "activation",
    OpKind.ELEMENTWISE: "elementwise",
    OpKind.RESAMPLE: "resample",
    OpKind.DATA_MOVEMENT: "data_movement",
    OpKind.EMBEDDING: "embedding",
}
OP_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(_OP_CLASS.values()))


def op_class(kind: OpKind) -> str:
    """The coarse class used in time breakdowns (conv, linear, attention, norm, ...)."""
    return _OP_CLASS[kind]


def numel(shape: Shape) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


@dataclass(frozen=True)
class Op:
    """One operator of a model.

    `macs` is the multiply-accumulate count of the GEMM-like kinds (0 otherwise) and
    `flops == 2 * macs`; `vector_ops` counts element operations of non-GEMM work (a norm,
    a softmax, an add) so that FLOP totals stay comparable with the usual GEMM-only counts.
    `attrs` holds kind-specific details (kernel, stride, heads, role, ...).
    """

    name: str
    kind: OpKind
    inputs: tuple[Shape, ...]
    output: Shape
    dtype: str = "fp16"
    params: int = 0
    macs: int = 0
    vector_ops: int = 0
    stage: str = ""
    block: str = ""
    repeat: int = 1
    attrs: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[int, ...] | None = None
    precision: Precision | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps is not None:
            steps = tuple(int(s) for s in self.steps)
            if len(set(steps)) != len(steps) or any(s < 0 for s in steps):
                raise ValueError(f"op {self.name!r}: steps must be distinct non-negative indices")
            if self.repeat != len(steps):
                raise ValueError(
                    f"op {self.name!r}: repeat {self.repeat} != {len(steps)} steps; use Op.in_steps(...)"
                )
            object.__setattr__(self, "steps", steps)

    def in_steps(self, steps: Iterable[int]) -> Op:
        """This op running in the given loop steps (its repeat follows)."""
        steps = tuple(sorted(set(int(s) for s in steps)))
        return replace(self, steps=steps, repeat=len(steps))

    @property
    def step_indices(self) -> tuple[int, ...]:
        """The loop steps the op runs in (0..repeat-1 unless a step transform chose others)."""
        return self.steps if self.steps is not None else tuple(range(self.repeat))

    @property
    def dtypes(self) -> Precision:
        """The op's dtypes: set by a precision pass, else the model's dtype throughout."""
        return self.precision or Precision.uniform(self.dtype)

    def annotate(self, **annotations: Any) -> Op:
        """A copy with `annotations` added (passes use this; builders never do)."""
        return replace(self, annotations={**self.annotations, **annotations})

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def op_class(self) -> str:
        return op_class(self.kind)

    @property
    def word_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def input_bytes(self) -> int:
        return sum(numel(s) for s in self.inputs) * self.word_bytes

    @property
    def output_bytes(self) -> int:
        return numel(self.output) * self.word_bytes

    @property
    def weight_bytes(self) -> int:
        return self.params * self.word_bytes


@dataclass(frozen=True)
class PlanStep:
    """One entry of a step plan: a label, its stage, its loop step (None: runs once) and the
    indices (into `OpGraph.ops()`) of the ops it runs."""

    label: str
    stage: str
    step: int | None
    ops: tuple[int, ...]


class StepPlan(tuple):
    """A step plan: a tuple of `PlanStep`s, with its occurrence arrays computed once."""

    @cached_property
    def occurrences(self) -> tuple[Any, Any, Any]:
        """(plan entry of each op occurrence, op index of each occurrence, index of each entry's
        first occurrence), as int64 numpy arrays, in execution order."""
        import numpy as np

        sizes = np.array([len(p.ops) for p in self], dtype=np.int64)
        entry = np.repeat(np.arange(len(self), dtype=np.int64), sizes)
        op = np.fromiter((i for p in self for i in p.ops), dtype=np.int64, count=int(sizes.sum()))
        firsts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if len(self) else sizes
        return entry, op, firsts


class OpGraph:
    """A model as a DAG of `Op`s. Nodes are op names; edges are tensors flowing between ops."""

    def __init__(self, name: str, graph: nx.DiGraph | None = None) -> None:
        self.name = name
        if graph is None:
            import networkx as nx

            graph = nx.DiGraph()
        self.graph = graph
        self._order: list[Op] | None = None
        self._memo: dict[Any, Any] = {}

    # -- construction ------------------------------------------------------------------
    def add(self, op: Op, deps: tuple[str, ...] = ()) -> None:
        """Add `op`, depending on the ops named in `deps` (which must already exist)."""
        if op.name in self.graph:
            raise ValueError(f"duplicate op name {op.name!r} in graph {self.name!r}")
        self.graph.add_node(op.name, op=op)
        for dep in deps:
            if dep not in self.graph:
                raise ValueError(f"op {op.name!r} depends on unknown op {dep!r}")
            self.graph.add_edge(dep, op.name)
        self._order = None
        self._memo.clear()

    def extend(self, other: OpGraph, *, after: tuple[str, ...] = (), **changes: Any) -> None:
        """Append all ops of `other`, applying `changes` (e.g. repeat, steps, stage) to each op.

        Source ops of `other` get edges from the ops named in `after`, so composed pipelines
        stay one DAG (text encoder -> denoiser -> decoder).
        """
        for op in other.ops():
            deps = tuple(other.graph.predecessors(op.name))
            if not deps:
                deps = after
            self.add(replace(op, **changes) if changes else op, deps)

    def copy(self, name: str | None = None) -> OpGraph:
        """A new graph with the same ops and edges (ops are immutable and shared)."""
        return OpGraph(name or self.name, self.graph.copy())

    def with_ops(self, changed: Mapping[str, Op]) -> OpGraph:
        """A copy in which the ops named in `changed` are replaced (same names, same edges)."""
        out = self.copy()
        for name, op in changed.items():
            if op.name != name or name not in out.graph:
                raise ValueError(f"cannot replace op {name!r} by {op.name!r}")
            out.graph.nodes[name]["op"] = op
        return out

    # -- queries -----------------------------------------------------------------------
    def ops(self) -> list[Op]:
        """Ops in a deterministic topological order."""
        if self._order is None:
            import networkx as nx

            order = nx.lexicographical_topological_sort(self.graph, key=self._insert_key())
            self._order = [self.graph.nodes[n]["op"] for n in order]
        return self._order

    def _insert_key(self):
        index = {n: i for i, n in enumerate(self.graph.nodes)}
        return lambda n: index[n]

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops())

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __getitem__(self, name: str) -> Op:
        return self.graph.nodes[name]["op"]

    def sinks(self) -> tuple[str, ...]:
        """Names of ops nothing depends on (the graph's outputs)."""
        return tuple(n for n in self.graph.nodes if self.graph.out_degree(n) == 0)

    def memo(self, key: Any, factory: Any) -> Any:
        """`factory()` computed once per graph state (cleared when an op is added): derived,
        hardware-independent data such as the step plan or a lowering."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

    def step_plan(self) -> StepPlan:
        """The pipeline's steps in execution order: for each stage (in order of first op), its
        ops that run once, then one entry per loop step (`stage:step<i>`). Every op appears in
        the entries of the steps it runs in; identical steps share ops (evaluated once)."""
        return self.memo("step_plan", self._step_plan)

    def _step_plan(self) -> StepPlan:
        stages: dict[str, tuple[list[int], dict[int, list[int]]]] = {}
        for i, op in enumerate(self.ops()):
            once, loop = stages.setdefault(op.stage, ([], {}))
            if op.steps is None and op.repeat == 1:
                once.append(i)
            else:
                for s in op.step_indices:
                    loop.setdefault(s, []).append(i)
        plan = []
        for stage, (once, loop) in stages.items():
            if once:
                plan.append(PlanStep(stage, stage, None, tuple(once)))
            plan += [PlanStep(f"{stage}:step{s}", stage, s, tuple(loop[s])) for s in sorted(loop)]
        return StepPlan(plan)

    def total_params(self) -> int:
        """Parameters of the model (each op counted once, whatever its repeat)."""
        return sum(op.params for op in self.ops())

    def total_macs(self) -> int:
        """MACs of one pipeline invocation (repeats included)."""
        return sum(op.macs * op.repeat for op in self.ops())

    def total_flops(self) -> int:
        """GEMM FLOPs (2 x MACs) of one invocation, repeats included; vector work excluded."""
        return 2 * self.total_macs()

    def to_frame(self) -> pd.DataFrame:
        """One row per op: name, kind, class, stage, block, shapes, params, MACs, repeat, attrs."""
        rows = [
            {
                "op": op.name,
                "kind": op.kind.value,
                "op_class": op.op_class,
                "stage": op.stage,
                "block": op.block,
                "output": op.output,
                "params": op.params,
                "macs": op.macs,
                "flops": op.flops,
                "vector_ops": op.vector_ops,
                "repeat": op.repeat,
                **{f"attr_{k}": v for k, v in op.attrs.items()},
            }
            for op in self.ops()
        ]
        import pandas as pd

        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"OpGraph({self.name!r}, ops={len(self)}, params={self.total_params():,})"
