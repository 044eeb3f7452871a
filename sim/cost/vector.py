"""The vector unit and the move (DMA) engine: cycles and action counts (Numba).

Vector kernels stream their inputs and outputs through DRAM and take max(ALU cycles, DRAM
cycles): ALU cycles = elements x cycles per element of the op class / (lanes x active cores).
A kernel with `par` independent work items (the N x G groups of a GroupNorm's statistics) keeps
at most `par` cores busy, and each core's vector unit draws at most `vector.core_bandwidth_gbs`.
Norms re-read an input that does not fit on chip (`vector.norm_passes` DRAM passes); with an L2
the statistics pass leaves it there. Kernels of the approximate datapath (`approx`) take
`vector.approx_cycles_per_element`, and their energy scales with those cycles. Move kernels only transfer. Inputs and outputs keep their
own widths (`a_bits`, `c_bits`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .array import SCORE_QK, width
from .sparse import CSR, density, format_bits

GEMM, VECTOR, MOVE = 0, 1, 2


@njit(cache=True)
def vector(out, k, hw):
    """Fill metric record `out` for vector or move kernel record `k` on hardware record `hw`."""
    w = hw.word_bytes
    native_bits = 8.0 * w
    cores = int(hw.cores)
    active = cores if k.par == 0 else min(cores, k.par)
    per_cycle = 1.0 / (hw.frequency_mhz * 1e6) / w  # B/s -> native words per cycle
    bw = hw.dram_bandwidth_gbs * 1e9 * per_cycle
    if hw.vector_core_bandwidth_gbs > 0.0:
        bw = min(bw, active * (hw.vector_core_bandwidth_gbs * 1e9 * per_cycle))
    l2_words = int(hw.global_buffer_size_kb * 1024 / w)
    onchip = int((hw.sram_ifmap_kb + hw.sram_ofmap_kb) * 1024 * cores / w) + l2_words
    words_in = k.words_in * width(k.a_bits, native_bits)
    words_out = k.words_out * width(k.c_bits, native_bits)
    elements = float(k.elements)
    if k.sparse_mode == SCORE_QK and (hw.sparsity_attention_unit or not k.overlap):
        # softmax over the kept scores only; unfused, they travel as CSR
        keep = density(k.w_density)
        elements *= keep
        csr = format_bits(CSR, keep, native_bits, 0) / native_bits
        words_in *= csr
        words_out *= csr
    rd = words_in
    l2_rd = 0.0
    if k.multipass and words_in > onchip:
        rd *= hw.vector_norm_passes
    elif k.multipass and l2_words > 0:  # the statistics pass left the tensor in L2
        l2_rd = words_in * (hw.vector_norm_passes - 1)
    mem = np.ceil((rd + words_out) / bw)
    alu = 0.0
    exact = hw.vector_cycles_per_element[k.vclass]
    cpe = hw.vector_approx_cycles_per_element[k.vclass] if k.approx else exact
    if k.unit == VECTOR:
        alu = np.ceil(elements * cpe / (hw.vector_lanes * active))
    out.compute_cycles = alu
    out.stall_cycles = max(alu, mem) - alu
    out.dram_read_bytes = rd * w
    out.dram_write_bytes = words_out * w
    out.sram_read_bytes = rd * w if k.unit == VECTOR else 0.0
    out.sram_write_bytes = words_out * w if k.unit == VECTOR else 0.0
    out.l2_read_bytes = l2_rd * w
    out.vector_cycles = alu
    # element ops in exact-op equivalents: an approximate op costs its share of the ALU cycles
    out.vector_ops = elements * (cpe / exact if exact > 0.0 else 1.0) if k.unit == VECTOR else 0.0
    out.cores_used = active if k.unit == VECTOR else 0
