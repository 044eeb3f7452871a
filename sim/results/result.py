"""Simulation results: a per-op DataFrame, summaries by op class and stage, and exports.

Every cycle, byte and joule column of `Result.ops` is a total over the op's repeats (50
denoising steps included), so column sums are pipeline totals; `cycles_per_call` is one call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workloads.ir import Op, PlanStep

from ..arch import Arch
from ..cost import METRIC, METRIC_FIELDS
from ..lower import Kernels, Unit
from ..schedule import Schedule, serial
from .assembly import Hardware, Timing, assemble, metric_values, step_seconds, summaries, timing
from .prepared import Prepared

if TYPE_CHECKING:
    from ..runtime import HostModel


@dataclass(frozen=True)
class Result:
    """Outcome of `sim.simulate`: `ops` (one row per op, in execution order), `steps` (one row
    per step-plan entry: each stage's run-once part and each loop step), `kernels`, `summary()`.

    Assembly computes per-op numpy arrays only; the DataFrames are built on first use, so a
    sweep that needs only `summary()` never builds them.
    """

    name: str
    arch: Arch
    attention: str
    fuse_elementwise: bool
    passes: tuple
    prep: Prepared = field(repr=False, compare=False)
    hardware: Hardware = field(repr=False, compare=False)  # this arch as a batch of one
    values: np.ndarray = field(repr=False, compare=False)  # (fields, 1, sources) kernel metrics
    source: str = field(repr=False, compare=False)  # 'unique' or 'kernels': what `values` rows are
    op_timing: Timing = field(repr=False, compare=False)  # per op and call (1 x ops)

    @classmethod
    def assemble(
        cls,
        prep: Prepared,
        metrics: np.ndarray,
        arch: Arch,
        attention: str,
        fuse_elementwise: bool = False,
        passes: Sequence[Any] = (),
        host: HostModel | None = None,
        unique: bool = False,
    ) -> Result:
        """Time the ops serially (or as a runtime's `host` model schedules them,
        `sim.runtime.host`) from kernel `metrics` -- one record per kernel, or per unique
        kernel (`unique`) -- the batch of one arch of `sim.results.assembly`. Per-op columns
        and the schedule are built on first use."""
        hw = Hardware.of([arch])
        kind = "unique" if unique else "kernels"
        values = metric_values(metrics[None])
        t = timing(prep, values, prep.source(kind), hw, host)
        return cls(prep.graph.name, arch, attention, fuse_elementwise, tuple(passes), prep, hw, values, kind, t)

    @cached_property
    def metrics(self) -> np.ndarray:
        """Metric records (`sim.cost.METRIC`) of every kernel, for one call."""
        rows = self.values[:, 0, self.prep.source(self.source)]
        return np.ascontiguousarray(rows.T).view(METRIC).reshape(-1)

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        a = assemble(self.prep, self.values, self.prep.source(self.source), self.hardware, self.op_timing)
        return {k: v[0] for k, v in a.items()}

    @property
    def cols(self) -> dict[str, np.ndarray]:
        """Per-op totals over repeats: the numeric columns of `ops`."""
        return {k: v for k, v in self._columns.items() if not k.startswith("entry_")}

    @property
    def entry_call(self) -> dict[str, np.ndarray]:
        """Per op, per-call values that steps report (DRAM bytes, energy, MACs)."""
        return {k.removeprefix("entry_"): v for k, v in self._columns.items() if k.startswith("entry_")}

    @cached_property
    def timing(self) -> _Timing:
        t = self.op_timing
        return _Timing(t.busy_s[0], t.idle_s[0], float(t.entry_launch_s[0, 0]), t.schedule)

    @cached_property
    def ops(self) -> pd.DataFrame:
        """One row per op in execution order; every cycle, byte and joule column is a total over
        the op's repeats (`cycles_per_call` is one call)."""
        ops, c, first = self.prep.ops, self.cols, self.prep.first_gemm
        start, end = self.schedule.op_span(len(ops))
        static = {
            "op": [op.name for op in ops],
            "kind": [op.kind.value for op in ops],
            "op_class": [op.op_class for op in ops],
            "stage": [op.stage for op in ops],
            "block": [op.block for op in ops],
            "attn_role": [op.attrs.get("role", "") for op in ops],
            "attn_axis": [op.attrs.get("axis", "") for op in ops],
            "repeat": self.prep.repeat.astype(np.int64),
            "kernels": self.prep.kernel_count,
            "M": first["m"], "K": first["k"], "N": first["n"], "gemm_count": first["count"],
        }  # fmt: skip
        frame = pd.DataFrame({**static, **c, "start_s": start, "end_s": end})
        frame["macs"] = frame["macs"].astype(np.int64)
        return frame

    @cached_property
    def steps(self) -> pd.DataFrame:
        """One row per step-plan entry in execution order: label, stage, loop step, time, start
        and end, DRAM bytes, energy and MACs."""
        return _steps(self.prep.plan, self.schedule, self.entry_call)

    @property
    def schedule(self) -> Schedule:
        """Start and end of every op occurrence (built on first use)."""
        return self.timing.scheduled(self.prep.plan)

    @property
    def kernel_data(self) -> tuple:
        """(ops, kernels, metrics, repeat): the raw per-kernel data."""
        return (self.prep.ops, self.prep.kernels, self.metrics, self.prep.repeat)

    @cached_property
    def kernels(self) -> pd.DataFrame:
        """One row per kernel: op, unit, GEMM dims, metrics of one call, repeat (built on first
        use, since sweeps only need the summary)."""
        return _kernel_table(*self.kernel_data)

    def core_utilization(self) -> pd.Series:
        """Per core: the fraction of GEMM compute time its arrays are busy (folds are dealt out
        round-robin, so the last fold-step of a kernel leaves some arrays idle)."""
        k = self.kernels[self.kernels["unit"] == "gemm"]
        arrays, per_core = self.arch.arrays, self.arch.array.count
        cores = np.arange(self.arch.cores)
        folds = k["folds"].to_numpy()[:, None]
        q, r = folds // arrays, folds % arrays
        steps = -(-folds // arrays)
        on_core = per_core * q + np.clip(r - cores[None, :] * per_core, 0, per_core)
        weight = (k["compute_cycles"] * k["repeat"]).to_numpy()[:, None]
        busy = (on_core / (steps * per_core) * weight).sum(axis=0) / max(weight.sum(), 1e-30)
        return pd.Series(busy, index=pd.Index(cores, name="core"), name="utilization")

    # -- summaries ---------------------------------------------------------------------
    @property
    def latency_s(self) -> float:
        return float(self.cols["time_s"].sum())

    def by(self, column: str) -> pd.Series:
        """Seconds by the values of `column` (e.g. op_class, stage, attn_axis), largest first."""
        if column in ("op_class", "stage"):
            names, codes = self.prep.codes(column)
            seconds = np.bincount(codes, weights=self.cols["time_s"], minlength=len(names))
            series = pd.Series(seconds, index=pd.Index(names, name=column), name="time_s")
            return series.sort_values(ascending=False, kind="stable")
        return self.ops.groupby(column, sort=False)["time_s"].sum().sort_values(ascending=False)

    def by_step(self) -> dict[str, float]:
        """Seconds of each step-plan entry, in execution order."""
        seconds = step_seconds(self.prep, self.op_timing)[0].tolist()
        return {p.label: v for p, v in zip(self.prep.plan, seconds)}

    def summary(self) -> dict[str, Any]:
        """Headline numbers: latency, cycles, seconds by op class, stage and step, traffic, energy."""
        heads = {"workload": self.name, "arch": [self.arch.name], "attention": self.attention,
                 "fuse_elementwise": self.fuse_elementwise}  # fmt: skip
        source = self.prep.source(self.source)
        return summaries(self.prep, self.values, source, self.hardware, self.op_timing, heads)[0]

    def write(self, out_dir: str | Path, meta: Mapping[str, Any] | None = None) -> list[Path]:
        """Write ops.csv, kernels.csv, by_class.csv, by_stage.csv, cores.csv, steps.csv and
        summary.json (with `meta` -- what was run, by which ttvsim -- under "run")."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "ops.csv", out / "by_class.csv", out / "by_stage.csv", out / "summary.json"]
        paths += [out / "kernels.csv", out / "cores.csv", out / "steps.csv"]
        self.steps.to_csv(paths[6], index=False)
        self.kernels.to_csv(paths[4], index=False)
        self.core_utilization().to_csv(paths[5])
        self.ops.to_csv(paths[0], index=False)
        self.by("op_class").rename("time_s").to_csv(paths[1])
        self.by("stage").rename("time_s").to_csv(paths[2])
        summary = {"run": dict(meta), **self.summary()} if meta else self.summary()
        paths[3].write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return paths


@dataclass
class _Timing:
    """Per op and call: busy and idle seconds (and an idle gap per plan entry); the schedule of
    every occurrence is built from them only when asked for (or given by a host model)."""

    busy_s: np.ndarray
    idle_s: np.ndarray
    entry_launch_s: float
    schedule: Schedule | None = None

    @property
    def hosted(self) -> bool:
        """Whether a host model scheduled the ops (then idle time comes from its schedule)."""
        return self.schedule is not None and not self.lazy

    lazy: bool = False  # the schedule was built on demand from busy/idle (serial)

    def scheduled(self, plan: Sequence[PlanStep]) -> Schedule:
        if self.schedule is None:
            self.schedule = serial(plan, self.busy_s, self.idle_s, self.entry_launch_s)
            self.lazy = True
        return self.schedule


def _kernel_table(ops: Sequence[Op], kernels: Kernels, metrics: np.ndarray, repeat: np.ndarray) -> pd.DataFrame:
    """One row per kernel: its op, unit, GEMM dims and metrics for one call, and the op's repeat."""
    idx = kernels.cols["op"]
    frame = pd.DataFrame({
        "op": [ops[i].name for i in idx],
        "unit": [Unit(u).name.lower() for u in kernels.cols["unit"]],
        **{c: kernels.cols[c] for c in ("m", "k", "n", "count")},
        **{m: metrics[m] for m in METRIC_FIELDS},
        "repeat": repeat[idx],
    })  # fmt: skip
    return frame


def _steps(plan: Sequence[PlanStep], schedule: Schedule, per_call: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per plan entry in execution order: its label, stage, loop step, time, start and
    end, and the per-call quantities of its ops summed."""
    k = len(plan)
    duration = schedule.end_s - schedule.start_s
    first = np.full(k, np.inf)
    np.minimum.at(first, schedule.entry, schedule.start_s)
    last = np.zeros(k)
    np.maximum.at(last, schedule.entry, schedule.end_s)
    return pd.DataFrame(
        {
            "step": [p.label for p in plan],
            "stage": [p.stage for p in plan],
            "index": pd.array([p.step for p in plan], dtype="Int64"),
            "ops": [len(p.ops) for p in plan],
            "time_s": np.bincount(schedule.entry, weights=duration, minlength=k),
            "start_s": np.where(np.isinf(first), 0.0, first),
            "end_s": last,
            **{name: schedule.per_entry(values, k) for name, values in per_call.items()},
        }
    )
