"""Numba cost models: cycles, stalls and words moved for arrays of kernels at once.

GEMM partitioning: the folds of a kernel (all its instances) are dealt out to every array on
the chip; each array runs ceil(folds / arrays) folds back to back, in lock step with the others.

GEMM memory model: operands stream from DRAM into double-buffered SRAMs. For the tile loop, both loop orders
of the two fold dimensions are considered and the one moving fewer DRAM words is taken: an
operand tile reused across the inner loop is fetched once if it fits in half its SRAM,
otherwise it is re-fetched every inner iteration; WS/IS partial sums spill to DRAM (write
and read back) when the accumulation set does not fit half the output SRAM. Time is a tile
pipeline: first load, then per fold max(compute, transfer of the next fold), then the last
write-back, so stall = load + write + sum of max(0, transfer - compute). Traffic is that of
one array walking the folds with its own SRAM; with a global buffer (L2), an operand that fits
in half of it is read from DRAM once and every re-read is served by the L2 at its bandwidth.

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
def _gemm(out, m, k, n, count, a_dram, b_dram, c_dram, rows, cols, dataflow, overlap, arrays, caps, bw, l2_words, l2_bw):
    # Partitioning: the kernel's folds (count instances x folds each) are dealt out to all
    # arrays of the chip, so an array runs ceil(total / arrays) folds back to back.
    fr, fc, t, folds = fold_geometry(m, k, n, rows, cols, dataflow)
    per_fold = fold_cycles(m, k, n, rows, cols, dataflow)
    stream = t if overlap else per_fold
    total_folds = count * folds
    steps = _cdiv(total_folds, arrays)
    used = min(arrays, total_folds)

    # Traffic of one instance as one array walks its folds with its own SRAM. With an L2,
    # an operand that fits in it is fetched from DRAM once; re-reads are served by the L2.
    a_rd, b_rd, spill, sram_rd = gemm_traffic(m, k, n, rows, cols, dataflow, caps[0], caps[1], caps[2])
    a_mem = m * k if 2 * m * k <= l2_words else a_rd
    b_mem = k * n if 2 * k * n <= l2_words else b_rd
    c_spill = 0 if 2 * m * n <= l2_words else spill
    dram_rd = count * (a_dram * a_mem + b_dram * b_mem + c_spill // 2)
    dram_wr = count * (c_dram * m * n + c_spill // 2)
    fills = count * (a_dram * a_rd + b_dram * b_rd + spill // 2)

    # Tile pipeline over `steps` fold-steps; each step's transfer is limited by DRAM and,
    # when present, by the L2 that feeds every array's fills.
    load = dram_rd / steps / bw
    store = dram_wr / steps / bw
    if l2_bw > 0.0:
        load = max(load, fills / steps / l2_bw)
    compute = steps * stream + (per_fold - stream) - 1
    stall = load + store + (steps - 1) * max(0.0, load + store - stream)

    out[0] = compute
    out[1] = stall
    out[2] = dram_rd
    out[3] = dram_wr
    out[4] = count * (sram_rd + m * n)
    out[5] = fills + count * m * n * (1 + max(0, fr - 1) * (dataflow != OS))
    out[6] = count * m * k * n
    out[7] = 0.0
    out[8] = used


@njit(cache=True)
def evaluate(
    unit, m, k, n, count, a_dram, b_dram, c_dram, vclass, elements, words_in, words_out, multipass,
    rows, cols, dataflow, overlap, arrays, caps, bw, l2_words, l2_bw, lanes, cpe, onchip_words, norm_passes,
):  # fmt: skip
    """Metrics (len(unit) x N_METRICS, float64) of each kernel; see `METRICS`."""
    out = np.zeros((unit.shape[0], N_METRICS))
    for i in range(unit.shape[0]):
        if unit[i] == 0:
            _gemm(out[i], m[i], k[i], n[i], count[i], a_dram[i], b_dram[i], c_dram[i],
                  rows, cols, dataflow, overlap, arrays, caps, bw, l2_words, l2_bw)  # fmt: skip
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
