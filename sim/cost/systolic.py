"""Systolic-array compute cycles, SCALE-Sim 3.0 compatible (stall-free).

For an R x C array and a GEMM of M x K (ifmap) times K x N (filter):

    OS: folds = ceil(M/R) * ceil(N/C), cycles per fold = K + R + C - 2
    WS: folds = ceil(K/R) * ceil(N/C), cycles per fold = 2R + C + M - 2
    IS: folds = ceil(K/R) * ceil(M/C), cycles per fold = 2R + C + N - 2

Folds are strictly serialized and a partial fold costs a full one; SCALE-Sim reports
`folds * per_fold - 1` as its stall-free Total Cycles. The `overlap` mode (opt-in) hides one
fold's fill/drain behind the next, leaving only one fill and drain per GEMM: a faster,
more realistic pipelined array (not SCALE-Sim compatible).

Layer-wise N:M weight sparsity (SCALE-Sim 3.0, `[sparsity] SparsitySupport = true`,
`OptimizedMapping = false`, the ratio in the topology's last column). Verified against its
source (`scalesim/compute/operand_matrix.py`, `create_filter_matrix` / `create_ifmap_matrix`):
the filter's K rows get the pattern N ones then M - N zeros, tiled and cut to K; each column
is condensed block by block to its nonzeros (a short last block padded to N, all-zero trailing
rows dropped), and the ifmap keeps only the matching columns. Both operands therefore have

    K' = condensed_k(K, N, M) = floor(K/M) * N + min(N, K mod M)      (= K*N/M when M | K)

and the unchanged compute classes (`systolic_compute_{os,ws,is}.py`) fold the condensed GEMM:
OS streams T = K', WS and IS fold the rows ceil(K'/R). Stall-free cycles are the dense
formula with K' for K. Filter storage (`scalesim/compute/compression.py`, reported in
SPARSE_REPORT.csv) is `sparse_filter_storage`. The row-wise mode (`OptimizedMapping = true`,
a random N per filter column) is not modeled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numba import njit

from workloads.annotations import parse_nm

IntOrArray = TypeVar("IntOrArray", int, np.ndarray)

OS, WS, IS = 0, 1, 2
DATAFLOWS = {"os": OS, "ws": WS, "is": IS}


@njit(cache=True, inline="always")
def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


@njit(cache=True)
def fold_geometry(m: int, k: int, n: int, rows: int, cols: int, dataflow: int) -> tuple[int, int, int, int]:
    """(row folds, col folds, streamed length T, fold count) of one GEMM on the array.

    Rows of the array hold the reduction (WS/IS) or output rows (OS); T is the number of
    vectors streamed through per fold (K for OS, M for WS, N for IS).
    """
    if dataflow == OS:
        fr, fc, t = _cdiv(m, rows), _cdiv(n, cols), k
    elif dataflow == WS:
        fr, fc, t = _cdiv(k, rows), _cdiv(n, cols), m
    else:
        fr, fc, t = _cdiv(k, rows), _cdiv(m, cols), n
    return fr, fc, t, fr * fc


@njit(cache=True)
def fold_cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: int) -> int:
    """Cycles of one fold (fill + stream + drain), SCALE-Sim's per-fold latency."""
    if dataflow == OS:
        return k + rows + cols - 2
    if dataflow == WS:
        return 2 * rows + cols + m - 2
    return 2 * rows + cols + n - 2


@njit(cache=True)
def _gemm_cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: int, overlap: bool) -> int:
    folds = fold_geometry(m, k, n, rows, cols, dataflow)[3]
    per_fold = fold_cycles(m, k, n, rows, cols, dataflow)
    if not overlap:
        return folds * per_fold - 1
    stream = per_fold - (rows + cols - 2) if dataflow == OS else per_fold - (2 * rows + cols - 2)
    return folds * stream + (per_fold - stream) - 1


@njit(cache=True)
def gemm_cycles_batch(
    m: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int, dataflow: int, overlap: bool
) -> np.ndarray:
    """Vectorized `gemm_cycles` over arrays of GEMM dims (int64)."""
    out = np.empty(m.shape[0], dtype=np.int64)
    for i in range(m.shape[0]):
        out[i] = _gemm_cycles(m[i], k[i], n[i], rows, cols, dataflow, overlap)
    return out


def dataflow_code(dataflow: str) -> int:
    """Internal code of a dataflow name ('os', 'ws', 'is')."""
    try:
        return DATAFLOWS[dataflow.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of os, ws, is") from None


def gemm_cycles(
    M: int,
    K: int,
    N: int,
    rows: int,
    cols: int,
    dataflow: str,
    *,
    overlap: bool = False,
    sparsity: str | tuple[int, int] | None = None,
) -> int:
    """SCALE-Sim's stall-free Total Cycles for an M x K x N GEMM on a rows x cols array.

    `sparsity`: layer-wise N:M weight sparsity ("2:4" or (2, 4)) as SCALE-Sim 3.0 models it:
    the reduction K condensed to `condensed_k(K, N, M)`; None or "1:1" is dense.
    """
    for label, v in (("M", M), ("K", K), ("N", N), ("rows", rows), ("cols", cols)):
        if int(v) <= 0:
            raise ValueError(f"{label} must be positive, got {v}")
    k = int(K) if sparsity is None else condensed_k(int(K), *nm_ratio(sparsity))
    return int(_gemm_cycles(int(M), k, int(N), int(rows), int(cols), dataflow_code(dataflow), overlap))


def nm_ratio(sparsity: str | tuple[int, int]) -> tuple[int, int]:
    """(N, M) of an N:M ratio given as "N:M" or a pair (ValueError unless 1 <= N <= M)."""
    if isinstance(sparsity, str):
        return parse_nm(sparsity)
    n, m = (int(x) for x in sparsity)
    return parse_nm(f"{n}:{m}")


def condensed_k(k: IntOrArray, n: int, m: int) -> IntOrArray:
    """The reduction length SCALE-Sim 3.0 folds under layer-wise N:M: floor(K/M)*N +
    min(N, K mod M) (works elementwise on int64 arrays too)."""
    return (k // m) * n + np.minimum(k % m, n) if isinstance(k, np.ndarray) else (k // m) * n + min(k % m, n)


STORAGE_FORMATS = ("dense", "csr", "csc", "ellpack_block")  # SCALE-Sim's SparseRep values, and dense
METADATA_WORD_BITS = 32  # SCALE-Sim's `compression`: "1 word = 4 bytes = 32 bits"


@dataclass(frozen=True)
class FilterStorage:
    """Filter storage as SCALE-Sim 3.0 reports it (SPARSE_REPORT.csv), in words.

    `original`: the dense K x N filter; `data`: stored nonzero values (ELLPACK-block: the
    condensed K' x N matrix; CSR/CSC: the K' x N nonzeros); `metadata`: index words (CSR: a
    column index per nonzero and K + 1 row pointers; CSC: a row index per nonzero and N + 1
    column pointers; ELLPACK-block: ceil(log2 M) bits per stored value, in 32-bit words, so
    possibly fractional). `new` = data + metadata is SCALE-Sim's "New Storage (Filter+Metadata)".
    """

    original: int
    data: int
    metadata: float

    @property
    def new(self) -> float:
        return self.data + self.metadata

    @property
    def metadata_bits(self) -> int:
        return round(self.metadata * METADATA_WORD_BITS)


def sparse_filter_storage(
    K: int, N: int, sparsity: str | tuple[int, int] | None, format: str = "ellpack_block"
) -> FilterStorage:
    """SCALE-Sim 3.0's filter storage of a K x N filter under layer-wise N:M sparsity stored in
    `format` (csr, csc, ellpack_block; or dense). SCALE-Sim reports index metadata for CSR/CSC
    even at 1:1; ELLPACK-block at 1:1 has none (log2 1 = 0)."""
    if int(K) <= 0 or int(N) <= 0:
        raise ValueError(f"K and N must be positive, got K={K}, N={N}")
    if format not in STORAGE_FORMATS:
        raise ValueError(f"unknown filter storage format {format!r}; expected one of {', '.join(STORAGE_FORMATS)}")
    k, n = int(K), int(N)
    nz_n, m = (1, 1) if sparsity is None else nm_ratio(sparsity)
    nnz = condensed_k(k, nz_n, m) * n
    if format == "dense":
        return FilterStorage(k * n, k * n, 0.0)
    if format == "ellpack_block":
        return FilterStorage(k * n, nnz, nnz * math.ceil(math.log2(m)) / METADATA_WORD_BITS)
    pointers = (k if format == "csr" else n) + 1
    return FilterStorage(k * n, nnz, float(nnz + pointers))
