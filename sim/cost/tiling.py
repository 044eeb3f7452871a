"""GEMM tiling: the words each memory level must deliver for one M x K x N GEMM (Numba).

Operands stream from DRAM (through the L2, when there is one) into
double-buffered SRAMs; a resident block must fit half its buffer. Traffic at each level is the
minimum over a set of tilings of the words that level must deliver, weighted by which operands
come from DRAM at all (fused attention keeps some on chip):

- Cuts: M and N may be cut into blocks run one after the other -- M halved 2^i times into equal
  blocks, or fixed blocks of R x {1, 1.5} x 2^j rows (C for N) -- each block tiled on its own
  and a partial block costing a full one. Running two halves is always a candidate, so doubling
  M or N at most doubles the traffic; fixed blocks make it grow at most linearly beyond a block.
- SRAM fills, per block: both loop orders of the two tiled dimensions are considered. OS keeps
  output tiles of any multiple of the array that fits half the output buffer while K streams (as
  GPU thread blocks do); an A block (tm x K) or B block (K x tn) reused across the inner loop is
  fetched once if it fits half its SRAM, a whole operand that fits is read once, anything else
  is re-fetched every inner iteration. WS/IS tile at the array's size; their partial sums spill
  (write and read back) when the accumulation set does not fit half the output SRAM.
- DRAM with an L2: the same cuts, where a block is staged in half the L2 when its output, A or
  B fits there (the other operands stream past it, every word read from DRAM once); DRAM traffic
  is the cheaper of that and the SRAM fills (the L2 may go unused). Each level takes its own best
  tiling (an optimistic two-level model).

Every candidate's cost is independent of the capacities and only more candidates fit when an
SRAM or the L2 grows, so traffic never rises with capacity. Time is a tile pipeline: first load,
then per fold-step max(compute, transfer of the next step), then the last write-back, where a
step's transfer is the longer of its DRAM reads + writes at the DRAM bandwidth and its SRAM fills
at the L2 bandwidth; it never rises with a bandwidth, a capacity, or more arrays or cores
(each with its own SRAM).

Everything here counts elements of each operand; `sim.cost.array` turns them into bytes
(operands of different widths) and cycles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .systolic import OS, WS


@njit(cache=True, inline="always")
def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


# A tiling that does not exist (no level can hold it): larger than any real traffic.
_NONE = 1 << 62


@njit(cache=True)
def _os_tiled(m, k, n, rows, cols, ha, hb, hc, wa, wb):
    """SRAM fills (a, b) of an output-stationary GEMM tiled for reuse.

    Outputs are kept in tiles of tm x tn (multiples of the array, at most half the output
    buffer; the array's own R x C always qualifies) while K streams through; a block of A
    (tm x K) or B (K x tn) is reused across the inner loop when it fits half its SRAM, and a
    whole operand that fits is read once. The tile and loop order with the fewest weighted
    words (wa * a + wb * b) is taken.

    For a given tm, a wider tn never costs more in the M-tiles-outer order (fewer N-tiles, the
    same B re-reads), nor in the N-tiles-outer order as long as the B block (K x tn) still fits
    or never did; so only the widest tile that fits and the widest whose B block fits are
    candidates (in the order a search over every tn meets them, so ties resolve alike).
    """
    a_words, b_words = m * k, k * n
    best_a, best_b = a_words * _cdiv(n, cols), b_words * _cdiv(m, rows)
    a_once, b_once = a_words <= ha, b_words <= hb
    tm = rows
    while True:
        t_max, t_b = 0, 0  # widest tn that fits; widest whose B block also fits
        tn = cols
        while True:
            if tm * tn <= hc or (tm == rows and tn == cols):
                t_max = tn
                if k * tn <= hb:
                    t_b = tn
            else:
                break  # wider tiles fit even less
            if tn >= n:
                break
            tn *= 2
        if t_max == 0:
            break  # no tile of this height fits: taller ones fit even less
        nm = _cdiv(m, tm)
        for tn in (t_b, t_max):
            if tn == 0:
                continue  # (t_b == t_max: evaluated twice, the second changes nothing)
            nn = _cdiv(n, tn)
            # M-tiles outer: A block reused over the N-tiles; B re-read per M-tile
            a1 = a_words if a_once or tm * k <= ha else nn * a_words
            b1 = b_words if b_once else nm * b_words
            # N-tiles outer: B block reused over the M-tiles; A re-read per N-tile
            a2 = a_words if a_once else nn * a_words
            b2 = b_words if b_once or k * tn <= hb else nm * b_words
            if wa * a1 + wb * b1 < wa * best_a + wb * best_b:
                best_a, best_b = a1, b1
            if wa * a2 + wb * b2 < wa * best_a + wb * best_b:
                best_a, best_b = a2, b2
        if tm >= m:
            break
        tm *= 2
    return best_a, best_b


@njit(cache=True)
def _sram_tiled(m, k, n, rows, cols, dataflow, ha, hb, hc, wa, wb, wc):
    """SRAM fills (a, b, partial-sum spill read+write) of one M x K x N GEMM walked whole by
    one core; ha, hb, hc are the usable (half) buffer words; the cheaper loop order wins."""
    a_words, c_words = m * k, m * n
    if dataflow == OS:
        a_rd, b_rd = _os_tiled(m, k, n, rows, cols, ha, hb, hc, wa, wb)
        return a_rd, b_rd, 0
    if dataflow == WS:
        fk, fn = _cdiv(k, rows), _cdiv(n, cols)
        b1 = b2 = k * n  # each stationary weight is loaded exactly once
        # order 1: N-tiles outer, K-tiles inner: accumulate an M x C tile on chip
        a1 = a_words if a_words <= ha else fn * a_words
        spill1 = 0 if m * cols <= hc else 2 * (fk - 1) * c_words
        # order 2: K-tiles outer, N-tiles inner: reuse the M x R ifmap slice, accumulate all of C
        a2 = a_words if m * rows <= ha else fn * a_words
        spill2 = 0 if c_words <= hc else 2 * (fk - 1) * c_words
    else:  # IS: the mirror of WS with the roles of ifmap and filter swapped
        fk, fm = _cdiv(k, rows), _cdiv(m, cols)
        b_words = k * n
        a1 = a2 = a_words
        b1 = b_words if b_words <= hb else fm * b_words
        spill1 = 0 if n * cols <= hc else 2 * (fk - 1) * c_words
        b2 = b_words if n * rows <= hb else fm * b_words
        spill2 = 0 if c_words <= hc else 2 * (fk - 1) * c_words
    if wa * a1 + wb * b1 + wc * spill1 <= wa * a2 + wb * b2 + wc * spill2:
        return a1, b1, spill1
    return a2, b2, spill2


@njit(cache=True)
def _l2_block(m, k, n, cap):
    """DRAM reads (a, b) of one block staged whole in an L2 holding `cap` words: when the
    block's output, A or B fits, the other operands stream past it and each word is read once."""
    if min(m * n, m * k, k * n) <= cap:
        return m * k, k * n, 0
    return _NONE, _NONE, 0


@njit(cache=True)
def _block(m, k, n, rows, cols, dataflow, ha, hb, hc, wa, wb, wc, l2):
    """Traffic (a, b, spill) of one block: into the SRAMs (l2 == 0) or from DRAM into an L2 of l2 words."""
    if l2 > 0:
        return _l2_block(m, k, n, l2)
    return _sram_tiled(m, k, n, rows, cols, dataflow, ha, hb, hc, wa, wb, wc)


@njit(cache=True)
def _cuts(m, unit):
    """Ways to cut a dimension of m into blocks run one after the other, as (block, count)
    rows: m halved 2^i times (equal blocks, down to `unit`), and fixed blocks of unit x 2^j and unit x 1.5 x 2^j."""
    out = np.empty((192, 2), np.int64)
    c, p = 0, 1
    while True:
        block = _cdiv(m, p)
        out[c, 0], out[c, 1] = block, p
        c += 1
        if block <= unit:
            break
        p *= 2
    halvings = c
    g = 2 * unit
    while g < 2 * m:  # unit x 1, 1.5, 2, 3, 4, 6, ...
        for block in (g // 2, 3 * g // 4):
            if block < m and not _listed(out, halvings, block, _cdiv(m, block)):
                out[c, 0], out[c, 1] = block, _cdiv(m, block)
                c += 1
        g *= 2
    return out[:c]


@njit(cache=True, inline="always")
def _listed(out, rows, block, count):
    """Whether (block, count) is among the first `rows` cuts (a halving repeats a fixed block)."""
    for i in range(rows):
        if out[i, 0] == block and out[i, 1] == count:
            return True
    return False


@njit(cache=True)
def _split_min(m, k, n, rows, cols, dataflow, ha, hb, hc, wa, wb, wc, l2):
    """Cheapest traffic (a, b, spill) over every cut of M and N (`_cuts`) into blocks that
    run one after the other, each tiled on its own (`_block`); a partial block costs a full one.

    The GEMM may always run as two halves, so cost(2M) <= 2 cost(M) and cost(2N) <= 2 cost(N)
    exactly; fixed-size blocks make the cost grow at most linearly in M and N beyond a block;
    and as every block's cost only falls when a capacity grows, so does the minimum. A block
    reads at least its own A rows and B columns, which prunes the search.
    """
    best_a, best_b, best_s = _NONE, _NONE, 0
    best = _NONE
    mcuts, ncuts = _cuts(m, rows), _cuts(n, cols)
    for i in range(mcuts.shape[0]):
        bm, p = mcuts[i, 0], mcuts[i, 1]
        if wb * p * k * n >= best:
            continue
        for j in range(ncuts.shape[0]):
            bn, q = ncuts[j, 0], ncuts[j, 1]
            if wa * q * m * k + wb * p * k * n >= best:
                continue
            a, b, s = _block(bm, k, bn, rows, cols, dataflow, ha, hb, hc, wa, wb, wc, l2)
            if a < _NONE:
                cost = p * q * (wa * a + wb * b + wc * s)
                if cost < best:
                    best, best_a, best_b, best_s = cost, p * q * a, p * q * b, p * q * s
    return best_a, best_b, best_s


@njit(cache=True)
def _sram_reads(m, k, n, rows, cols, dataflow):
    """Operand words the array reads from its SRAMs (partial sums of WS/IS included)."""
    a_words, b_words = m * k, k * n
    if dataflow == OS:
        return _cdiv(n, cols) * a_words + _cdiv(m, rows) * b_words
    if dataflow == WS:
        return _cdiv(n, cols) * a_words + b_words + (_cdiv(k, rows) - 1) * m * n
    return _cdiv(m, cols) * b_words + a_words + (_cdiv(k, rows) - 1) * m * n


@njit(cache=True)
def gemm_traffic(m, k, n, rows, cols, dataflow, a_cap, b_cap, c_cap):
    """SRAM fills (a reads, b reads, partial-sum spill read+write) and SRAM operand reads
    of one M x K x N GEMM; caps are per-operand SRAM words (half usable per buffer)."""
    a, b, s = _split_min(m, k, n, rows, cols, dataflow, a_cap // 2, b_cap // 2, c_cap // 2, 1, 1, 1, 0)
    return a, b, s, _sram_reads(m, k, n, rows, cols, dataflow)
