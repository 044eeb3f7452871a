"""Numba cost models: cycles, stalls and words moved for arrays of kernels at once.

GEMM memory model (per systolic array, after partitioning the kernel over arrays):
operands stream from DRAM into double-buffered SRAMs. For the tile loop, both loop orders
of the two fold dimensions are considered and the one moving fewer DRAM words is taken: an
operand tile reused across the inner loop is fetched once if it fits in half its SRAM,
otherwise it is re-fetched every inner iteration; WS/IS partial sums spill to DRAM (write
and read back) when the accumulation set does not fit half the output SRAM. Time is a tile
pipeline: first load, then per fold max(compute, transfer of the next fold), then the last
write-back, so stall = load + write + sum of max(0, transfer - compute).

Vector kernels stream their inputs and outputs through DRAM (norms re-read inputs that do not
fit on chip) and take max(ALU cycles, DRAM cycles). Move kernels only transfer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .systolic import IS, OS, WS, fold_cycles, fold_geometry

# Output columns of `evaluate`.
METRICS = (
    "compute_cycles", "stall_cycles", "dram_read_words", "dram_write_words",
    "sram_read_words", "sram_write_words", "macs", "vector_cycles", "arrays_used",
)  # fmt: skip
N_METRICS = len(METRICS)


@njit(cache=True, inline="always")
def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


@njit(cache=True)
def gemm_traffic(m, k, n, rows, cols, dataflow, a_cap, b_cap, c_cap):
    """DRAM words (a reads, b reads, partial-sum spill read+write) and SRAM operand reads
    of one M x K x N GEMM; caps are per-operand SRAM words (half usable per buffer)."""
    a_words, b_words, c_words = m * k, k * n, m * n
    ha, hb, hc = a_cap // 2, b_cap // 2, c_cap // 2
    if dataflow == OS:
        fm, fn = _cdiv(m, rows), _cdiv(n, cols)
        # order 1: N-tiles outer, M-tiles inner (filter tile K x C reused across M-tiles)
        a1 = a_words if a_words <= ha else fn * a_words
        b1 = b_words if k * cols <= hb else fm * b_words
        # order 2: M-tiles outer, N-tiles inner (ifmap tile R x K reused across N-tiles)
        a2 = a_words if rows * k <= ha else fn * a_words
        b2 = b_words if b_words <= hb else fm * b_words
        spill1 = spill2 = 0
        sram_reads = fn * a_words + fm * b_words
    elif dataflow == WS:
        fk, fn = _cdiv(k, rows), _cdiv(n, cols)
        b1 = b2 = b_words  # each stationary weight is loaded exactly once
        # order 1: N-tiles outer, K-tiles inner: accumulate an M x C tile on chip
        a1 = a_words if a_words <= ha else fn * a_words
        spill1 = 0 if m * cols <= hc else 2 * (fk - 1) * c_words
        # order 2: K-tiles outer, N-tiles inner: reuse the M x R ifmap slice, accumulate all of C
        a2 = a_words if m * rows <= ha else fn * a_words
        spill2 = 0 if c_words <= hc else 2 * (fk - 1) * c_words
        sram_reads = fn * a_words + b_words + (fk - 1) * c_words
    else:  # IS: the mirror of WS with the roles of ifmap and filter swapped
        fk, fm = _cdiv(k, rows), _cdiv(m, cols)
        a1 = a2 = a_words
        b1 = b_words if b_words <= hb else fm * b_words
        spill1 = 0 if n * cols <= hc else 2 * (fk - 1) * c_words
        b2 = b_words if n * rows <= hb else fm * b_words
        spill2 = 0 if c_words <= hc else 2 * (fk - 1) * c_words
        sram_reads = fm * b_words + a_words + (fk - 1) * c_words
    if a1 + b1 + spill1 <= a2 + b2 + spill2:
        return a1, b1, spill1, sram_reads
    return a2, b2, spill2, sram_reads


@njit(cache=True)
def _gemm(out, m, k, n, count, a_dram, b_dram, c_dram, rows, cols, dataflow, overlap, arrays, caps, bw):
    # Partition: independent instances spread over arrays; a kernel with fewer instances than
    # arrays splits its larger output dimension (M or N) across the spare arrays.
    split = 1
    if count < arrays:
        split = arrays // count
        if m >= n:
            m = _cdiv(m, split)
        else:
            n = _cdiv(n, split)
    instances = count * split
    used = min(arrays, instances)
    per_array = _cdiv(instances, arrays)
    bw_array = bw / used

    fr, fc, t, folds = fold_geometry(m, k, n, rows, cols, dataflow)
    per_fold = fold_cycles(m, k, n, rows, cols, dataflow)
    stream = per_fold
    if overlap:
        stream = t
    a_rd, b_rd, spill, sram_rd = gemm_traffic(m, k, n, rows, cols, dataflow, caps[0], caps[1], caps[2])
    reads = a_dram * a_rd + b_dram * b_rd + spill // 2
    writes = c_dram * m * n + spill // 2

    total_folds = per_array * folds
    load = reads / folds / bw_array
    store = writes / folds / bw_array
    compute = total_folds * stream + (per_fold - stream) - 1
    stall = load + store + (total_folds - 1) * max(0.0, load + store - stream)

    out[0] = compute
    out[1] = stall
    out[2] = reads * instances
    out[3] = writes * instances
    out[4] = (sram_rd + m * n) * instances
    out[5] = (reads + m * n * (1 + max(0, fr - 1) * (dataflow != OS))) * instances
    out[6] = m * k * n * instances
    out[7] = 0.0
    out[8] = used


@njit(cache=True)
def evaluate(
    unit, m, k, n, count, a_dram, b_dram, c_dram, vclass, elements, words_in, words_out, multipass,
    rows, cols, dataflow, overlap, arrays, caps, bw, lanes, cpe, onchip_words, norm_passes,
):  # fmt: skip
    """Metrics (len(unit) x N_METRICS, float64) of each kernel; see `METRICS`."""
    out = np.zeros((unit.shape[0], N_METRICS))
    for i in range(unit.shape[0]):
        if unit[i] == 0:
            _gemm(out[i], m[i], k[i], n[i], count[i], a_dram[i], b_dram[i], c_dram[i],
                  rows, cols, dataflow, overlap, arrays, caps, bw)  # fmt: skip
            continue
        rd = float(words_in[i])
        if multipass[i] and words_in[i] > onchip_words:
            rd *= norm_passes
        moved = rd + words_out[i]
        mem = np.ceil(moved / bw)
        alu = 0.0
        if unit[i] == 1:
            alu = np.ceil(elements[i] * cpe[vclass[i]] / lanes)
        cycles = max(alu, mem)
        out[i, 0] = alu
        out[i, 1] = cycles - alu
        out[i, 2] = rd
        out[i, 3] = words_out[i]
        out[i, 4] = rd if unit[i] == 1 else 0.0
        out[i, 5] = words_out[i] if unit[i] == 1 else 0.0
        out[i, 7] = alu
    return out


__all__ = ["IS", "METRICS", "OS", "WS", "evaluate", "gemm_traffic"]
