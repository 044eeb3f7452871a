"""The systolic-array unit: cycles and action counts of GEMM kernels (Numba).

Partitioning: the folds of a kernel (all its `count` instances) are dealt out to every array
on the chip; each array runs ceil(folds / arrays) folds back to back, in lock step with the
others. The arrays of a core share its SRAMs (as the tensor cores of an SM share its shared
memory and the MXUs of a TPU core its memory): tiles are sized for the whole core's SRAM.

Compute cycles are SCALE-Sim 3.0's stall-free cycles (`sim.cost.systolic`) divided by the
array's throughput at the kernel's compute dtype (`array.throughput`: e.g. 2 for fp8 on
H100-class tensor cores; 1 at the native type). Traffic comes from `sim.cost.tiling` in
elements per operand; an operand of b bits counts b / native-bits native words (operands keep
their own width in SRAM and DRAM), and partial sums spill at the output's width. Time is a tile
pipeline: first load, then per fold-step max(compute, transfer of the next step), then the last
write-back; a step's transfer is the longer of its DRAM reads + writes at the DRAM bandwidth and
its SRAM fills at the L2 bandwidth.

Action counts (bytes per memory level, MACs) are per kernel call, in the metric record.
"""

from __future__ import annotations

from numba import njit

from .systolic import OS, fold_cycles, fold_geometry
from .tiling import _cdiv, _split_min


@njit(cache=True, inline="always")
def width(bits: int, native_bits: float) -> float:
    """Native words per element of an operand of `bits` bits (0: the native type)."""
    return 1.0 if bits == 0 else bits / native_bits


@njit(cache=True)
def _sram_read_words(m, k, n, rows, cols, dataflow, wa, wb, wc):
    """Native words the array reads from its SRAMs: operands re-read per fold, and the partial
    sums of WS/IS, plus the output read back once."""
    if dataflow == OS:
        return _cdiv(n, cols) * m * k * wa + _cdiv(m, rows) * k * n * wb + m * n * wc
    partial = (_cdiv(k, rows) - 1) * m * n * wc
    if dataflow == 1:  # WS
        return _cdiv(n, cols) * m * k * wa + k * n * wb + partial + m * n * wc
    return _cdiv(m, cols) * k * n * wb + m * k * wa + partial + m * n * wc


@njit(cache=True)
def gemm(out, k, hw):
    """Fill metric record `out` for GEMM kernel record `k` on hardware record `hw`."""
    rows, cols, dataflow = int(hw.array_rows), int(hw.array_cols), int(hw.array_dataflow)
    count_per_core = int(hw.array_count)
    arrays = int(hw.cores) * count_per_core
    w = hw.word_bytes
    native_bits = 8.0 * w
    wa, wb, wc = width(k.a_bits, native_bits), width(k.b_bits, native_bits), width(k.c_bits, native_bits)
    thr = 1.0 if k.mac_dtype < 0 else hw.array_throughput[k.mac_dtype]
    m, kk, n, count = k.m, k.k, k.n, k.count

    fr, _fc, t, folds = fold_geometry(m, kk, n, rows, cols, dataflow)
    per_fold = fold_cycles(m, kk, n, rows, cols, dataflow)
    stream = t if hw.array_overlap_folds else per_fold
    total_folds = count * folds
    steps = _cdiv(total_folds, arrays)
    used = min(arrays, total_folds)

    # per-core operand SRAMs in elements of each operand (half of each is usable per buffer)
    ha = int(hw.sram_ifmap_kb * 1024 / count_per_core / (w * wa)) * count_per_core // 2
    hb = int(hw.sram_filter_kb * 1024 / count_per_core / (w * wb)) * count_per_core // 2
    hc = int(hw.sram_ofmap_kb * 1024 / count_per_core / (w * wc)) * count_per_core // 2
    l2 = int(hw.global_buffer_size_kb * 1024 / (w * max(wa, wb, wc)))
    ka, kb = k.a_dram * wa, k.b_dram * wb
    a_rd, b_rd, spill = _split_min(m, kk, n, rows, cols, dataflow, ha, hb, hc, ka, kb, 0)
    a_mem, b_mem, c_spill = a_rd, b_rd, spill
    if l2 > 0:
        a2, b2, s2 = _split_min(m, kk, n, rows, cols, dataflow, ha, hb, hc, ka, kb, l2 // 2)
        if ka * a2 + kb * b2 + s2 < ka * a_rd + kb * b_rd + spill:
            a_mem, b_mem, c_spill = a2, b2, s2
    # native words moved
    dram_rd = count * (ka * a_mem + kb * b_mem + wc * (c_spill // 2))
    dram_wr = count * (k.c_dram * wc * m * n + wc * (c_spill // 2))
    fills = count * (ka * a_rd + kb * b_rd + wc * (spill // 2))

    per_cycle = 1.0 / (hw.frequency_mhz * 1e6) / w  # B/s -> native words per cycle
    bw = hw.dram_bandwidth_gbs * 1e9 * per_cycle
    xfer = (dram_rd + dram_wr) / steps / bw
    if l2 > 0 and hw.global_buffer_bandwidth_gbs > 0.0:
        l2_bw = hw.global_buffer_bandwidth_gbs * 1e9 * per_cycle
        xfer = max(xfer, fills / steps / l2_bw)
    compute = steps * stream + (per_fold - stream) - 1
    if thr != 1.0:
        compute = compute / thr
        stream = stream / thr
    stall = xfer + (steps - 1) * max(0.0, xfer - stream)

    out.compute_cycles = compute
    out.stall_cycles = stall
    out.dram_read_bytes = dram_rd * w
    out.dram_write_bytes = dram_wr * w
    out.sram_read_bytes = count * _sram_read_words(m, kk, n, rows, cols, dataflow, wa, wb, wc) * w
    out.sram_write_bytes = (fills + count * m * n * wc * (1 + max(0, fr - 1) * (dataflow != OS))) * w
    out.l2_read_bytes = fills * w if l2 > 0 else 0.0
    out.l2_write_bytes = dram_rd * w if l2 > 0 else 0.0
    out.macs = count * m * kk * n
    out.cores_used = _cdiv(used, count_per_core)
    out.folds = total_folds
