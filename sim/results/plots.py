"""Plots of sweeps and runs (matplotlib, Agg backend: no display needed; extra `ttvsim[plots]`).

- `pareto_plot(frame, x, y, path)`: every design point of a sweep on two metrics, the 2-D Pareto
  front of the feasible points as a step line, infeasible points greyed.
- `breakdown_plot(frame, path)`: stacked time by op class across design points.
- `roofline_plot(result, path)`: every op of one run on the arch's roofline (arithmetic intensity
  over DRAM traffic vs achieved FLOP/s), sized by its share of time.
- `timeline_plot(result, path)`: the step plan of one run as a Gantt chart by stage.

Each returns the path written; `ttvsim plot ...` calls them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.errors import InputError

LABELS = {
    "latency_s": "latency (s)", "energy_j": "energy (J)", "edp_js": "energy-delay product (J·s)",
    "area_mm2": "area (mm²)", "power_w": "average power (W)", "sram_total_mb": "on-chip SRAM (MiB)",
    "throughput_per_w": "throughput per watt (runs/s/W)", "throughput_per_mm2": "throughput per area (runs/s/mm²)",
    "peak_tops": "peak (TOP/s)", "dram_bytes": "DRAM traffic (B)", "utilization": "array utilization",
}  # fmt: skip
CLASS_ORDER = ("conv", "linear", "attention", "norm", "activation", "elementwise", "softmax", "resample",
               "embedding", "data_movement")  # fmt: skip


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'ttvsim[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label(column: str) -> str:
    """An axis label with units for a metric column."""
    return LABELS.get(column, column)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130, bbox_inches="tight")
    except OSError as exc:
        raise InputError(f"cannot write the plot ({exc.strerror or exc})", where=str(path)) from None
    finally:
        _pyplot().close(fig)
    return path


def _need(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    from difflib import get_close_matches

    for c in columns:
        if c not in frame:
            close = get_close_matches(c, [str(x) for x in frame.columns], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(f"{what}: no column '{c}'{hint}")


def pareto_plot(frame: pd.DataFrame, x: str, y: str, path: str | Path, *, color: str | None = None,
                title: str = "", log: bool = True) -> Path:  # fmt: skip
    """Design points on (x, y), both minimized unless a `max` metric; the feasible front highlighted."""
    from ..experiment.search import MAXIMIZED, pareto_front

    _need(frame, [x, y] + ([color] if color else []), "pareto plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    feasible = frame["feasible"].to_numpy(bool) if "feasible" in frame else np.ones(len(frame), bool)
    data = frame[feasible]
    if (~feasible).any():
        ax.scatter(frame.loc[~feasible, x], frame.loc[~feasible, y], s=12, c="0.8", label="infeasible (constraints)")
    groups = data.groupby(color, sort=True) if color else [("design points", data)]
    for name, part in groups:
        ax.scatter(part[x], part[y], s=18, alpha=0.75, label=f"{color} = {name}" if color else name)
    if len(data):
        sign = np.array([-1.0 if c in MAXIMIZED else 1.0 for c in (x, y)])
        front = data[pareto_front(data[[x, y]].to_numpy(float) * sign)].sort_values(x)
        ax.step(front[x], front[y], where="post", color="k", lw=1.2, label=f"Pareto front ({len(front)} points)")
        ax.scatter(front[x], front[y], s=40, facecolors="none", edgecolors="k")
    if log:
        _log_axes(ax)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title or f"{label(y).split(' (')[0]} vs {label(x).split(' (')[0]}: {len(frame)} design points")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _log_axes(ax: Any) -> None:
    """Log scales with plain-number tick labels (0.2, 20) instead of 2x10^-1."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        scale("log")
        formatter = ScalarFormatter()
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)
        axis.set_minor_locator(LogLocator(subs=(2, 5)))
        axis.set_minor_formatter(formatter)


def _label_of(row: pd.Series, keys: Sequence[str]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={_short(row[k])}" for k in keys)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 14 else text[:13] + "…"


def breakdown_plot(frame: pd.DataFrame, path: str | Path, *, keys: Sequence[str] = (), top: int = 12,
                   share: bool = False, title: str = "") -> Path:  # fmt: skip
    """Stacked seconds (or shares) by op class for up to `top` design points (fastest first)."""
    _need(frame, ["by_class", "latency_s"], "breakdown plot")
    rows = frame.sort_values("latency_s").head(top)
    by = pd.DataFrame(
        [json.loads(v) if isinstance(v, str) else dict(v) for v in rows["by_class"]], index=rows.index
    ).fillna(0.0)
    order = [c for c in CLASS_ORDER if c in by] + sorted(c for c in by if c not in CLASS_ORDER)
    by = by[order]
    if share:
        by = by.div(by.sum(axis=1), axis=0) * 100
    keys = (
        list(keys)
        or [k for k in frame.columns if "." in k and k.split(".")[0] in ("arch", "workload", "simulation", "design")][
            :3
        ]
    )
    labels = [_label_of(r, keys) if keys else str(i) for i, r in rows.iterrows()]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.5, 0.85 * len(rows) + 2.5), 5.2))
    bottom = np.zeros(len(by))
    cmap = plt.get_cmap("tab10")
    for i, c in enumerate(order):
        ax.bar(range(len(by)), by[c], bottom=bottom, label=c, color=cmap(i % 10))
        bottom += by[c].to_numpy()
    ax.set_xticks(range(len(by)), labels, fontsize=7, rotation=35, ha="right")
    ax.set_ylabel("share of time (%)" if share else "time (s)")
    ax.set_xlabel("design point (fastest first)")
    ax.set_title(title or f"Time by op class, {len(rows)} fastest of {len(frame)} design points")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left", title="op class")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def roofline_plot(result: Any, path: str | Path, *, title: str = "") -> Path:
    """Each op of `result` at (FLOPs per DRAM byte, achieved FLOP/s), under the arch's roofs."""
    ops = result.ops
    arch = result.arch
    busy_s = (ops["compute_cycles"] + ops["stall_cycles"]) / (arch.frequency_mhz * 1e6)
    dram = ops["dram_read_bytes"] + ops["dram_write_bytes"]
    flops = 2.0 * ops["macs"]
    keep = (flops > 0) & (busy_s > 0) & (dram > 0)
    if not keep.any():
        raise InputError("roofline: the run has no GEMM op with DRAM traffic")
    ai, perf = flops[keep] / dram[keep], flops[keep] / busy_s[keep]
    weight = ops.loc[keep, "time_s"] / max(float(ops["time_s"].sum()), 1e-30)
    peak = 2.0 * arch.peak_macs_per_cycle * arch.frequency_mhz * 1e6
    bw = arch.dram.bandwidth_gbs * 1e9
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    span = np.logspace(np.log10(max(ai.min() / 2, 1e-3)), np.log10(ai.max() * 2), 200)
    ax.plot(
        span,
        np.minimum(peak, bw * span),
        "k-",
        lw=1.5,
        label=f"roof: {peak / 1e12:.1f} TFLOP/s, {arch.dram.bandwidth_gbs:g} GB/s",
    )
    ax.axvline(peak / bw, color="k", ls=":", lw=0.8)
    for dtype, rate in sorted(arch.array.throughput.items()):
        if rate > 1:  # faster compute types have their own, higher compute roof
            ax.plot(span, np.minimum(peak * rate, bw * span), "k--", lw=1.0,
                    label=f"{dtype} roof: {peak * rate / 1e12:.1f} TFLOP/s")  # fmt: skip
    classes = ops.loc[keep, "op_class"]
    for i, c in enumerate(sorted(classes.unique())):
        sel = classes == c
        ax.scatter(
            ai[sel], perf[sel], s=10 + 600 * weight[sel], alpha=0.6, label=c, color=plt.get_cmap("tab10")(i % 10)
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per DRAM byte)")
    ax.set_ylabel("achieved throughput (FLOP/s)")
    ax.set_title(title or f"Roofline: {result.name} on {arch.name} (marker area ~ share of time)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def timeline_plot(result: Any, path: str | Path, *, title: str = "") -> Path:
    """The step plan as a Gantt chart: one row per stage, one bar per step (loop steps alternate shades)."""
    steps = result.steps
    if steps.empty:
        raise InputError("timeline: the run has no steps")
    stages = list(dict.fromkeys(steps["stage"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.6 * len(stages)))
    cmap = plt.get_cmap("tab10")
    unit, scale = ("ms", 1e3) if steps["end_s"].max() < 2 else ("s", 1.0)
    for row, stage in enumerate(stages):
        part = steps[steps["stage"] == stage]
        for k, (_, s) in enumerate(part.iterrows()):
            shade = 1.0 if k % 2 == 0 else 0.6
            ax.barh(row, (s["end_s"] - s["start_s"]) * scale, left=s["start_s"] * scale, height=0.6,
                    color=cmap(row % 10), alpha=shade, edgecolor="white", lw=0.3)  # fmt: skip
        total = part["time_s"].sum() * scale
        ax.text(part["end_s"].max() * scale, row, f" {total:.3g} {unit} ({len(part)} step{'s' * (len(part) > 1)})",
                va="center", fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(stages)), stages)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit})")
    ax.set_xlim(0, steps["end_s"].max() * scale * 1.25)
    ax.set_title(title or f"Step timeline: {result.name} on {result.arch.name}")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


__all__ = ["breakdown_plot", "label", "pareto_plot", "roofline_plot", "timeline_plot"]
