"""Lowering: every `Op` becomes kernels on one of three units, as columns of numpy arrays.

- GEMM kernels (systolic array): M x K x N, `count` independent instances (groups,
  batch x heads), and whether each operand (A = ifmap, B = filter, C = output) lives in DRAM.
- Vector kernels (vector unit): elements, op class, DRAM words in/out, norm passes.
- Move kernels (DMA): words read and written, no compute.

Operand widths: `a_bits`, `b_bits`, `c_bits` are the bits per element of A, B and C as a
precision pass set them (0: the arch's native word), `mac_dtype` the index in
`workloads.ir.COMPUTE_DTYPES` of the dtype the MACs run in (-1: native).

Attention lowers two ways. Unfused: QK^T writes the score matrix to DRAM, softmax reads and
writes it, PV reads it. Fused (Flash-style): the same GEMMs with the scores kept on chip and an
on-chip online softmax (with its rescaling work). The cost models never see op kinds or names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from workloads.ir import COMPUTE_DTYPES, CONV_KINDS, DTYPE_BITS, Op, OpGraph, OpKind, numel

from ..arch import VECTOR_CLASSES
from ..cost.schema import KERNEL, KERNEL_FIELDS
from .sparse import sparse_kernels

ATTENTION_MODES = ("fused", "unfused")
# Online softmax keeps a running max/sum and rescales the output tile per key block:
# about one extra elementwise pass over the scores on top of the softmax itself.
FUSED_SOFTMAX_FACTOR = 1.25


class Unit(IntEnum):
    GEMM = 0
    VECTOR = 1
    MOVE = 2


# Columns of the kernel table: the op it belongs to, its launches, then the cost models' record.
COLUMNS = ("op", "launches", *KERNEL_FIELDS)
_VCLASS = {name: i for i, name in enumerate(VECTOR_CLASSES)}


@dataclass(frozen=True)
class Kernels:
    """The kernel table: one row per kernel, `cols[name]` an int64 array per column."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["op"])

    def records(self) -> np.ndarray:
        """The cost models' kernel records (`sim.cost.KERNEL`), one per kernel."""
        return np.stack([self.cols[c] for c in KERNEL_FIELDS], axis=1).view(KERNEL).reshape(-1)


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
            {**_gemm(lq, d, lk, bh), "role": "qk"},  # S = Q K^T -> DRAM
            _vector("softmax", scores, scores, scores),  # P = softmax(S), DRAM -> DRAM
            {**_gemm(lq, lk, dv, bh), "role": "pv"},  # O = P V, P read back from DRAM
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


def _widths(op: Op, kernel: dict) -> dict:
    """Operand widths of a kernel of `op` (all native unless a precision pass set them)."""
    p = op.precision
    if p is None:
        return {**kernel, "mac_dtype": -1}
    scores = DTYPE_BITS[p.scores or p.outputs]
    if kernel["unit"] != Unit.GEMM:
        a, c = (scores, scores) if op.kind is OpKind.ATTENTION else (DTYPE_BITS[p.inputs], DTYPE_BITS[p.outputs])
        return {**kernel, "a_bits": a, "c_bits": c, "mac_dtype": -1}
    a, b, c = DTYPE_BITS[p.inputs], DTYPE_BITS[p.weights], DTYPE_BITS[p.outputs]
    if op.kind is OpKind.ATTENTION:  # QK^T: Q x K -> S; PV: P x V -> O (S and P in `scores`)
        b = a
        if kernel["c_dram"] == 1 and kernel.get("role") == "qk":
            c = scores
        if kernel["a_dram"] == 1 and kernel.get("role") == "pv":
            a = scores
    return {**kernel, "a_bits": a, "b_bits": b, "c_bits": c, "mac_dtype": COMPUTE_DTYPES.index(p.compute)}


def lower(
    graph: OpGraph, attention: str = "fused", *, tile: tuple[int, int] = (1, 1),
    expand: Callable[[Op, list[dict], OpGraph], list[dict]] | None = None,
) -> Kernels:
    """The kernel table of `graph.ops()` (in order); the `op` column indexes into that list.

    `tile` is the (query, key) tile of fused attention kernels (the arch's `attention` section).
    Epilogue fusion is read from the `fuse_elementwise` pass's annotations: the producing GEMM
    keeps its output on chip, the fused op reads only its other inputs and is not launched.
    `expand` (a runtime model, `sim.runtime.expand`) rewrites each op's kernels into those a
    software stack launches for it.
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    rows = []
    for i, op in enumerate(graph.ops()):
        kernels = lower_op(op, attention, tile)
        if op.annotations.get("epilogue"):
            kernels[0]["c_dram"] = 0
        if op.annotations.get("approx"):  # the approximate datapath runs the op's vector work
            kernels = [{**k, "approx": 1, "multipass": 0 if op.annotations["approx"] == "single_pass" else k.get("multipass", 0)}
                       if k["unit"] == Unit.VECTOR else k for k in kernels]
        producer = op.annotations.get("epilogue_of")
        if producer is not None:
            kernels[0]["words_in"] -= numel(graph[producer].output)
            kernels[0]["launches"] = 0
        if expand is not None:  # runtime model (sim.runtime): the kernels a software stack launches
            kernels = expand(op, kernels, graph)
        rows += [{"op": i, **_widths(op, kernel)} for kernel in sparse_kernels(op, kernels)]
    cols = {c: np.fromiter((r.get(c, 0) for r in rows), dtype=np.int64, count=len(rows)) for c in COLUMNS}
    return Kernels(cols)
