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
from ..cost import METRIC_FIELDS
from ..energy import COMPONENTS, energy_by_action
from ..lower import Kernels, Unit
from ..schedule import Schedule, serial
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
    metrics: np.ndarray = field(repr=False, compare=False)  # per kernel, sim.cost.METRIC
    cols: dict[str, np.ndarray] = field(repr=False, compare=False)  # per-op totals (ops columns)
    timing: _Timing = field(repr=False, compare=False)
    entry_call: dict[str, np.ndarray] = field(repr=False, compare=False)  # per-call values for steps

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
    ) -> Result:
        """Sum kernel metrics per op, scale by repeats, schedule the step plan serially (or as
        a runtime's `host` model schedules it, `sim.runtime.host`), price the actions."""
        n, idx, repeat = len(prep.ops), prep.idx, prep.repeat
        per_op = {m: np.bincount(idx, weights=metrics[m], minlength=n) for m in METRIC_FIELDS}
        _overlap(per_op, idx, metrics, prep.hidden, n)
        per_op["cores_used"] = np.zeros(n)
        np.maximum.at(per_op["cores_used"], idx, metrics["cores_used"])
        hz = arch.frequency_mhz * 1e6
        busy_call = per_op["compute_cycles"] + per_op["stall_cycles"]
        per_launch_s = arch.host.launch_overhead_us * 1e-6
        extra = prep.extra_latency_s
        if host is not None:  # a runtime model's host costs: its schedule decides the idle time
            timing = _Timing(busy_call / hz, extra, 0.0, host.schedule(prep.plan, busy_call / hz, extra))
            launch = np.bincount(timing.schedule.op, weights=timing.schedule.idle_s, minlength=n) * hz
        else:  # serial: launches (or one captured-graph replay per plan entry) and pass latencies
            capture = arch.host.graph_capture
            idle_call = extra if capture else prep.launches * per_launch_s + extra
            timing = _Timing(busy_call / hz, idle_call, per_launch_s if capture else 0.0)
            launch = (idle_call * repeat + timing.entry_launch_s * prep.first_of_entry) * hz
        compute = per_op["compute_cycles"] * repeat
        stall = per_op["stall_cycles"] * repeat
        busy = compute + stall
        actions = _actions(prep, metrics, per_op, arch)
        energy = energy_by_action(actions, (busy_call + launch / np.maximum(repeat, 1)) / hz, arch.energy_table())
        with np.errstate(divide="ignore", invalid="ignore"):
            util = np.where(busy > 0, prep.macs * repeat / (busy * arch.peak_macs_per_cycle), 0.0)
            per_call = np.where(repeat > 0, (busy + launch) / repeat, 0.0)
        cols = {
            "macs": prep.macs * repeat,
            "macs_issued": per_op["macs_issued"] * repeat,
            "cycles_per_call": per_call,
            "cycles": busy + launch,
            "compute_cycles": compute,
            "stall_cycles": stall,
            "launch_cycles": launch,
            "utilization": util,
            "cores_used": per_op["cores_used"],
            "core_occupancy": per_op["cores_used"] / arch.cores,
            **{f"{level}_{rw}_bytes": per_op[f"{level}_{rw}_bytes"] * repeat
               for level in ("dram", "l2", "sram") for rw in ("read", "write")},
            "energy_j": energy["total"] * repeat,
            **{f"energy_{c}_j": energy[c] * repeat for c in COMPONENTS},
            "time_s": (busy + launch) / hz,
        }  # fmt: skip
        entry_call = {
            "dram_bytes": per_op["dram_read_bytes"] + per_op["dram_write_bytes"],
            "energy_j": energy["total"],
            "macs": prep.macs,
        }
        return cls(
            prep.graph.name, arch, attention, fuse_elementwise, tuple(passes), prep, metrics, cols, timing, entry_call
        )

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

    def _by(self, column: str) -> dict[str, float]:
        names, codes = self.prep.codes(column)
        seconds = np.bincount(codes, weights=self.cols["time_s"], minlength=len(names))
        order = np.argsort(-seconds, kind="stable")
        return {names[i]: float(seconds[i]) for i in order}

    def by_step(self) -> dict[str, float]:
        """Seconds of each step-plan entry, in execution order."""
        t = self.timing
        if t.hosted:  # a host model's schedule decides the idle time
            s = t.schedule
            seconds = np.bincount(s.entry, weights=s.end_s - s.start_s, minlength=len(self.prep.plan))
        else:
            seconds = self.prep.per_entry(t.busy_s + t.idle_s) + t.entry_launch_s
        return {p.label: float(v) for p, v in zip(self.prep.plan, seconds.tolist())}

    def summary(self) -> dict[str, Any]:
        """Headline numbers: latency, cycles, seconds by op class, stage and step, traffic, energy."""
        c = self.cols
        busy = float((c["compute_cycles"] + c["stall_cycles"]).sum())
        latency = self.latency_s
        macs = int(c["macs"].sum())
        return {
            "workload": self.name,
            "arch": self.arch.name,
            "attention": self.attention,
            "fuse_elementwise": self.fuse_elementwise,
            "latency_s": latency,
            "cycles": float(c["cycles"].sum()),
            "compute_cycles": float(c["compute_cycles"].sum()),
            "stall_cycles": float(c["stall_cycles"].sum()),
            "launch_cycles": float(c["launch_cycles"].sum()),
            "macs": macs,
            "utilization": float(macs / (busy * self.arch.peak_macs_per_cycle)) if busy else 0.0,
            "core_occupancy": float((c["core_occupancy"] * c["time_s"]).sum() / max(latency, 1e-30)),
            "dram_bytes": float((c["dram_read_bytes"] + c["dram_write_bytes"]).sum()),
            "energy_j": float(c["energy_j"].sum()),
            "energy_by_component": {k: float(c[f"energy_{k}_j"].sum()) for k in COMPONENTS},
            "by_class": self._by("op_class"),
            "by_stage": self._by("stage"),
            "by_step": self.by_step(),
        }

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


def _overlap(per_op: dict[str, np.ndarray], idx: np.ndarray, metrics: np.ndarray, hidden: np.ndarray, n: int) -> None:
    """Kernels that run concurrently with their op's other kernels (a fused attention's softmax)
    cost only the time by which they exceed them; that exposed time counts as compute."""
    if not hidden.any():
        return
    busy = metrics["compute_cycles"] + metrics["stall_cycles"]
    overlapped = np.bincount(idx[hidden], weights=busy[hidden], minlength=n)
    parallel_c = np.bincount(idx[hidden], weights=metrics["compute_cycles"][hidden], minlength=n)
    parallel_s = np.bincount(idx[hidden], weights=metrics["stall_cycles"][hidden], minlength=n)
    rest = per_op["compute_cycles"] - parallel_c + per_op["stall_cycles"] - parallel_s
    per_op["compute_cycles"] = per_op["compute_cycles"] - parallel_c + np.maximum(0.0, overlapped - rest)
    per_op["stall_cycles"] = per_op["stall_cycles"] - parallel_s


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


def _actions(prep: Prepared, metrics: np.ndarray, per_op: dict[str, np.ndarray], arch: Arch) -> dict[str, np.ndarray]:
    """Action counts of one call of each op, named as `sim.energy.ACTIONS`: MACs issued by
    compute dtype (padded tiles included, skipped and gated zeros excluded), bytes read/written
    per memory level, vector element ops by class, launches."""
    n = len(prep.ops)
    out = {f"mac_{d}": np.where(mask, per_op["macs_issued"], 0.0) for d, mask in prep.compute_dtypes(arch.native_dtype).items()}
    out |= {f"{level}_{rw}_bytes": per_op[f"{level}_{rw}_bytes"] for level in ("sram", "l2", "dram") for rw in ("read", "write")}
    out["launches"] = prep.launches
    for vclass, rows in prep.vector_rows.items():
        out[f"vector_{vclass}_ops"] = np.bincount(prep.idx[rows], weights=metrics["vector_ops"][rows], minlength=n)
    return out


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
