"""Service times from the simulator's per-step costs, memoized per (workload, arch, batch).

A pipeline's step plan (`Result.steps`) is split into the entries before the denoising loop
(`prologue`, e.g. text encoders), the loop steps (`loop`, one entry per step), and the entries
after it (`epilogue`, e.g. the VAE decoder). A request that skips the first K steps costs
prologue + loop[K:] + epilogue; this module reads the per-step table directly (it does not use
the `skip_steps` graph pass) so one simulation per batch size serves every K. A batch of b
requests is the model simulated at `batch=b` (b prompts; with CFG the denoiser runs 2b).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import workloads
from workloads.errors import InputError

from ..arch import Arch, load_arch
from ..engine import simulate
from ..experiment.experiment import SimulationSpec, WorkloadSpec


@dataclass(frozen=True)
class StepCosts:
    """Seconds of one invocation at one batch size: prologue, each loop step, epilogue."""

    prologue_s: float
    loop_s: np.ndarray
    epilogue_s: float

    @property
    def steps(self) -> int:
        return len(self.loop_s)

    @property
    def step_s(self) -> float:
        """Mean seconds of one loop step (continuous batching advances all requests together)."""
        return float(self.loop_s.mean())

    def remaining_s(self) -> np.ndarray:
        """remaining_s()[k]: seconds of loop steps k..N-1 (index N: 0)."""
        return np.r_[np.cumsum(self.loop_s[::-1])[::-1], 0.0]

    def service_s(self, skipped: int) -> float:
        """Seconds of a request that skips the first `skipped` loop steps."""
        return self.prologue_s + float(self.loop_s[skipped:].sum()) + self.epilogue_s

    @classmethod
    def from_steps(cls, steps: Any, where: str = "") -> StepCosts:
        """Split a `Result.steps` table at its loop entries (rows with a loop `index`)."""
        in_loop = steps["index"].notna().to_numpy()
        if not in_loop.any():
            raise InputError(
                "the workload has no denoising loop (no step-plan entry with a loop index)", where=where or None
            )
        first, last = np.flatnonzero(in_loop)[[0, -1]]
        times = steps["time_s"].to_numpy(dtype=float)
        return cls(float(times[:first].sum()), times[first : last + 1].copy(), float(times[last + 1 :].sum()))


class CostBook:
    """Memoized StepCosts per (workload, options, arch, simulation options, batch)."""

    def __init__(self) -> None:
        self._costs: dict[tuple[str, ...], StepCosts] = {}
        self.simulations = 0

    def costs(
        self, workload: WorkloadSpec, arch: Arch, simulation: SimulationSpec, batch: int, where: str = ""
    ) -> StepCosts:
        options = {**workload.options, "batch": batch}
        key = (workload.model, repr(sorted(options.items())), repr(arch), repr(simulation), str(batch))
        if key not in self._costs:
            graph = workloads.build(workload.model, where=f"{where} workload" if where else None, **options)
            result = simulate(graph, arch, attention=simulation.attention, fuse_elementwise=simulation.fuse_elementwise)
            self._costs[key] = StepCosts.from_steps(result.steps, where)
            self.simulations += 1
        return self._costs[key]


class ServiceModel:
    """Step costs of one workload on one arch, at every batch size up to `max_batch` (lazily)."""

    def __init__(
        self, book: CostBook, workload: WorkloadSpec, arch: Arch, simulation: SimulationSpec, where: str = ""
    ) -> None:
        self.book, self.workload, self.arch, self.simulation, self.where = book, workload, arch, simulation, where

    def at(self, batch: int) -> StepCosts:
        return self.book.costs(self.workload, self.arch, self.simulation, batch, self.where)


def fleet_arch(arch: Any, overrides: dict[str, Any], base_dir: Path, where: str) -> Arch:
    return load_arch(arch, overrides or None, base_dir=base_dir, where=where)
