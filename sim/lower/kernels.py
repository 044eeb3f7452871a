"""Lowering: every `Op` becomes kernels on one of three units, as columns of numpy arrays.

- GEMM kernels (systolic array): M x K x N, `count` independent instances (groups,
  batch x heads), and whether each operand (A = ifmap, B = filter, C = output) lives in DRAM.
- Vector kernels (vector unit): elements, op class, DRAM words in/out, norm passes.
- Move kernels (DMA): words read and written, no compute.

Attention lowers two ways. Unfused: QK^T writes the score matrix to DRAM, softmax reads and
writes it, PV reads it. Fused (Flash-style): the same GEMMs with the scores kept on chip and an
on-chip online softmax (with its rescaling work). The cost models never see op kinds or names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from workloads.ir import CONV_KINDS, Op, OpGraph, OpKind, numel

from ..arch import VECTOR_CLASSES

ATTENTION_MODES = ("fused", "unfused")
# Online softmax keeps a running max/sum and rescales the output tile per key block:
# about one extra elementwise pass over the scores on top of the softmax itself.
FUSED_SOFTMAX_FACTOR = 1.25


class Unit(IntEnum):
    GEMM = 0
    VECTOR = 1
    MOVE = 2


# Columns of the kernel table. All int64; the cost models receive them as arrays.
COLUMNS = (
    "op", "unit", "m", "k", "n", "count", "a_dram", "b_dram", "c_dram",
    "vclass", "elements", "words_in", "words_out", "multipass", "par", "launches", "overlap",
)  # fmt: skip
_VCLASS = {name: i for i, name in enumerate(VECTOR_CLASSES)}


@dataclass(frozen=True)
class Kernels:
    """The kernel table: one row per kernel, `cols[name]` an int64 array per column."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["op"])

    def matrix(self) -> np.ndarray:
        """All columns but `op` as an (n, c) matrix: the identity of a kernel's work."""
        return np.stack([self.cols[c] for c in COLUMNS[1:]], axis=1)


def _gemm(m: int, k: int, n: int, count: int = 1, a: int = 1, b: int = 1, c: int = 1, launches: int = 1) -> dict:
    return {"unit": Unit.GEMM, "m": m, "k": k, "n": n, "count": count, "a_dram": a, "b_dram": b, "c_dram": c, "launches": launches}


def _vector(
    vclass: str, elements: int, words_in: int, words_out: int, multipass: int = 0, launches: int = 1, par: int = 0,
    overlap: int = 0,
) -> dict:
    return {
        "unit": Unit.VECTOR, "vclass": _VCLASS[vclass], "elements": elements, "words_in": words_in,
        "words_out": words_out, "multipass": multipass, "launches": launches, "par": par, "overlap": overlap,
    }  # fmt: skip


def _move(words_in: int, words_out: int) -> dict:
    return {"unit": Unit.MOVE, "words_in": words_in, "words_out": words_out, "launches": 1}


def _attention(op: Op, mode: str, tile: tuple[int, int]) -> list[dict]:
    a = op.attrs
    bh, lq, lk, d, dv = a["batch"] * a["heads"], a["lq"], a["lk"], a["head_dim"], a["v_head_dim"]
    scores = bh * lq * lk
    if mode == "unfused":
        return [
            _gemm(lq, d, lk, bh),  # S = Q K^T -> DRAM
            _vector("softmax", scores, scores, scores),  # P = softmax(S), DRAM -> DRAM
            _gemm(lq, lk, dv, bh),  # O = P V, P read back from DRAM
        ]
    # one fused kernel: Q, K, V read, O written; S and P stay on chip, and the online softmax
    # runs on the vector unit while the array computes the next tile (overlapped). Queries and
    # keys are processed in tiles, so sequences shorter than a tile (temporal attention) pay
    # for a whole tile.
    lq, lk = _round_up(lq, tile[0]), _round_up(lk, tile[1])
    return [
        _gemm(lq, d, lk, bh, c=0),
        _vector("softmax", math.ceil(bh * lq * lk * FUSED_SOFTMAX_FACTOR), 0, 0, launches=0, overlap=1),
        _gemm(lq, lk, dv, bh, a=0, launches=0),
    ]


def _round_up(x: int, tile: int) -> int:
    return -(-x // tile) * tile


def lower_op(op: Op, attention: str = "fused", tile: tuple[int, int] = (1, 1)) -> list[dict]:
    """Kernels of one op (a list of column dicts)."""
    kind, a = op.kind, op.attrs
    if kind in CONV_KINDS:
        groups = a["groups"]
        m = op.output[0] * numel(op.output[2:])
        k = a["in_ch"] // groups * math.prod(a["kernel"])
        return [_gemm(m, k, a["out_ch"] // groups, groups)]
    if kind is OpKind.LINEAR:
        return [_gemm(a["tokens"], a["in_features"], a["out_features"])]
    if kind is OpKind.MATMUL:
        return [_gemm(a["m"], a["k"], a["n"], a["count"])]
    if kind is OpKind.ATTENTION:
        return _attention(op, attention, tile)
    words_in = sum(numel(s) for s in op.inputs)
    words_out = numel(op.output)
    if kind is OpKind.DATA_MOVEMENT:
        return [_move(words_in, words_out)]
    if kind is OpKind.EMBEDDING:  # gather one table row per output element
        return [_vector("embedding", words_out, words_out, words_out)]
    vclass = op.op_class  # norm, softmax, activation, elementwise, resample: the vector cost classes
    # GroupNorm statistics reduce over (N x groups) independent groups: its parallelism.
    par = op.output[0] * a["groups"] if kind is OpKind.GROUP_NORM else 0
    return [_vector(vclass, words_out, words_in, words_out, multipass=int(vclass == "norm"), par=par)]


def epilogues(graph: OpGraph) -> dict[str, str]:
    """Elementwise/activation ops fusable into the GEMM producing their input: consumer -> producer.

    A GEMM (conv, linear, matmul) whose output feeds only one activation or elementwise op
    no larger than it (bias add, SiLU, GEGLU gate) writes that op's result instead of its own:
    one kernel and one DRAM round trip less.
    """
    fused = {}
    g = graph.graph
    for op in graph.ops():
        if op.kind not in (OpKind.ACTIVATION, OpKind.ELEMENTWISE):
            continue
        for name in g.predecessors(op.name):
            producer = graph[name]
            sole_consumer = g.out_degree(name) == 1
            if producer.kind in _EPILOGUE_HOSTS and sole_consumer and numel(op.output) <= numel(producer.output):
                fused[op.name] = name
                break
    return fused


_EPILOGUE_HOSTS = frozenset({OpKind.CONV1D, OpKind.CONV2D, OpKind.CONV3D, OpKind.LINEAR, OpKind.MATMUL})


def lower(
    graph: OpGraph, attention: str = "fused", *, fuse_elementwise: bool = False, tile: tuple[int, int] = (1, 1)
) -> Kernels:
    """The kernel table of `graph.ops()` (in order); the `op` column indexes into that list.

    `tile` is the (query, key) tile of fused attention kernels (the arch's `attention` section).
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    fused = epilogues(graph) if fuse_elementwise else {}
    hosts = set(fused.values())
    rows = []
    for i, op in enumerate(graph.ops()):
        kernels = lower_op(op, attention, tile)
        if op.name in hosts:
            kernels[0]["c_dram"] = 0
        if op.name in fused:
            kernels[0]["words_in"] -= numel(graph[fused[op.name]].output)
            kernels[0]["launches"] = 0
        rows += [{"op": i, **kernel} for kernel in kernels]
    cols = {c: np.fromiter((r.get(c, 0) for r in rows), dtype=np.int64, count=len(rows)) for c in COLUMNS}
    return Kernels(cols)
