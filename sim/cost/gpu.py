"""GPU kernel costs (Numba): what a GPU pays beyond FLOPs, for kernels a runtime model tagged.

Kernels whose `gpu_kind` is not 0 come here instead of the array/vector units (see `GK_*`);
constants are the arch's `gpu` section (`sim.arch.gpu`, the `gpu_*` fields of the hardware
record). The mechanisms, each general to GPUs and none specific to a model:

- GEMM: thread-block tiles run in waves over the SMs. cuDNN's convolutions: t x t, t x 2t, 2t x t,
  t/2 x t, t x t/2 of `gpu.gemm_tile`; cuBLAS's GEMMs: one edge a multiple of 64 up to 256, the
  other a multiple of 8 up to 256, at most 192 x 192 (its sm90 kernels size tiles to fill the SMs:
  nvjet_sm90_hsh_72x64 at 512 x 1152, _144x64 at 1024, _192x192 at 4096 tokens). A tile's time per
  unit of K is its MMAs at the SM's rate or its A and B slices fed in at `gemm_tile_feed_gbs`
  (L2 -> shared memory per SM), whichever is longer, so small tiles run below the mainloop rate;
  ceil(tiles / SMs) waves of tile x tile x K MACs at the SM's array rate times
  `gemm_efficiency`, each tile paying a prologue/epilogue of `gemm_tile_overhead_k` K-iterations'
  time (so short-K tiles run below the mainloop rate); when tiles are fewer than SMs, K is split (split-K, partial sums in fp32
  through memory, at least `gemm_split_k_min` deep per split). Concurrent tiles share L2, so DRAM
  traffic is the compulsory bytes (A, B, C once): reads at `gemm_read_gbs`, writes at
  `gemm_write_gbs` (HBM writes are slower: the unfused attention's score-writing baddbmm), after
  `gemm_mem_latency_us`; time = max(compute, memory). A GEMM whose K or N is not a multiple of 8
  runs cuBLAS's `align1` fallback, `gemm_unaligned_slowdown` times slower (77-key cross-attention).
  A linear with a bias (`GK_LINEAR`) adds `gemm_bias_us` (bias epilogue in a dependent chain). The tile shape and split with the least
  time win (a library's heuristic, idealized); cuBLAS GEMMs may also run stream-K (Osama et al.,
  PPoPP 2023: main-loop iterations of `STREAM_K_DEPTH` spread evenly over the SMs, one partial tile
  per SM fixed up through memory), convolutions (`GK_CONV`, cuDNN) whole tiles only. Plus
  `gemm_fixed_us`.
- Sustained tensor work: the MMA time of GEMMs, convolutions and fused attention is divided by
  `sustained_tensor_ratio` (a forward replayed back to back holds the board at its power cap,
  where the SM clock falls; the GEMM constants come from short bursts). Memory time is not.
- Fused attention (cuDNN / FlashAttention-2 / memory-efficient): one thread block per
  (batch x head, query tile); a wave of blocks takes its start-up `attention_tile_us`, then per
  key tile the longer of its MMAs (2 x tq x tkv x d at `attention_efficiency` of the SM's rate)
  and its exps on the special-function units (`attention_gscores_s`, spread over the SMs), plus
  `attention_partial_us` when the key length leaves a partial last tile (masked); plus
  `attention_fixed_us` per call (launch, cuDNN's memset). cuDNN's and FlashAttention-2's
  constants come from kernels profiled inside graph replays (`sdpa/sdpa.csv`:
  `experiments/gpu/derive_attention.py`). Head dims
  arrive padded by the runtime model (40 -> 64, 72 -> 128, 160 -> 192).
- Memory-bound kernels: `kernel_floor_us` + bytes / the measured bandwidth of their class
  (`bandwidth_gbs`); softmax at the rate measured for its row length (`softmax_row_gbs`: PyTorch
  runs a warp per row up to 1024, then register, shared-memory and looping kernels, at 1.0-2.7 TB/s);
  LayerNorm's one block per row makes a kernel of few rows latency-bound (`layernorm_block_us`);
  head split/merge copies (a permute keeping the contiguous head dim) at `head_copy`; GroupNorm statistics at `gn_block_gbs` per thread block after `gn_block_us`, with one block per
  (sample, group) (`par`), `gn_block_far_gbs` for inputs of `gn_far_from_mb` or more, up to `gn_stats_max_gbs`; LayerNorm pays `layernorm_row_ns` per row;
  cuDNN's NCHW<->NHWC transposes pay `transpose_row_ns` per contiguous run (`par`: images x
  channels; a run is H x W, or the R x S of a weight -- 3 for a temporal 3x1x1 conv);
  pointwise kernels over non-contiguous views (GEGLU's chunk halves) run PyTorch's non-vectorized
  kernel at `strided`.
  Pointwise work fused into another kernel (`GK_FUSED`) moves its bytes at the elementwise rate,
  with no floor.

Time goes to `compute_cycles` (floor + compute) and `stall_cycles` (memory time beyond it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..arch.gpu import SOFTMAX_FP32_ROW_LENGTHS, SOFTMAX_ROW_LENGTHS, SOFTMAX_UNALIGNED_ROW_LENGTHS
from .array import width

# GPU kernel classes (the `gpu_kind` kernel field); 0: not a GPU kernel (array/vector units).
GK_NONE, GK_GEMM = 0, 1
# memory-bound classes, in the order of `sim.arch.gpu.MEMORY_KINDS` (index = kind - GK_MEMORY)
GK_MEMORY = 2
GK_ELEMENTWISE, GK_BROADCAST, GK_PERMUTE, GK_COPY, GK_ACT_TRANSPOSE, GK_WEIGHT_TRANSPOSE = 2, 3, 4, 5, 6, 7
GK_RESAMPLE, GK_SOFTMAX, GK_LAYERNORM, GK_GN_APPLY, GK_HEAD_COPY, GK_STRIDED = 8, 9, 10, 11, 12, 13
GK_GN_STATS, GK_GN_PARAMS = 14, 15
# fused attention, in the order of `sim.arch.gpu.ATTENTION_BACKENDS` (index = kind - GK_ATTENTION)
GK_ATTENTION = 16
GK_ATTN_CUDNN, GK_ATTN_FLASH2, GK_ATTN_EFFICIENT = 16, 17, 18
# pointwise work fused into another kernel (a GEMM epilogue, a norm): no launch, no floor
GK_FUSED = 19
# an implicit-GEMM convolution (cuDNN): the GEMM model with whole tiles only (cuDNN's sm90 fprop
# kernels run `segment_k_off`; cuBLAS's GEMMs also use stream-K)
GK_CONV = 20
# a cuBLASLt linear with its bias added in the GEMM's epilogue: the GEMM model plus `gemm_bias_us`
# (chains.csv: such a GEMM between a LayerNorm and a residual add runs ~0.8 us above the model of
# the bias-free, L2-flushed microbenchmarks)
GK_LINEAR = 21
# an indexed gather (embedding lookup, `index_select`): the copy model plus `gather_latency_us`, the
# dependent load of the rows after the indices arrive (reuse/reuse.csv, chains/chains.csv)
GK_GATHER = 22
# an fp32 GEMM on the CUDA cores (PyTorch's default allow_tf32=False; diffusers' upcast attention
# scores): 2 x MACs at `fp32_gemm_tflops`, then its output written (dispatch.csv: the SGEMMs of
# attention shapes take compute + write time, not the longer of the two)
GK_SGEMM = 23
# cuBLAS needs K and N (the leading dimensions of row-major fp16 operands) to be multiples of 8
# elements (16-byte vector loads) for its sm90 kernels; otherwise it falls back to `align1` kernels
GEMM_ALIGN = 8
# row lengths of the measured softmax rates (`gpu.softmax_row_gbs`): a softmax over rows of w
# elements runs at the rate of the largest of these <= w (PyTorch picks its kernel by row length)
SOFTMAX_ROWS = np.array(SOFTMAX_ROW_LENGTHS, dtype=np.float64)
# ... over fp16 rows not a multiple of 16 bytes (`gpu.softmax_unaligned_row_gbs`), and fp32 rows
SOFTMAX_UNALIGNED_ROWS = np.array(SOFTMAX_UNALIGNED_ROW_LENGTHS, dtype=np.float64)
SOFTMAX_FP32_ROWS = np.array(SOFTMAX_FP32_ROW_LENGTHS, dtype=np.float64)
# PyTorch's vectorized softmax kernels load 16 bytes at a time (its shared-memory kernel needs
# rows that are a multiple of them)
SOFTMAX_ALIGN_BYTES = 16
# K depth of one main-loop iteration of a thread block (the unit stream-K splits work in): the
# 64 of cuBLAS's sm90 kernel names (nvjet_sm90_hsh_<tile>_64x<stages>, conv_kernels.csv / scaling.csv)
STREAM_K_DEPTH = 64
# the largest cuBLAS tile (nvjet_sm90_hsh_192x192_..., chains.csv) and cuDNN's 2t x t
CUBLAS_TILE_AREA = 192 * 192


@njit(cache=True, inline="always")
def _cdiv(a, b):
    return (a + b - 1) // b


@njit(cache=True)
def _tile(shape, t, cublas):
    """Edges (tm, tn) of tile shape number `shape`; (0, 0) past the menu. cuDNN: t x t, t x 2t, 2t x t,
    t/2 x t, t x t/2. cuBLAS: one edge a multiple of 64 up to 256 (a warpgroup MMA's M), the other a
    multiple of 8 up to 256 (its N), at most CUBLAS_TILE_AREA (nvjet_sm90_hsh_72x64, _144x128, _192x192:
    the heuristic sizes tiles to fill the SMs)."""
    if not cublas:
        if shape >= 5:
            return 0, 0
        tm = t * (2 if shape == 2 else 1) // (2 if shape == 3 else 1)
        return tm, t * (2 if shape == 1 else 1) // (2 if shape == 4 else 1)
    if shape >= 256:
        return 0, 0
    wide, narrow = 64 * (1 + (shape // 32) % 4), 8 * (1 + shape % 32)
    return (wide, narrow) if shape < 128 else (narrow, wide)


@njit(cache=True)
def _gemm_cycles(m, kk, n, count, hw, thr, cublas, ab_bytes):
    """(cycles of the best tile shape and split, extra DRAM bytes of its split-K partials); `cublas`:
    cuBLAS's tile menu and stream-K (else cuDNN's), `ab_bytes`: bytes per A/B element."""
    sms = int(hw.cores)
    rate = hw.array_rows * hw.array_cols * hw.array_count * hw.gpu_gemm_efficiency * thr  # MACs/cycle/SM
    k0 = hw.gpu_gemm_tile_overhead_k  # a tile's prologue + epilogue, in main-loop K depth
    hz = hw.frequency_mhz * 1e6
    feed = hw.gpu_gemm_tile_feed_gbs * 1e9 / hz  # operand bytes per cycle into one SM (0: unlimited)
    best, best_extra = np.inf, 0.0
    for shape in range(256):
        tm, tn = _tile(shape, int(hw.gpu_gemm_tile), cublas)
        if tm == 0:
            break
        if tm * tn > CUBLAS_TILE_AREA:
            continue
        # cycles per unit of K depth: the tile's MMAs at the mainloop rate, or its A and B slices fed in
        per_k = tm * tn / rate
        if feed > 0:
            per_k = max(per_k, (tm + tn) * ab_bytes / feed)
        tiles = _cdiv(m, tm) * _cdiv(n, tn) * count
        split = 1
        while True:
            depth = _cdiv(kk, split)
            waves = _cdiv(tiles * split, sms)
            cycles = waves * (depth + k0) * per_k
            extra = 0.0 if split == 1 else 2.0 * split * m * n * count * 4.0  # fp32 partials written + read
            partials = (extra / 2) * (1.0 / hw.gpu_gemm_read_gbs + 1.0 / hw.gpu_gemm_write_gbs)
            total = cycles + partials * hz / 1e9
            if total < best:
                best, best_extra = total, extra
            if tiles * split * 2 > sms or depth < 2 * hw.gpu_gemm_split_k_min:
                break
            split *= 2
        # stream-K (cuBLAS): the tiles' main-loop iterations spread evenly over the SMs, each SM fixing
        # up at most one partial tile through memory (fp32, written + read)
        iters = tiles * _cdiv(kk, STREAM_K_DEPTH)
        if cublas and iters % sms:
            # each SM runs whole tiles plus the two partial ones at its segment's ends: one more prologue
            cycles = (_cdiv(iters, sms) * STREAM_K_DEPTH + (_cdiv(tiles, sms) + 1) * k0) * per_k
            extra = 2.0 * min(sms, tiles) * tm * tn * 4.0
            total = cycles + (extra / 2) * (1.0 / hw.gpu_gemm_read_gbs + 1.0 / hw.gpu_gemm_write_gbs) * hz / 1e9
            if total < best:
                best, best_extra = total, extra
    return best, best_extra


@njit(cache=True)
def _row_rate(row, rows, rates):
    """The rate measured at the longest listed row length <= `row` (the shortest for shorter rows)."""
    i = 0
    while i + 1 < rows.shape[0] and rows[i + 1] <= row:
        i += 1
    return rates[i]


@njit(cache=True)
def _softmax_gbs(row, elem_bytes, hw, default):
    """Rate of a softmax over rows of `row` elements of `elem_bytes`: fp32 rows from the fp32 table;
    fp16 rows not a multiple of 16 bytes, from the first unaligned length on, from the unaligned
    table (PyTorch's generic kernel in place of its shared-memory one); else the main table; a
    table left unset falls back to the next, `default` where none was measured."""
    gbs = 0.0
    if elem_bytes == 4:
        gbs = _row_rate(row, SOFTMAX_FP32_ROWS, hw.gpu_softmax_fp32_row_gbs)
    elif int(round(row * elem_bytes)) % SOFTMAX_ALIGN_BYTES and row >= SOFTMAX_UNALIGNED_ROWS[0]:
        gbs = _row_rate(row, SOFTMAX_UNALIGNED_ROWS, hw.gpu_softmax_unaligned_row_gbs)
    if gbs <= 0:
        gbs = _row_rate(row, SOFTMAX_ROWS, hw.gpu_softmax_row_gbs)
    return gbs if gbs > 0 else default


@njit(cache=True)
def _layernorm_cycles(throughput, nbytes, rows, hw):
    """A LayerNorm runs one thread block per row: a kernel of few rows takes at least one block's
    latency (`layernorm_block_us` + its row's bytes at `layernorm_block_gbs`), a large one its
    throughput time; between the two bounds a smooth maximum (their quadrature sum: within ~8% of
    chains.csv from 2 to 65536 rows of 1152 and 4096)."""
    if hw.gpu_layernorm_block_us <= 0 or rows <= 0:
        return throughput
    hz = hw.frequency_mhz * 1e6
    latency = (hw.gpu_layernorm_block_us * 1e-6 + nbytes / rows / (hw.gpu_layernorm_block_gbs * 1e9)) * hz
    return np.sqrt(latency * latency + throughput * throughput)


@njit(cache=True)
def _gn_stats_cycles(rd, blocks, hw):
    """GroupNorm statistics: one thread block per (sample, group) streams its share after
    `gn_block_us`, at `gn_block_gbs` (`gn_block_far_gbs` for inputs from `gn_far_from_mb`); many
    blocks saturate at `gn_stats_max_gbs`."""
    hz = hw.frequency_mhz * 1e6
    gbs = hw.gpu_gn_block_gbs
    if hw.gpu_gn_block_far_gbs > 0 and rd >= hw.gpu_gn_far_from_mb * 1e6:
        gbs = hw.gpu_gn_block_far_gbs
    block = hw.gpu_gn_block_us * 1e-6 * hz + rd / blocks / (gbs * 1e9) * hz
    return max(block, rd / (hw.gpu_gn_stats_max_gbs * 1e9) * hz)


@njit(cache=True)
def _l2_resident_bytes(k, rd, wr, hw):
    """Input bytes of kernel `k` (`rd` read, `wr` written) that recent kernels left in L2: its inputs
    produced in the graph (`l2_words`) when their reuse distance (`l2_distance` bytes) plus its own
    bytes fit the L2; 0 for other classes or without `l2_read_gbs`."""
    if hw.gpu_l2_read_gbs <= 0 or k.l2_words <= 0 or (k.gpu_kind != GK_ELEMENTWISE and k.gpu_kind != GK_COPY):
        return 0.0
    if k.l2_distance + rd + wr > hw.global_buffer_size_kb * 1024.0:
        return 0.0
    return min(rd, k.l2_words * rd / max(k.words_in, 1))


@njit(cache=True)
def _attention_cycles(k, hw):
    b = k.gpu_kind - GK_ATTENTION
    hz = hw.frequency_mhz * 1e6
    sms = int(hw.cores)
    tq, tkv = int(hw.gpu_attention_tile_q[b]), int(hw.gpu_attention_tile_kv[b])
    waves = _cdiv(k.count * _cdiv(k.m, tq), sms)
    iters = _cdiv(k.n, tkv)
    rate = hw.array_rows * hw.array_cols * hw.array_count * hw.gpu_attention_efficiency[b]
    mma = 2.0 * tq * tkv * k.k / rate
    exp = tq * tkv / (hw.gpu_attention_gscores_s[b] * 1e9 / sms) * hz
    partial = hw.gpu_attention_partial_us[b] if k.n % tkv else 0.0
    return waves * ((hw.gpu_attention_tile_us[b] + partial) * 1e-6 * hz + iters * max(mma, exp))


@njit(cache=True)
def gpu_kernel(out, k, hw):
    """Fill metric record `out` for GPU kernel record `k` (gpu_kind > 0) on hardware record `hw`."""
    w = hw.word_bytes
    native_bits = 8.0 * w
    hz = hw.frequency_mhz * 1e6
    wa, wb, wc = width(k.a_bits, native_bits), width(k.b_bits, native_bits), width(k.c_bits, native_bits)
    floor = hw.gpu_kernel_floor_us * 1e-6 * hz
    if k.gpu_kind == GK_SGEMM and hw.gpu_fp32_gemm_tflops > 0:
        out.macs = k.count * k.m * k.k * k.n
        rd = k.count * (k.a_dram * k.m * k.k * wa + k.b_dram * k.k * k.n * wb) * w
        wr = k.count * k.c_dram * k.m * k.n * wc * w
        out.compute_cycles = hw.gpu_gemm_fixed_us * 1e-6 * hz + 2.0 * out.macs / (hw.gpu_fp32_gemm_tflops * 1e12) * hz
        out.stall_cycles = hw.gpu_gemm_mem_latency_us * 1e-6 * hz + (
            rd / hw.gpu_gemm_read_gbs + wr / hw.gpu_gemm_write_gbs) * hz / 1e9  # fmt: skip
        out.dram_read_bytes = rd
        out.dram_write_bytes = wr
        out.cores_used = hw.cores
        out.folds = hw.cores * hw.array_count
        return
    cublas = k.gpu_kind == GK_GEMM or k.gpu_kind == GK_LINEAR or k.gpu_kind == GK_SGEMM
    if cublas or k.gpu_kind == GK_CONV or GK_ATTENTION <= k.gpu_kind <= GK_ATTN_EFFICIENT:
        m, kk, n, count = k.m, k.k, k.n, k.count
        if cublas or k.gpu_kind == GK_CONV:
            thr = 1.0 if k.mac_dtype < 0 else hw.array_throughput[k.mac_dtype]
            compute, extra = _gemm_cycles(m, kk, n, count, hw, thr, cublas, 0.5 * (wa + wb) * w)
            rd = count * (k.a_dram * m * kk * wa + k.b_dram * kk * n * wb) * w + extra / 2
            wr = count * k.c_dram * m * n * wc * w + extra / 2
            mem = hw.gpu_gemm_mem_latency_us * 1e-6 * hz + (
                rd / hw.gpu_gemm_read_gbs + wr / hw.gpu_gemm_write_gbs) * hz / 1e9  # fmt: skip
            if cublas and (kk % GEMM_ALIGN or n % GEMM_ALIGN) and hw.gpu_gemm_unaligned_slowdown > 0:
                compute *= hw.gpu_gemm_unaligned_slowdown  # sm75 `align1` fallback kernels
                mem *= hw.gpu_gemm_unaligned_slowdown
            fixed = (hw.gpu_gemm_fixed_us + (hw.gpu_gemm_bias_us if k.gpu_kind == GK_LINEAR else 0.0)) * 1e-6 * hz
            out.macs = count * m * kk * n
        else:  # fused attention: Q, K, V read, O written
            compute = _attention_cycles(k, hw)
            rd = count * (m * kk * wa + 2 * n * kk * wb) * w
            wr = count * m * kk * wc * w
            mem = (rd + wr) / (hw.dram_bandwidth_gbs * 1e9) * hz
            fixed = hw.gpu_attention_fixed_us[k.gpu_kind - GK_ATTENTION] * 1e-6 * hz
            out.macs = 2 * count * m * kk * n
        if hw.gpu_sustained_tensor_ratio > 0:  # tensor-core work at the power-capped clock
            compute /= hw.gpu_sustained_tensor_ratio
        out.compute_cycles = fixed + compute
        out.stall_cycles = max(0.0, mem - compute)
        out.dram_read_bytes = rd
        out.dram_write_bytes = wr
        out.cores_used = hw.cores
        out.folds = hw.cores * hw.array_count  # every SM's arrays busy (per-core utilization is not modelled)
        return
    rd = k.words_in * wa * w
    wr = k.words_out * wc * w
    if k.gpu_kind == GK_GN_STATS:
        mem = _gn_stats_cycles(rd, max(k.par, 1), hw)
    elif k.gpu_kind == GK_GN_PARAMS:
        mem = 0.0
    elif k.gpu_kind == GK_FUSED:
        floor = 0.0
        mem = (rd + wr) / (hw.gpu_bandwidth_gbs[GK_ELEMENTWISE - GK_MEMORY] * 1e9) * hz
    else:
        if k.gpu_kind == GK_GATHER:
            floor += hw.gpu_gather_latency_us * 1e-6 * hz
        gbs = hw.gpu_bandwidth_gbs[(GK_COPY if k.gpu_kind == GK_GATHER else k.gpu_kind) - GK_MEMORY]
        if k.gpu_kind == GK_SOFTMAX and k.par > 0:
            gbs = _softmax_gbs(k.words_in / k.par, wa * w, hw, gbs)
        resident = _l2_resident_bytes(k, rd, wr, hw)
        if resident > 0:
            out.l2_read_bytes = resident
            rd -= resident
            if rd <= 0 and hw.gpu_l2_kernel_floor_us > 0:
                floor = hw.gpu_l2_kernel_floor_us * 1e-6 * hz
        mem = ((rd + wr) / gbs + resident / max(hw.gpu_l2_read_gbs, gbs)) / 1e9 * hz
        if k.gpu_kind == GK_LAYERNORM:
            mem = _layernorm_cycles(mem + k.par * hw.gpu_layernorm_row_ns * 1e-9 * hz, rd + wr, k.par, hw)
        elif k.gpu_kind == GK_ACT_TRANSPOSE or k.gpu_kind == GK_WEIGHT_TRANSPOSE:
            mem += k.par * hw.gpu_transpose_row_ns * 1e-9 * hz  # one contiguous run per (image, channel)
    out.compute_cycles = floor
    out.stall_cycles = mem
    out.dram_read_bytes = rd
    out.dram_write_bytes = wr
    out.vector_ops = k.elements
    out.cores_used = hw.cores if k.par == 0 else min(hw.cores, k.par)
