"""Sparse-unit arithmetic shared by the array and vector cost units (Numba).

Storage formats (`format_bits`): bits per dense element of an operand of density d whose
values take b bits -- dense b; bitmask d*b + 1; CSR/CSC d*(b + 32) (one 32-bit index per
nonzero, SCALE-Sim 3.0's metadata word; row/column pointers neglected); RLE d*(b + 5) (5-bit
zero-run lengths, Eyeriss: Chen et al., JSSC 2017); ELLPACK-block for N:M d*(b + ceil(log2 M))
(SCALE-Sim 3.0). A format pays off below its break-even density (`break_even`), where it
equals dense storage.

Load imbalance of zero-skipping (`skip_stream`): a fold streams T operand pairs through each of
P = R x C PEs; a PE issues the nonzero products of its stream, Binomial(T, e) of them. The fold
lasts as long as its busiest PE: the expected maximum of P such binomials, approximated by the
Gaussian extreme value e*T + sqrt(2 ln P * T e (1 - e)) (capped at T). Finding the nonzeros
costs a scan of the stream's bitmask at `sparsity.scan_bits_per_cycle`: a fold takes at least
T / scan cycles. Both are documented analytic models, not measurements.
"""

from __future__ import annotations

import math

from numba import njit

DENSE_FMT, BITMASK, CSR, CSC, RLE, ELLPACK = 0, 1, 2, 3, 4, 5
INDEX_BITS = 32  # SCALE-Sim 3.0 metadata word
RUN_BITS = 5  # Eyeriss RLE run length


@njit(cache=True)
def format_bits(fmt: int, density: float, bits: float, block: int) -> float:
    """Bits per dense element stored in format `fmt` at `density` with `bits`-bit values."""
    if fmt == DENSE_FMT or density >= 1.0 and fmt != ELLPACK:
        return bits
    if fmt == BITMASK:
        return density * bits + 1.0
    if fmt == RLE:
        return density * (bits + RUN_BITS)
    if fmt == ELLPACK and block > 1:
        return density * (bits + math.ceil(math.log2(block)))
    return density * (bits + INDEX_BITS)  # CSR, CSC (and ELLPACK of unstructured data)


def break_even(fmt: str, bits: int, block: int = 4) -> float:
    """The density below which format `fmt` stores fewer bits than dense (1.0: always)."""
    from workloads.annotations import FORMATS

    code = FORMATS.index(fmt)
    if code == DENSE_FMT:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):  # format_bits is increasing in density: bisect where it meets `bits`
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if format_bits(code, mid, float(bits), block) < bits else (lo, mid)
    return lo


@njit(cache=True)
def skip_stream(t: int, work: float, pes: int, scan_bits: float) -> float:
    """Cycles of a fold streaming `t` operand pairs per PE when only a fraction `work` of the
    products is issued (see the module docstring)."""
    if work >= 1.0:
        return float(t)
    spread = math.sqrt(2.0 * math.log(max(pes, 2)) * t * work * (1.0 - work))
    busiest = min(float(t), work * t + spread)
    return max(math.ceil(busiest), math.ceil(t / scan_bits))


@njit(cache=True, inline="always")
def density(ppm: int) -> float:
    """A density stored in parts per million (0: dense)."""
    return 1.0 if ppm == 0 else ppm / 1e6


@njit(cache=True, inline="always")
def condensed(k: int, n: int, m: int) -> int:
    """SCALE-Sim 3.0's reduction under layer-wise N:M (`sim.systolic.condensed_k`, in Numba)."""
    return (k // m) * n + min(k % m, n)
