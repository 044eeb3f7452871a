"""The simulation engine: apply passes, lower, evaluate unique kernels once, schedule, assemble.

Data flows one way: OpGraph (+ passes) + Arch -> kernel table -> unique kernels -> Numba cost
models -> per-kernel metrics -> per-op totals -> schedule -> Result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workloads.errors import unknown
from workloads.ir import OpGraph
from workloads.passes import apply_passes

from .arch import VECTOR_CLASSES, Arch
from .checks import check_simulate
from .cost import METRICS, Hardware, evaluate
from .cost.systolic import dataflow_code
from .lower import ATTENTION_MODES, COLUMNS, Kernels, lower
from .results import Result

Passes = Sequence[Mapping[str, Any]]


def hardware(arch: Arch) -> Hardware:
    """The arch in cost-model units: words, cycles, per-array SRAM capacities."""
    a, w = arch.array, arch.word_bytes
    per_cycle = 1.0 / (arch.frequency_mhz * 1e6) / w  # bytes/s -> words/cycle
    l2_words = int(arch.global_buffer.size_kb * 1024 / w)
    sram = arch.sram
    return Hardware(
        rows=a.rows,
        cols=a.cols,
        dataflow=dataflow_code(a.dataflow),
        overlap=a.overlap_folds,
        arrays=arch.arrays,
        cores=arch.cores,
        ifmap_words=int(sram.ifmap_kb * 1024 / a.count / w),
        filter_words=int(sram.filter_kb * 1024 / a.count / w),
        ofmap_words=int(sram.ofmap_kb * 1024 / a.count / w),
        bw=arch.dram.bandwidth_gbs * 1e9 * per_cycle,
        l2_words=l2_words,
        l2_bw=arch.global_buffer.bandwidth_gbs * 1e9 * per_cycle,
        lanes=arch.vector.lanes,
        core_bw=arch.vector.core_bandwidth_gbs * 1e9 * per_cycle,
        onchip_words=int((sram.ifmap_kb + sram.ofmap_kb) * 1024 * arch.cores / w) + l2_words,
        norm_passes=arch.vector.norm_passes,
    )


def evaluate_kernels(kernels: Kernels, arch: Arch) -> np.ndarray:
    """Metrics of every kernel (rows) x `METRICS` (cols); identical kernels evaluated once."""
    if len(kernels) == 0:
        return np.zeros((0, len(METRICS)))
    unique, inverse = np.unique(kernels.matrix(), axis=0, return_inverse=True)
    c = {name: np.ascontiguousarray(unique[:, j]) for j, name in enumerate(COLUMNS[1:])}
    cpe = np.array([arch.vector.cost(v) for v in VECTOR_CLASSES])
    metrics = evaluate(
        c["unit"], c["m"], c["k"], c["n"], c["count"], c["a_dram"], c["b_dram"], c["c_dram"],
        c["vclass"], c["elements"], c["words_in"], c["words_out"], c["multipass"], c["par"], cpe, hardware(arch),
    )  # fmt: skip
    return metrics[inverse.reshape(-1)]


def _passes_with(passes: Passes | None, fuse_elementwise: bool) -> list[Mapping[str, Any]]:
    """`passes`, plus the `fuse_elementwise` pass for the legacy `fuse_elementwise=True`."""
    out = list(passes or [])
    if fuse_elementwise and not any(p.get("name") == "fuse_elementwise" for p in out if isinstance(p, Mapping)):
        out.append({"name": "fuse_elementwise"})
    return out


class Simulator:
    """Simulates one graph on many archs: each distinct pass list and lowering (attention
    mode, attention tile) is built once and reused, as design-space sweeps need."""

    def __init__(self, graph: OpGraph) -> None:
        self.graph = graph
        self._graphs: dict[str, OpGraph] = {}
        self._lowered: dict[tuple[str, str, tuple[int, int]], Kernels] = {}

    def transformed(self, passes: Passes | None = None) -> OpGraph:
        """The graph after `passes` (cached per pass list)."""
        key = json.dumps(list(passes or []), sort_keys=True, default=str)
        if key not in self._graphs:
            self._graphs[key] = apply_passes(self.graph, passes) if passes else self.graph
        return self._graphs[key]

    def run(
        self, arch: Arch, *, attention: str = "fused", fuse_elementwise: bool = False, passes: Passes | None = None
    ) -> Result:
        """Simulate one invocation of the graph on `arch` (see `simulate`)."""
        if attention not in ATTENTION_MODES:
            raise unknown("attention lowering", attention, ATTENTION_MODES)
        passes = _passes_with(passes, fuse_elementwise)
        graph = self.transformed(passes)
        tile = (arch.attention.tile_q, arch.attention.tile_kv)
        key = (json.dumps(passes, sort_keys=True, default=str), attention, tile)
        if key not in self._lowered:
            self._lowered[key] = lower(graph, attention, tile=tile)
        kernels = self._lowered[key]
        metrics = evaluate_kernels(kernels, arch)
        return Result.assemble(graph, kernels, metrics, arch, attention, fuse_elementwise, passes)


def simulate(
    graph: OpGraph,
    arch: Arch,
    *,
    attention: str = "fused",
    fuse_elementwise: bool = False,
    passes: Passes | None = None,
) -> Result:
    """Simulate one invocation of `graph` on `arch`.

    `attention`: 'fused' (Flash-style, scores on chip) or 'unfused' (scores through DRAM).
    `passes`: graph passes applied first (`workloads.apply_passes`), e.g.
    `[{"name": "precision", "by_class": {"linear": "fp8"}}]`.
    `fuse_elementwise`: shorthand for the `fuse_elementwise` pass.
    """
    check_simulate(graph, arch, attention, fuse_elementwise)
    return Simulator(graph).run(arch, attention=attention, fuse_elementwise=fuse_elementwise, passes=passes)
