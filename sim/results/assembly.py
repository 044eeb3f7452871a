"""From kernel metrics to per-op timing, per-op columns and summaries, for many archs at once.

Every array here has a leading axis of archs (B): a design-space sweep assembles a batch of
archs that share one lowering in one pass, and a single `simulate` is the batch of one, so a
point's numbers are the same bits whichever way it ran. Kernel metrics come as (fields, B,
sources): one source per unique kernel (`Prepared.unique`), kernel i reading `source[i]`.

- `timing`: per op and call, compute and stall cycles (fused kernels' overlap applied), cores
  used, busy and idle seconds, launch cycles over repeats -- what every output needs.
- `assemble`: the per-op columns of `Result.ops` (every metric summed per op).
- `summaries`: `Result.summary()`; totals of actions (bytes, MACs, vector ops) are weighted
  sums over the sources (`Prepared.action_weights`), never per-op arrays, so a summary costs
  little more than evaluating the unique kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arch import Arch
from ..cost import METRIC_FIELDS, group_max, group_sum, weighted_sum
from ..energy import COMPONENTS, energy_by_action
from ..energy.table import EnergyTable
from .prepared import Prepared

if TYPE_CHECKING:
    from ..runtime import HostModel

_FIELD = {name: i for i, name in enumerate(METRIC_FIELDS)}
BYTES = tuple(f"{level}_{rw}_bytes" for level in ("sram", "l2", "dram") for rw in ("read", "write"))


def metric_values(metrics: np.ndarray) -> np.ndarray:
    """(B, sources) metric records as a contiguous (fields, B, sources) float array."""
    return np.ascontiguousarray(metrics.view(np.float64).reshape(*metrics.shape, -1).transpose(2, 0, 1))


def signature(arch: Arch) -> tuple:
    """What archs of one batch must share: native dtype, graph capture and energy table."""
    return arch.native_dtype, arch.host.graph_capture, id(arch.energy_table())


@dataclass(frozen=True)
class Hardware:
    """The per-arch numbers assembly reads, as (B, 1) columns, for archs of one `signature`."""

    archs: tuple[Arch, ...]
    hz: np.ndarray
    launch_s: np.ndarray
    peak: np.ndarray
    cores: np.ndarray
    capture: bool
    native: str
    table: EnergyTable

    @classmethod
    def of(cls, archs: Sequence[Arch]) -> Hardware:
        if len({signature(a) for a in archs}) != 1:
            raise ValueError("a batch needs archs of one native dtype, graph capture and energy table")

        def column(values: Any) -> np.ndarray:
            return np.array(list(values), dtype=np.float64).reshape(-1, 1)

        first = archs[0]
        return cls(
            tuple(archs), column(a.frequency_mhz * 1e6 for a in archs),
            column(a.host.launch_overhead_us * 1e-6 for a in archs),
            column(a.peak_macs_per_cycle for a in archs), column(a.cores for a in archs),
            first.host.graph_capture, first.native_dtype, first.energy_table(),
        )  # fmt: skip


@dataclass(frozen=True)
class Timing:
    """Per arch and op (B x ops): compute and stall cycles of one call, cores used, busy and
    idle seconds of one call, launch cycles over all repeats; an idle gap per plan entry."""

    compute: np.ndarray
    stall: np.ndarray
    cores: np.ndarray
    busy_s: np.ndarray
    idle_s: np.ndarray
    launch: np.ndarray
    entry_launch_s: np.ndarray
    schedule: Any = None  # a host model's schedule (a batch of one)

    def time_s(self, prep: Prepared, hz: np.ndarray) -> np.ndarray:
        """Seconds of each op over its repeats."""
        return ((self.compute * prep.repeat + self.stall * prep.repeat) + self.launch) / hz


def timing(prep: Prepared, values: np.ndarray, source: np.ndarray, hw: Hardware, host: HostModel | None = None) -> Timing:
    """Time the ops serially (launches, or one captured-graph replay per plan entry, and pass
    latencies between them) or as a runtime's `host` model schedules them (one arch only)."""
    n = len(prep.ops)
    c, s = values[_FIELD["compute_cycles"]], values[_FIELD["stall_cycles"]]
    compute, stall = group_sum(np.stack([c, s]), source, prep.idx, n)
    ops, hidden = prep.hidden_ops
    if len(ops):  # a fused kernel's hidden part costs only what exceeds its op's others
        overlapped, parallel_c, parallel_s = group_sum(np.stack([c + s, c, s]), source, hidden, len(ops))
        rest = compute[:, ops] - parallel_c + stall[:, ops] - parallel_s
        compute[:, ops] = compute[:, ops] - parallel_c + np.maximum(0.0, overlapped - rest)
        stall[:, ops] = stall[:, ops] - parallel_s
    cores = group_max(values[_FIELD["cores_used"]], source, prep.idx, n)
    hz = hw.hz
    busy_s = (compute + stall) / hz
    extra = prep.extra_latency_s
    if host is not None:
        schedule = host.schedule(prep.plan, busy_s[0], extra)
        launch = (np.bincount(schedule.op, weights=schedule.idle_s, minlength=n) * hz[0, 0])[None, :]
        idle = np.broadcast_to(extra, busy_s.shape)
        return Timing(compute, stall, cores, busy_s, idle, launch, np.zeros_like(hw.hz), schedule)
    idle = np.broadcast_to(extra if hw.capture else prep.launches * hw.launch_s + extra, busy_s.shape)
    entry_launch = hw.launch_s if hw.capture else np.zeros_like(hw.launch_s)
    launch = (idle * prep.repeat + entry_launch * prep.first_of_entry) * hz
    return Timing(compute, stall, cores, busy_s, idle, launch, entry_launch)


def _per_call_s(t: Timing, prep: Prepared, hz: np.ndarray) -> np.ndarray:
    """Seconds each op occupies per call (its launches spread over its repeats): leakage time."""
    return t.busy_s + t.launch / np.maximum(prep.repeat, 1) / hz


def assemble(prep: Prepared, values: np.ndarray, source: np.ndarray, hw: Hardware, t: Timing) -> dict[str, np.ndarray]:
    """The per-op columns of `Result.ops` (B x ops; totals over repeats), and `entry_*` per-call
    values that steps report."""
    n, idx, repeat = len(prep.ops), prep.idx, prep.repeat
    sums = group_sum(values, source, idx, n)
    per_op = {m: sums[i] for i, m in enumerate(METRIC_FIELDS)}
    actions = {f"mac_{d}": np.where(mask, per_op["macs_issued"], 0.0) for d, mask in prep.compute_dtypes(hw.native).items()}
    actions |= {name: per_op[name] for name in BYTES}
    actions["launches"] = prep.launches
    ops = values[_FIELD["vector_ops"]][None]
    for vclass, rows in prep.vector_rows.items():
        actions[f"vector_{vclass}_ops"] = group_sum(ops, source, np.where(rows, idx, -1), n)[0]
    energy = energy_by_action(actions, _per_call_s(t, prep, hw.hz), hw.table)
    compute, stall = t.compute * repeat, t.stall * repeat
    busy = compute + stall
    shape = busy.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(busy > 0, prep.macs * repeat / (busy * hw.peak), 0.0)
        per_call = np.where(repeat > 0, (busy + t.launch) / repeat, 0.0)
    return {
        "macs": np.broadcast_to(prep.macs * repeat, shape),
        "macs_issued": per_op["macs_issued"] * repeat,
        "cycles_per_call": per_call,
        "cycles": busy + t.launch,
        "compute_cycles": compute,
        "stall_cycles": stall,
        "launch_cycles": t.launch,
        "utilization": util,
        "cores_used": t.cores,
        "core_occupancy": t.cores / hw.cores,
        **{f"{level}_{rw}_bytes": per_op[f"{level}_{rw}_bytes"] * repeat
           for level in ("dram", "l2", "sram") for rw in ("read", "write")},
        "energy_j": energy["total"] * repeat,
        **{f"energy_{c}_j": np.broadcast_to(energy[c], shape) * repeat for c in COMPONENTS},
        "time_s": t.time_s(prep, hw.hz),
        "entry_dram_bytes": per_op["dram_read_bytes"] + per_op["dram_write_bytes"],
        "entry_energy_j": np.broadcast_to(energy["total"], shape),
        "entry_macs": np.broadcast_to(prep.macs, shape),
    }  # fmt: skip


def step_seconds(prep: Prepared, t: Timing) -> np.ndarray:
    """Seconds of each step-plan entry (B x entries)."""
    if t.schedule is not None:  # a host model's schedule decides the idle time
        s = t.schedule
        return np.bincount(s.entry, weights=s.end_s - s.start_s, minlength=len(prep.plan))[None, :]
    return prep.per_entry(t.busy_s + t.idle_s) + t.entry_launch_s


def summaries(
    prep: Prepared, values: np.ndarray, source: np.ndarray, hw: Hardware, t: Timing, heads: dict[str, Any]
) -> list[dict[str, Any]]:
    """`Result.summary()` of each arch of the batch; `heads` are the leading entries (workload,
    arch, attention, fuse_elementwise), a list for the `arch` name."""
    repeat, hz = prep.repeat, hw.hz
    compute, stall = t.compute * repeat, t.stall * repeat
    busy = compute + stall
    time_s = (busy + t.launch) / hz
    latency = time_s.sum(axis=1)
    busy_total = busy.sum(axis=1)
    macs = int((prep.macs * repeat).sum())
    energy = _energy(prep, values, source, hw, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(busy_total > 0, macs / (busy_total * hw.peak[:, 0]), 0.0)
    moved = weighted_sum(values[_FIELD["dram_read_bytes"]] + values[_FIELD["dram_write_bytes"]],
                         prep.action_weights(hw.native, source)["repeat"][None])[:, 0]  # fmt: skip
    totals = {
        "latency_s": latency,
        "cycles": (busy + t.launch).sum(axis=1),
        "compute_cycles": compute.sum(axis=1),
        "stall_cycles": stall.sum(axis=1),
        "launch_cycles": t.launch.sum(axis=1),
        "utilization": util,
        "core_occupancy": (t.cores / hw.cores * time_s).sum(axis=1) / np.maximum(latency, 1e-30),
        "dram_bytes": moved,
        "energy_j": energy["total"],
    }
    steps_s = step_seconds(prep, t)
    _check_finite(totals)
    rows = {k: v.tolist() for k, v in totals.items()}
    components = {k: energy[k].tolist() for k in COMPONENTS}
    by = {column: _ranked(prep, column, time_s) for column in ("op_class", "stage")}
    labels = [p.label for p in prep.plan]
    steps = steps_s.tolist()
    out = []
    for b in range(len(latency)):
        out.append({
            "workload": heads["workload"], "arch": heads["arch"][b], "attention": heads["attention"],
            "fuse_elementwise": heads["fuse_elementwise"],
            **{k: rows[k][b] for k in ("latency_s", "cycles", "compute_cycles", "stall_cycles", "launch_cycles")},
            "macs": macs,
            **{k: rows[k][b] for k in ("utilization", "core_occupancy", "dram_bytes", "energy_j")},
            "energy_by_component": {k: components[k][b] for k in COMPONENTS},
            "by_class": by["op_class"][b],
            "by_stage": by["stage"][b],
            "by_step": dict(zip(labels, steps[b])),
        })  # fmt: skip
    return out


def _check_finite(totals: dict[str, np.ndarray]) -> None:
    """A summary is finite, or the run fails (an internal error, never a silent NaN). Times and
    joules are non-negative sums, so finite totals (latency, energy, ...) mean finite parts."""
    bad = ~np.isfinite(np.stack(list(totals.values())))
    if bad.any():
        name = list(totals)[int(np.flatnonzero(bad.any(axis=1))[0])]
        raise FloatingPointError(f"summary value '{name}' is not finite (an internal error)")


def _energy(prep: Prepared, values: np.ndarray, source: np.ndarray, hw: Hardware, t: Timing) -> dict[str, np.ndarray]:
    """Joules per arch by component: action totals (weighted sums over the sources, repeats
    included) priced by the table, leakage over the whole run."""
    weights = prep.action_weights(hw.native, source)
    actions: dict[str, np.ndarray] = {}
    macs = weighted_sum(values[_FIELD["macs_issued"]], weights["dtypes"])
    actions |= {f"mac_{d}": macs[:, i] for i, d in enumerate(weights["dtype_names"])}
    moved = weighted_sum(values[[_FIELD[name] for name in BYTES]].reshape(-1, values.shape[2]), weights["repeat"][None])
    actions |= {name: row for name, row in zip(BYTES, moved[:, 0].reshape(len(BYTES), -1))}
    actions["launches"] = np.full(values.shape[1], float((prep.launches * prep.repeat).sum()))
    ops = weighted_sum(values[_FIELD["vector_ops"]], weights["classes"])
    actions |= {f"vector_{c}_ops": ops[:, i] for i, c in enumerate(weights["class_names"])}
    leak_s = (_per_call_s(t, prep, hw.hz) * prep.repeat).sum(axis=1)
    return energy_by_action(actions, leak_s, hw.table)


def _ranked(prep: Prepared, column: str, time_s: np.ndarray) -> list[dict[str, float]]:
    """Per arch, seconds by the values of an op column, largest first (ties in first-seen order)."""
    names, codes = prep.codes(column)
    seconds = group_sum(time_s[None], np.arange(len(codes)), codes, len(names))[0]
    order = np.argsort(-seconds, axis=1, kind="stable")
    values = np.take_along_axis(seconds, order, axis=1).tolist()
    keys = np.array(names, dtype=object)[order].tolist()
    return [dict(zip(k, v)) for k, v in zip(keys, values)]


__all__ = ["BYTES", "Hardware", "Timing", "assemble", "metric_values", "signature", "step_seconds", "summaries", "timing"]
