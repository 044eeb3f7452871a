"""Systolic-array compute cycles, SCALE-Sim 3.0 compatible (stall-free).

For an R x C array and a GEMM of M x K (ifmap) times K x N (filter):

    OS: folds = ceil(M/R) * ceil(N/C), cycles per fold = K + R + C - 2
    WS: folds = ceil(K/R) * ceil(N/C), cycles per fold = 2R + C + M - 2
    IS: folds = ceil(K/R) * ceil(M/C), cycles per fold = 2R + C + N - 2

Folds are strictly serialized and a partial fold costs a full one; SCALE-Sim reports
`folds * per_fold - 1` as its stall-free Total Cycles. The `overlap` mode (opt-in) hides one
fold's fill/drain behind the next, leaving only one fill and drain per GEMM: a faster,
more realistic pipelined array (not SCALE-Sim compatible).
"""

from __future__ import annotations

import numpy as np
from numba import njit

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


def gemm_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: str, *, overlap: bool = False) -> int:
    """SCALE-Sim's stall-free Total Cycles for an M x K x N GEMM on a rows x cols array."""
    for label, v in (("M", M), ("K", K), ("N", N), ("rows", rows), ("cols", cols)):
        if int(v) <= 0:
            raise ValueError(f"{label} must be positive, got {v}")
    return int(_gemm_cycles(int(M), int(K), int(N), int(rows), int(cols), dataflow_code(dataflow), overlap))
