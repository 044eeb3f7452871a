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

from workloads.ir import Op, OpGraph, PlanStep

from ..arch import VECTOR_CLASSES, Arch
from ..cost import METRIC_FIELDS
from ..energy import COMPONENTS, energy_by_action
from ..lower import Kernels, Unit
from ..schedule import Schedule, serial

if TYPE_CHECKING:
    from ..runtime import HostModel


@dataclass(frozen=True)
class Result:
    """Outcome of `sim.simulate`: `ops` (one row per op, in execution order), `steps` (one row
    per step-plan entry: each stage's run-once part and each loop step), and metadata."""

    name: str
    arch: Arch
    attention: str
    ops: pd.DataFrame
    fuse_elementwise: bool = False
    kernel_data: tuple = field(default=(), repr=False, compare=False)  # (ops, kernels, metrics, repeat)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    passes: tuple = ()
    schedule: Schedule | None = field(default=None, repr=False, compare=False)

    @classmethod
    def assemble(
        cls,
        graph: OpGraph,
        kernels: Kernels,
        metrics: np.ndarray,
        arch: Arch,
        attention: str,
        fuse_elementwise: bool = False,
        passes: Sequence[Any] = (),
        host: HostModel | None = None,
    ) -> Result:
        """Sum kernel metrics per op, scale by repeats, schedule the step plan serially (or as
        a runtime's `host` model schedules it, `sim.runtime.host`)."""
        ops = graph.ops()
        n = len(ops)
        idx = kernels.cols["op"]
        per_op = {m: np.bincount(idx, weights=metrics[m], minlength=n) for m in METRIC_FIELDS}
        _overlap(per_op, idx, metrics, kernels.cols["overlap"].astype(bool), n)
        per_op["cores_used"] = np.zeros(n)
        np.maximum.at(per_op["cores_used"], idx, metrics["cores_used"])
        repeat = np.array([op.repeat for op in ops], dtype=np.float64)
        # true work: padded tiles (fused attention) cost cycles but are not MACs
        per_op["macs"] = np.array([op.macs for op in ops], dtype=np.float64)
        hz = arch.frequency_mhz * 1e6
        busy_call = per_op["compute_cycles"] + per_op["stall_cycles"]
        launches = np.bincount(idx, weights=kernels.cols["launches"], minlength=n)
        per_launch_s = arch.host.launch_overhead_us * 1e-6
        plan = graph.step_plan()
        # device idle per call: host launches, plus latencies passes attach (a cache lookup)
        extra = np.array([op.annotations.get("extra_latency_s", 0.0) for op in ops], dtype=np.float64)
        if host is not None:  # a runtime model's host costs
            schedule = host.schedule(plan, busy_call / hz, extra)
        elif arch.host.graph_capture:  # one replay of the captured graph per plan entry
            schedule = serial(plan, busy_call / hz, extra, per_launch_s)
        else:
            schedule = serial(plan, busy_call / hz, launches * per_launch_s + extra)
        launch = np.bincount(schedule.op, weights=schedule.idle_s, minlength=n) * hz
        compute = per_op["compute_cycles"] * repeat
        stall = per_op["stall_cycles"] * repeat
        busy = compute + stall
        cycles = busy + launch
        time_s = cycles / hz
        start, end = schedule.op_span(n)
        actions = _actions(ops, kernels, metrics, per_op, launches, arch)
        energy = energy_by_action(actions, (busy_call + launch / np.maximum(repeat, 1)) / hz, arch.energy_table())
        energy_call = energy["total"]
        first = _first_gemm(kernels, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            util = np.where(busy > 0, per_op["macs"] * repeat / (busy * arch.peak_macs_per_cycle), 0.0)
            per_call = np.where(repeat > 0, (busy + launch) / repeat, 0.0)
        frame = pd.DataFrame(
            {
                "op": [op.name for op in ops],
                "kind": [op.kind.value for op in ops],
                "op_class": [op.op_class for op in ops],
                "stage": [op.stage for op in ops],
                "block": [op.block for op in ops],
                "attn_role": [op.attrs.get("role", "") for op in ops],
                "attn_axis": [op.attrs.get("axis", "") for op in ops],
                "repeat": repeat.astype(np.int64),
                "kernels": np.bincount(idx, minlength=n),
                "M": first["m"],
                "K": first["k"],
                "N": first["n"],
                "gemm_count": first["count"],
                "macs": (per_op["macs"] * repeat).astype(np.int64),
                "macs_issued": per_op["macs_issued"] * repeat,
                "cycles_per_call": per_call,
                "cycles": cycles,
                "compute_cycles": compute,
                "stall_cycles": stall,
                "launch_cycles": launch,
                "utilization": util,
                "cores_used": per_op["cores_used"],
                "core_occupancy": per_op["cores_used"] / arch.cores,
                **{f"{level}_{rw}_bytes": per_op[f"{level}_{rw}_bytes"] * repeat
                   for level in ("dram", "l2", "sram") for rw in ("read", "write")},
                "energy_j": energy_call * repeat,
                **{f"energy_{c}_j": energy[c] * repeat for c in COMPONENTS},
                "time_s": time_s,
                "start_s": start,
                "end_s": end,
            }
        )
        dram_call = per_op["dram_read_bytes"] + per_op["dram_write_bytes"]
        steps = _steps(plan, schedule, {"dram_bytes": dram_call, "energy_j": energy_call, "macs": per_op["macs"]})
        return cls(
            graph.name, arch, attention, frame, fuse_elementwise, (ops, kernels, metrics, repeat), steps,
            tuple(passes), schedule,
        )  # fmt: skip

    @cached_property
    def kernels(self) -> pd.DataFrame:
        """One row per kernel: op, unit, GEMM dims, metrics of one call, repeat (built on first
        use, since sweeps only need the summary)."""
        return _kernel_table(*self.kernel_data) if self.kernel_data else pd.DataFrame()

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
        return float(self.ops["time_s"].sum())

    def by(self, column: str) -> pd.Series:
        """Seconds by the values of `column` (e.g. op_class, stage, attn_axis), largest first."""
        return self.ops.groupby(column, sort=False)["time_s"].sum().sort_values(ascending=False)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: latency, cycles, seconds by op class and by stage, traffic, energy."""
        o = self.ops
        busy = float((o["compute_cycles"] + o["stall_cycles"]).sum())
        return {
            "workload": self.name,
            "arch": self.arch.name,
            "attention": self.attention,
            "fuse_elementwise": self.fuse_elementwise,
            "latency_s": self.latency_s,
            "cycles": float(o["cycles"].sum()),
            "compute_cycles": float(o["compute_cycles"].sum()),
            "stall_cycles": float(o["stall_cycles"].sum()),
            "launch_cycles": float(o["launch_cycles"].sum()),
            "macs": int(o["macs"].sum()),
            "utilization": float(o["macs"].sum() / (busy * self.arch.peak_macs_per_cycle)) if busy else 0.0,
            "core_occupancy": float((o["core_occupancy"] * o["time_s"]).sum() / max(self.latency_s, 1e-30)),
            "dram_bytes": float((o["dram_read_bytes"] + o["dram_write_bytes"]).sum()),
            "energy_j": float(o["energy_j"].sum()),
            "energy_by_component": {c: float(o[f"energy_{c}_j"].sum()) for c in COMPONENTS},
            "by_class": {k: float(v) for k, v in self.by("op_class").items()},
            "by_stage": {k: float(v) for k, v in self.by("stage").items()},
            "by_step": {k: float(v) for k, v in zip(self.steps["step"], self.steps["time_s"])},
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


def _actions(
    ops: Sequence[Op],
    kernels: Kernels,
    metrics: np.ndarray,
    per_op: dict[str, np.ndarray],
    launches: np.ndarray,
    arch: Arch,
) -> dict[str, np.ndarray]:
    """Action counts of one call of each op, named as `sim.energy.ACTIONS`: MACs by compute
    dtype, bytes read/written per memory level, vector element ops by class, launches."""
    n = len(ops)
    dtypes = [op.precision.compute if op.precision else arch.native_dtype for op in ops]
    # MACs the arrays issue: padded tiles included, skipped and gated zeros excluded
    out = {f"mac_{d}": np.where([x == d for x in dtypes], per_op["macs_issued"], 0.0) for d in set(dtypes)}
    out |= {f"{level}_{rw}_bytes": per_op[f"{level}_{rw}_bytes"] for level in ("sram", "l2", "dram") for rw in ("read", "write")}
    out["launches"] = launches
    vector = kernels.cols["unit"] == Unit.VECTOR
    for j, vclass in enumerate(VECTOR_CLASSES):
        rows = vector & (kernels.cols["vclass"] == j)
        if rows.any():
            out[f"vector_{vclass}_ops"] = np.bincount(kernels.cols["op"][rows], weights=metrics["vector_ops"][rows], minlength=n)
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


def _first_gemm(kernels: Kernels, n: int) -> dict[str, np.ndarray]:
    """Dims of each op's first GEMM kernel (zeros for ops without one)."""
    out = {c: np.zeros(n, dtype=np.int64) for c in ("m", "k", "n", "count")}
    is_gemm = kernels.cols["unit"] == Unit.GEMM
    ops = kernels.cols["op"][is_gemm]
    _, first = np.unique(ops, return_index=True)
    rows = np.flatnonzero(is_gemm)[first]
    for c, column in out.items():
        column[kernels.cols["op"][rows]] = kernels.cols[c][rows]
    return out
