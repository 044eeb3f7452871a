"""Numba cost models: cycles, stalls and words moved for arrays of kernels at once.

GEMM partitioning: the folds of a kernel (all its instances) are dealt out to every array on
the chip; each array runs ceil(folds / arrays) folds back to back, in lock step with the others.

GEMM memory model: operands stream from DRAM into double-buffered SRAMs. For the tile loop, both loop orders
of the two tiled dimensions are considered and the one moving fewer DRAM words is taken: an
operand tile reused across the inner loop is fetched once if it fits in half its SRAM,
otherwise it is re-fetched every inner iteration. OS keeps output tiles of any multiple of
the array that fits half the output buffer (K streams through, as GPU thread blocks do);
WS/IS tile at the array's size, and their partial sums spill to DRAM (write
and read back) when the accumulation set does not fit half the output SRAM. Time is a tile
pipeline: first load, then per fold max(compute, transfer of the next fold), then the last
write-back, so stall = load + write + sum of max(0, transfer - compute). Traffic is that of
one array walking the folds with its own SRAM; with a global buffer (L2), an operand that fits
in half of it is read from DRAM once and every re-read is served by the L2 at its bandwidth.

Vector kernels stream their inputs and outputs through DRAM (norms re-read inputs that do not
fit on chip) and take max(ALU cycles, DRAM cycles). Move kernels only transfer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .systolic import IS, OS, WS, fold_cycles, fold_geometry

# Output columns of `evaluate`.
METRICS = (
    "compute_cycles", "stall_cycles", "dram_read_words", "dram_write_words",
    "sram_read_words", "sram_write_words", "macs", "vector_cycles", "cores_used", "l2_read_words", "folds",
)  # fmt: skip
N_METRICS = len(METRICS)


class Hardware(NamedTuple):
    """The arch scalars the cost models need, in cost-model units (words, cycles)."""

    rows: int
    cols: int
    dataflow: int
    overlap: bool
    arrays: int  # systolic arrays on the chip
    cores: int
    ifmap_words: int  # per-array SRAM capacities
    filter_words: int
    ofmap_words: int
    bw: float  # DRAM words per cycle, whole chip
    l2_words: int
    l2_bw: float  # L2 words per cycle (0: unlimited)
    lanes: int  # vector lanes per core
    core_bw: float  # DRAM words per cycle one core's vector unit can draw (0: unlimited)
    onchip_words: int  # on-chip capacity deciding whether a norm re-reads DRAM
    norm_passes: int


@njit(cache=True, inline="always")
def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


@njit(cache=True)
def _os_tiled(m, k, n, rows, cols, ha, hb, hc):
    """DRAM reads (a, b) of an output-stationary GEMM tiled for reuse.

    Outputs are kept in tiles of tm x tn (multiples of the array, at most half the output
    buffer; the array's own R x C always qualifies) while K streams through; a block of A
    (tm x K) or B (K x tn) is reused across the inner loop when it fits half its SRAM, and a
    whole operand that fits is read once. The cheapest tile and loop order is taken.
    """
    a_words, b_words = m * k, k * n
    best_a, best_b = a_words * _cdiv(n, cols), b_words * _cdiv(m, rows)
    tm = rows
    while True:
        tn = cols
        while True:
            if tm * tn <= hc or (tm == rows and tn == cols):
                nm, nn = _cdiv(m, tm), _cdiv(n, tn)
                a_once, b_once = a_words <= ha, b_words <= hb
                # M-tiles outer: A block reused over the N-tiles; B re-read per M-tile
                a1 = a_words if a_once or tm * k <= ha else nn * a_words
                b1 = b_words if b_once else nm * b_words
                # N-tiles outer: B block reused over the M-tiles; A re-read per N-tile
                a2 = a_words if a_once else nn * a_words
                b2 = b_words if b_once or k * tn <= hb else nm * b_words
                if a1 + b1 < best_a + best_b:
                    best_a, best_b = a1, b1
                if a2 + b2 < best_a + best_b:
                    best_a, best_b = a2, b2
            if tn >= n:
                break
            tn *= 2
        if tm >= m:
            break
        tm *= 2
    return best_a, best_b


@njit(cache=True)
def gemm_traffic(m, k, n, rows, cols, dataflow, a_cap, b_cap, c_cap):
    """DRAM words (a reads, b reads, partial-sum spill read+write) and SRAM operand reads
    of one M x K x N GEMM; caps are per-operand SRAM words (half usable per buffer)."""
    a_words, b_words, c_words = m * k, k * n, m * n
    ha, hb, hc = a_cap // 2, b_cap // 2, c_cap // 2
    if dataflow == OS:
        a_rd, b_rd = _os_tiled(m, k, n, rows, cols, ha, hb, hc)
        return a_rd, b_rd, 0, _cdiv(n, cols) * a_words + _cdiv(m, rows) * b_words
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
def _gemm(out, m, k, n, count, a_dram, b_dram, c_dram, hw):
    # Partitioning: the kernel's folds (count instances x folds each) are dealt out to all
    # arrays of the chip, so an array runs ceil(total / arrays) folds back to back.
    rows, cols, dataflow, l2_words, bw = hw.rows, hw.cols, hw.dataflow, hw.l2_words, hw.bw
    fr, _fc, t, folds = fold_geometry(m, k, n, rows, cols, dataflow)
    per_fold = fold_cycles(m, k, n, rows, cols, dataflow)
    stream = t if hw.overlap else per_fold
    total_folds = count * folds
    steps = _cdiv(total_folds, hw.arrays)
    used = min(hw.arrays, total_folds)

    # Traffic of one instance as one array walks its folds with its own SRAM. With an L2,
    # an operand that fits in it is fetched from DRAM once; re-reads are served by the L2.
    a_rd, b_rd, spill, sram_rd = gemm_traffic(m, k, n, rows, cols, dataflow, hw.ifmap_words, hw.filter_words, hw.ofmap_words)
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
    if hw.l2_bw > 0.0:
        load = max(load, fills / steps / hw.l2_bw)
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
    out[8] = _cdiv(used, hw.arrays // hw.cores)
    out[9] = fills if l2_words > 0 else 0.0
    out[10] = total_folds


@njit(cache=True)
def _vector(out, unit, vclass, elements, words_in, words_out, multipass, par, cpe, hw):
    # A kernel with `par` independent work items (e.g. the N x G groups of a GroupNorm's
    # statistics) keeps at most `par` cores busy; each core's vector unit draws at most
    # `core_bw` from memory.
    active = hw.cores if par == 0 else min(hw.cores, par)
    bw = hw.bw if hw.core_bw == 0.0 else min(hw.bw, active * hw.core_bw)
    rd = float(words_in)
    if multipass and words_in > hw.onchip_words:
        rd *= hw.norm_passes
    elif multipass and hw.l2_words > 0:  # the statistics pass left the tensor in L2
        out[9] = words_in * (hw.norm_passes - 1)
    mem = np.ceil((rd + words_out) / bw)
    alu = 0.0
    if unit == 1:
        alu = np.ceil(elements * cpe[vclass] / (hw.lanes * active))
    out[0] = alu
    out[1] = max(alu, mem) - alu
    out[2] = rd
    out[3] = words_out
    out[4] = rd if unit == 1 else 0.0
    out[5] = words_out if unit == 1 else 0.0
    out[7] = alu
    out[8] = active if unit == 1 else 0


@njit(cache=True)
def evaluate(unit, m, k, n, count, a_dram, b_dram, c_dram, vclass, elements, words_in, words_out, multipass, par, cpe, hw):
    """Metrics (len(unit) x N_METRICS, float64) of each kernel; see `METRICS`."""
    out = np.zeros((unit.shape[0], N_METRICS))
    for i in range(unit.shape[0]):
        if unit[i] == 0:
            _gemm(out[i], m[i], k[i], n[i], count[i], a_dram[i], b_dram[i], c_dram[i], hw)
        else:
            _vector(out[i], unit[i], vclass[i], elements[i], words_in[i], words_out[i], multipass[i], par[i], cpe, hw)
    return out


__all__ = ["IS", "METRICS", "OS", "WS", "Hardware", "evaluate", "gemm_traffic"]
