"""The simulation engine: lower an OpGraph, evaluate unique kernels once, assemble a Result.

Data flows one way: OpGraph + Arch -> kernel table -> unique kernels -> Numba cost models ->
per-kernel metrics -> per-op sums (x op.repeat) -> serial schedule -> Result.
"""

from __future__ import annotations

import numpy as np

from workloads.errors import unknown
from workloads.ir import OpGraph

from .arch import VECTOR_CLASSES, Arch
from .costs import METRICS, evaluate
from .lower import ATTENTION_MODES, COLUMNS, Kernels, lower
from .results import Result
from .systolic import dataflow_code


def evaluate_kernels(kernels: Kernels, arch: Arch) -> np.ndarray:
    """Metrics of every kernel (rows) x `METRICS` (cols); identical kernels evaluated once."""
    if len(kernels) == 0:
        return np.zeros((0, len(METRICS)))
    unique, inverse = np.unique(kernels.matrix(), axis=0, return_inverse=True)
    c = {name: np.ascontiguousarray(unique[:, j]) for j, name in enumerate(COLUMNS[1:])}
    a, w = arch.array, arch.word_bytes
    caps = np.array(
        [int(arch.sram.ifmap_kb * 1024 / a.count / w), int(arch.sram.filter_kb * 1024 / a.count / w),
         int(arch.sram.ofmap_kb * 1024 / a.count / w)], dtype=np.int64,
    )  # fmt: skip
    bw_words = arch.bytes_per_cycle / w
    cpe = np.array([arch.vector.cost(v) for v in VECTOR_CLASSES])
    l2_words = int(arch.global_buffer.size_kb * 1024 / w)
    l2_bw = arch.global_buffer.bandwidth_gbs * 1e9 / (arch.frequency_mhz * 1e6) / w
    onchip = int((arch.sram.ifmap_kb + arch.sram.ofmap_kb) * 1024 * arch.cores / w) + l2_words
    metrics = evaluate(
        c["unit"], c["m"], c["k"], c["n"], c["count"], c["a_dram"], c["b_dram"], c["c_dram"],
        c["vclass"], c["elements"], c["words_in"], c["words_out"], c["multipass"],
        a.rows, a.cols, dataflow_code(a.dataflow), a.overlap_folds, arch.arrays, caps, bw_words, l2_words, l2_bw,
        arch.vector.lanes * arch.cores, cpe, onchip, arch.vector.norm_passes,
    )  # fmt: skip
    return metrics[inverse.reshape(-1)]


def simulate(graph: OpGraph, arch: Arch, *, attention: str = "fused", fuse_elementwise: bool = False) -> Result:
    """Simulate one invocation of `graph` on `arch`.

    `attention`: 'fused' (Flash-style, scores on chip) or 'unfused' (scores through DRAM).
    `fuse_elementwise`: fold activations/elementwise ops into the GEMM producing their input.
    """
    if attention not in ATTENTION_MODES:
        raise unknown("attention lowering", attention, ATTENTION_MODES)
    ops = graph.ops()
    kernels = lower(graph, attention, fuse_elementwise=fuse_elementwise)
    metrics = evaluate_kernels(kernels, arch)
    return Result.assemble(graph.name, ops, kernels, metrics, arch, attention, fuse_elementwise)
