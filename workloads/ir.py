"""Operator IR: `Op` records in an `OpGraph` (a networkx DiGraph of data dependencies).

The IR is hardware-agnostic. Every op carries its shapes, parameter count, MACs (for the
GEMM-like kinds: conv, linear, attention), vector work (element operations of the non-GEMM
kinds), bytes touched, and tags (pipeline stage, block path, attention taxonomy). The
simulator lowers ops to kernels; builders never look at hardware.

`Op.repeat` says how many times the op runs per pipeline invocation: 50 denoising steps are
one UNet graph whose ops have `repeat=50`, so identical steps are evaluated once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

import networkx as nx
import pandas as pd

Shape = tuple[int, ...]

DTYPE_BYTES: Mapping[str, int] = MappingProxyType(
    {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int32": 4, "int64": 8}
)


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


class OpGraph:
    """A model as a DAG of `Op`s. Nodes are op names; edges are tensors flowing between ops."""

    def __init__(self, name: str, graph: nx.DiGraph | None = None) -> None:
        self.name = name
        self.graph = graph if graph is not None else nx.DiGraph()
        self._order: list[Op] | None = None

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

    def extend(self, other: OpGraph, *, after: tuple[str, ...] = (), **changes: Any) -> None:
        """Append all ops of `other`, applying `changes` (e.g. repeat, stage) to each op.

        Source ops of `other` get edges from the ops named in `after`, so composed pipelines
        stay one DAG (text encoder -> denoiser -> decoder).
        """
        for op in other.ops():
            deps = tuple(other.graph.predecessors(op.name))
            if not deps:
                deps = after
            self.add(replace(op, **changes) if changes else op, deps)

    # -- queries -----------------------------------------------------------------------
    def ops(self) -> list[Op]:
        """Ops in a deterministic topological order."""
        if self._order is None:
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
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"OpGraph({self.name!r}, ops={len(self)}, params={self.total_params():,})"
