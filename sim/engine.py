"""The simulation engine: apply passes, lower, evaluate unique kernels once, schedule, assemble.

Data flows one way: OpGraph (+ passes) + Arch -> kernel table -> unique kernels -> Numba cost
models -> per-kernel metrics -> per-op totals -> schedule -> Result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workloads.errors import InputError, unknown
from workloads.ir import OpGraph
from workloads.passes import apply_passes

from .arch import Arch
from .checks import check_simulate
from .cost import METRIC, evaluate, evaluate_batch, hardware_record, hardware_records
from .lower import ATTENTION_MODES, lower
from .results import Result
from .results.assembly import Hardware, metric_values, signature, summaries, timing
from .results.prepared import Prepared
from .runtime import RuntimeConfig, expand, host_model

Passes = Sequence[Mapping[str, Any]]


def evaluate_kernels(prep: Prepared, arch: Arch) -> np.ndarray:
    """Metric records (`sim.cost.METRIC`) of every kernel of a lowered graph; identical kernels
    evaluated once."""
    unique, inverse = prep.unique
    if len(unique) == 0:
        return np.zeros(0, dtype=METRIC)
    metrics = evaluate(unique, _record(arch))
    # gather rows as a plain float matrix (every metric is float64): much faster than records
    rows = metrics.view(np.float64).reshape(len(metrics), -1)[inverse]
    return rows.view(METRIC).reshape(-1)


def _record(arch: Arch) -> np.void:
    """The arch's hardware record, built once per Arch instance (an Arch is immutable)."""
    record = arch.__dict__.get("_hardware_record")
    if record is None:
        record = hardware_record(arch)
        object.__setattr__(arch, "_hardware_record", record)
    return record


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
        self._lowered: dict[tuple, Prepared] = {}

    @classmethod
    def of(cls, graph: OpGraph) -> Simulator:
        """The simulator of `graph`, kept with the graph: repeated `simulate` calls on one graph
        lower it once."""
        return graph.memo(cls, lambda: cls(graph))

    def transformed(self, passes: Passes | None = None) -> OpGraph:
        """The graph after `passes` (cached per pass list)."""
        key = json.dumps(list(passes or []), sort_keys=True, default=str)
        if key not in self._graphs:
            self._graphs[key] = apply_passes(self.graph, passes) if passes else self.graph
        return self._graphs[key]

    def run(
        self, arch: Arch, *, attention: str = "fused", fuse_elementwise: bool = False, passes: Passes | None = None,
        runtime: str | Mapping[str, Any] | RuntimeConfig | None = None,
    ) -> Result:
        """Simulate one invocation of the graph on `arch` (see `simulate`)."""
        prep, passes, config = self._prepared(arch, attention, fuse_elementwise, passes, runtime)
        metrics = evaluate(prep.unique[0], _record(arch))
        host = None if config is None else host_model(prep.ops, prep.launches, arch.gpu, config, prep.plan_builds, prep.cudnn_calls)
        return Result.assemble(prep, metrics, arch, attention, fuse_elementwise, passes, host=host, unique=True)

    def summaries(
        self, archs: Sequence[Arch], *, attention: str = "fused", fuse_elementwise: bool = False,
        passes: Passes | None = None, runtime: str | Mapping[str, Any] | RuntimeConfig | None = None,
        base: Arch | None = None, changed: Sequence[tuple[str, ...]] = (),
    ) -> list[dict[str, Any]]:
        """`run(arch).summary()` of every arch, the same numbers computed in batches: archs that
        share a lowering and a `signature` are evaluated in one Numba call (`evaluate_batch`)
        and assembled together. Given `base`, every arch differs from it at most at the
        attribute paths `changed` (a sweep's arch keys), so only those are read per arch."""
        out: list[dict[str, Any] | None] = [None] * len(archs)
        if RuntimeConfig.parse(runtime) is not None:  # a host model schedules each arch on its own
            for i, arch in enumerate(archs):
                out[i] = self.run(arch, attention=attention, fuse_elementwise=fuse_elementwise, passes=passes,
                                  runtime=runtime).summary()  # fmt: skip
            return out  # type: ignore[return-value]
        batches: dict[tuple, list[int]] = {}
        for i, arch in enumerate(archs):
            tile = (arch.attention.tile_q, arch.attention.tile_kv)
            batches.setdefault((tile, signature(arch)), []).append(i)
        for rows in batches.values():
            group = [archs[i] for i in rows]
            prep, passes_, _ = self._prepared(group[0], attention, fuse_elementwise, passes, None)
            records = hardware_records(group, base, changed) if base is not None else np.array([_record(a) for a in group])
            unique, inverse = prep.unique
            hw = Hardware.of(group)
            values = metric_values(evaluate_batch(unique, records))
            t = timing(prep, values, inverse, hw)
            heads = {"workload": prep.graph.name, "arch": [x.name for x in group], "attention": attention,
                     "fuse_elementwise": fuse_elementwise}  # fmt: skip
            for i, summary in zip(rows, summaries(prep, values, inverse, hw, t, heads)):
                out[i] = summary
        return out  # type: ignore[return-value]

    def _prepared(
        self, arch: Arch, attention: str, fuse_elementwise: bool, passes: Passes | None, runtime: Any
    ) -> tuple[Prepared, list[Mapping[str, Any]], RuntimeConfig | None]:
        """The lowering `arch` needs (built once per pass list, attention mode, tile and runtime)."""
        if attention not in ATTENTION_MODES:
            raise unknown("attention lowering", attention, ATTENTION_MODES)
        config = _runtime(runtime, arch)
        passes = _passes_with(passes, fuse_elementwise or bool(config and config.compiled))
        graph = self.transformed(passes)
        tile = (arch.attention.tile_q, arch.attention.tile_kv)
        key = (json.dumps(passes, sort_keys=True, default=str), attention, tile, config)
        if key not in self._lowered:
            stack = None if config is None else lambda op, kernels, g: expand(op, kernels, g, config)
            self._lowered[key] = Prepared(graph, lower(graph, attention, tile=tile, expand=stack))
        return self._lowered[key], passes, config


def _runtime(runtime: Any, arch: Arch) -> RuntimeConfig | None:
    """The runtime model, checked against the arch (it needs the arch's `gpu` constants)."""
    config = RuntimeConfig.parse(runtime)
    if config is not None and not arch.gpu.available:
        raise InputError(
            f"arch '{arch.name}' has no gpu section (kernel_floor_us, gemm_efficiency, ...): a runtime model "
            "needs one (see the h200 preset)", where="runtime",
        )  # fmt: skip
    return config


def simulate(
    graph: OpGraph,
    arch: Arch,
    *,
    attention: str = "fused",
    fuse_elementwise: bool = False,
    passes: Passes | None = None,
    runtime: str | Mapping[str, Any] | RuntimeConfig | None = None,
) -> Result:
    """Simulate one invocation of `graph` on `arch`.

    `attention`: 'fused' (Flash-style, scores on chip) or 'unfused' (scores through DRAM).
    `passes`: graph passes applied first (`workloads.apply_passes`), e.g.
    `[{"name": "precision", "by_class": {"linear": "fp8"}}]`.
    `fuse_elementwise`: shorthand for the `fuse_elementwise` pass.
    `runtime`: a GPU software-stack model (`sim.runtime`; archs with a `gpu` section): a mode
    ('eager', 'cuda_graph', 'compiled', 'compiled_graph') or a mapping/`RuntimeConfig` with
    `mode`, `conv_layout` ('nchw', 'channels_last') and `attention_kernel`. None: no model.
    """
    check_simulate(graph, arch, attention, fuse_elementwise)
    return Simulator.of(graph).run(
        arch, attention=attention, fuse_elementwise=fuse_elementwise, passes=passes, runtime=runtime
    )


def simulate_many(
    graph: OpGraph,
    archs: Sequence[Arch],
    *,
    attention: str = "fused",
    fuse_elementwise: bool = False,
    passes: Passes | None = None,
    runtime: str | Mapping[str, Any] | RuntimeConfig | None = None,
) -> list[dict[str, Any]]:
    """`simulate(graph, arch, ...).summary()` for every arch of `archs`, in batches (the same
    numbers, a fraction of the time: see `Simulator.summaries`)."""
    if isinstance(archs, (Arch, str, bytes)) or not isinstance(archs, Sequence):
        raise InputError(f"archs must be a list of Arch, got {type(archs).__name__}")
    for arch in archs:
        check_simulate(graph, arch, attention, fuse_elementwise)
    return Simulator.of(graph).summaries(
        archs, attention=attention, fuse_elementwise=fuse_elementwise, passes=passes, runtime=runtime
    )
