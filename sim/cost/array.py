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

import math

from numba import njit

from .sparse import CSR, condensed, density, format_bits, skip_stream
from .systolic import OS, fold_cycles, fold_geometry
from .tiling import _cdiv, _split_min

# sparse modes of a kernel (sim.lower.sparse)
DENSE, SKIP, GATE, PREDICT, SCORE_QK, SCORE_PV = 0, 1, 2, 3, 4, 5


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
    mode = k.sparse_mode
    if mode == PREDICT:
        if not hw.sparsity_attention_unit:
            return  # no score-prediction unit: the kernel does not exist
        wa = wb = hw.sparsity_predict_bits / native_bits
        thr *= native_bits / hw.sparsity_predict_bits  # a dedicated low-precision pass
    s = _sparse_plan(k, hw, kk, wa, wb, wc)
    kf, work, issued, a_fmt, b_fmt, c_fmt, gather = s[0], s[1], s[2], s[3], s[4], s[5], s[6]
    thr *= s[7]
    # kept attention scores are outputs: a score unit compacts each query's kept keys into
    # dense tiles, so QK^T folds over ceil(Lk * keep) keys (no imbalance along the reduction)
    nf = n if s[8] >= 1.0 else max(1, int(math.ceil(n * s[8])))

    fr, _fc, t, folds = fold_geometry(m, kf, nf, rows, cols, dataflow)
    per_fold = fold_cycles(m, kf, nf, rows, cols, dataflow)
    if work < 1.0:  # zero-skipping: the busiest PE of a fold sets its length
        per_fold += skip_stream(t, work, rows * cols, hw.sparsity_scan_bits_per_cycle) - t
        t = per_fold - (fold_cycles(m, kf, nf, rows, cols, dataflow) - t)
    stream = t if hw.array_overlap_folds else per_fold
    total_folds = count * folds
    steps = _cdiv(total_folds, arrays)
    used = min(arrays, total_folds)

    # per-core operand SRAMs in elements of each operand (half of each is usable per buffer)
    ha = int(hw.sram_ifmap_kb * 1024 / count_per_core / (w * wa)) * count_per_core // 2
    hb = int(hw.sram_filter_kb * 1024 / count_per_core / (w * wb)) * count_per_core // 2
    hc = int(hw.sram_ofmap_kb * 1024 / count_per_core / (w * wc)) * count_per_core // 2
    l2 = int(hw.global_buffer_size_kb * 1024 / (w * max(wa, wb, wc)))
    # operands in DRAM weighted by their (compressed) width in native words
    ka, kb = k.a_dram * wa * a_fmt, k.b_dram * wb * b_fmt
    a_rd, b_rd, spill = _split_min(m, kk, n, rows, cols, dataflow, ha, hb, hc, ka, kb, wc, 0)
    a_mem, b_mem, c_spill = a_rd, b_rd, spill
    if l2 > 0:
        a2, b2, s2 = _split_min(m, kk, n, rows, cols, dataflow, ha, hb, hc, ka, kb, wc, l2 // 2)
        if ka * a2 + kb * b2 + wc * s2 < ka * a_rd + kb * b_rd + wc * spill:
            a_mem, b_mem, c_spill = a2, b2, s2
    l2_gather = 0.0
    if gather < 1.0:  # a sparse kernel fetches one B row per kept A element: no reuse
        rows_b = m * kk * gather * n
        l2_gather = count * rows_b * wb if l2 > 0 and kk * n <= l2 // 2 else 0.0
        b_mem = b_rd = kk * n if l2_gather > 0.0 else rows_b
        kb = k.b_dram * wb
    # native words moved
    dram_rd = count * (ka * a_mem + kb * b_mem + wc * (c_spill // 2))
    dram_wr = count * (k.c_dram * wc * c_fmt * m * n + wc * (c_spill // 2))
    fills = count * (ka * a_rd + kb * b_rd + wc * (spill // 2)) + l2_gather

    per_cycle = 1.0 / (hw.frequency_mhz * 1e6) / w  # B/s -> native words per cycle
    bw = hw.dram_bandwidth_gbs * 1e9 * per_cycle
    xfer = (dram_rd + dram_wr) / steps / bw
    if l2 > 0 and hw.global_buffer_bandwidth_gbs > 0.0:
        l2_bw = hw.global_buffer_bandwidth_gbs * 1e9 * per_cycle
        xfer = max(xfer, fills / steps / l2_bw)
    if hw.sparsity_decode_elements_per_cycle > 0.0 and (a_fmt < 1.0 or b_fmt < 1.0):
        decoded = count * (k.a_dram * m * kk * (a_fmt < 1.0) + k.b_dram * kk * n * (b_fmt < 1.0))
        xfer = max(xfer, decoded / steps / (hw.sparsity_decode_elements_per_cycle * hw.cores))
    compute = steps * stream + (per_fold - stream) - 1
    if thr != 1.0:
        compute = compute / thr
        stream = stream / thr
    stall = xfer + (steps - 1) * max(0.0, xfer - stream)

    out.compute_cycles = compute
    out.stall_cycles = stall
    out.dram_read_bytes = dram_rd * w
    out.dram_write_bytes = dram_wr * w
    out.sram_read_bytes = count * _sram_read_words(m, kk, n, rows, cols, dataflow, wa, wb, wc) * w * issued
    out.sram_write_bytes = (fills + count * m * n * wc * (1 + max(0, fr - 1) * (dataflow != OS))) * w
    out.l2_read_bytes = fills * w if l2 > 0 else 0.0
    out.l2_write_bytes = dram_rd * w if l2 > 0 else 0.0
    out.macs = count * m * kk * n
    out.macs_issued = count * m * kk * n * issued
    out.cores_used = _cdiv(used, count_per_core)
    out.folds = total_folds


@njit(cache=True)
def _sparse_plan(k, hw, kk, wa, wb, wc):
    """What the array does with a kernel's sparsity (`sim.lower.sparse`), as
    (folded K, fraction of streamed work issued, fraction of MACs issued, DRAM width factors of
    A, B and C, fraction of B rows gathered (1: none), throughput factor, fraction of N kept)."""
    mode = k.sparse_mode
    kf, work, issued, a_fmt, b_fmt, c_fmt, gather, thr, keep_n = kk, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0
    if mode == DENSE or mode == PREDICT:
        return kf, work, issued, a_fmt, b_fmt, c_fmt, gather, thr, keep_n
    native_bits = 8.0 * hw.word_bytes
    unstructured = int(hw.sparsity_unstructured)  # 0 none, 1 skip, 2 gate
    if mode == SCORE_QK or mode == SCORE_PV:
        keep = density(k.w_density if mode == SCORE_QK else k.a_density)
        unfused = k.c_dram == 1 if mode == SCORE_QK else k.a_dram == 1
        if unfused:  # S / P stored as CSR
            fmt = format_bits(CSR, keep, wc * native_bits, 0) / (wc * native_bits)
            if mode == SCORE_QK:
                c_fmt = fmt
            else:
                a_fmt = fmt
        if mode == SCORE_QK and hw.sparsity_attention_unit:
            keep_n = issued = keep  # only the kept (query, key) pairs are computed
        elif hw.sparsity_attention_unit or (mode == SCORE_PV and unfused):
            work = issued = keep
            if mode == SCORE_PV and unfused and not hw.sparsity_attention_unit:
                gather = keep  # a GPU-style SpMM: one V row per kept score
        return kf, work, issued, a_fmt, b_fmt, c_fmt, gather, thr, keep_n
    dw, da = density(k.w_density), density(k.a_density)
    skip = mode == SKIP and unstructured == 1
    if k.nm_m > 0:
        kc = condensed(kk, k.nm_n, k.nm_m)
        b_fmt = format_bits(k.w_format, kc / kk, wb * native_bits, k.nm_m) / (wb * native_bits)
        if hw.sparsity_structured and mode == SKIP:
            kf, issued = kc, kc / kk
        elif hw.sparsity_tensor_core_2to4 and k.nm_n == 2 and k.nm_m == 4 and mode == SKIP:
            thr, issued = 2.0, 0.5
    elif dw < 1.0:
        b_fmt = format_bits(k.w_format, dw, wb * native_bits, 0) / (wb * native_bits)
    if da < 1.0:
        a_fmt = format_bits(k.a_format, da, wa * native_bits, 0) / (wa * native_bits)
    e = dw * da
    if e < 1.0 and unstructured > 0:
        issued *= e
        if skip:
            work = e
    return kf, work, issued, a_fmt, b_fmt, c_fmt, gather, thr, keep_n
