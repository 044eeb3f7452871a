"""Human-readable text for the CLI: run summaries, model descriptions, model and preset lists."""

from __future__ import annotations

import pandas as pd

from workloads.ir import OpGraph, OpKind
from workloads.registry import registry

from ..arch import load_arch, presets
from ..area import area
from .result import Result


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _seconds(value: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if value >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value / 1e-9:.4g} ns"


def _share_table(series: pd.Series, label: str) -> str:
    total = series.sum() or 1.0
    lines = [f"  {label:<16} {'time':>11} {'share':>7}"]
    for name, seconds in series.items():
        lines.append(f"  {name or '-':<16} {_seconds(seconds):>11} {100 * seconds / total:6.1f}%")
    return "\n".join(lines)


def summary_text(result: Result, title: str = "") -> str:
    """Latency of the whole pipeline, per stage, and the share of time by op class."""
    s = result.summary()
    head = (
        f"{title + ': ' if title else ''}{s['workload']} on {s['arch']} (attention {s['attention']})\n"
        f"  latency {_seconds(s['latency_s'])}  |  {s['cycles']:.4g} cycles "
        f"({100 * s['stall_cycles'] / max(s['cycles'], 1):.1f}% stalls)  |  array utilization "
        f"{100 * s['utilization']:.1f}%  |  DRAM {_si(s['dram_bytes'], 'B')}  |  energy {_si(s['energy_j'], 'J')}"
    )
    parts = [head, _share_table(result.by("stage"), "stage"), _share_table(result.by("op_class"), "op class")]
    if result.arch.cores > 1:
        util = result.core_utilization()
        parts.append(
            f"  per-core GEMM busy time: min {100 * util.min():.1f}%, mean {100 * util.mean():.1f}%, "
            f"max {100 * util.max():.1f}% over {len(util)} cores (cores.csv)"
        )
    return "\n\n".join(parts)


def attention_profile(graph: OpGraph) -> pd.DataFrame:
    """Attention ops grouped by stage, role, axis and shape: count, calls and FLOP share."""
    rows = [
        {
            "stage": op.stage,
            "role": op.attrs["role"],
            "axis": op.attrs["axis"],
            "lq": op.attrs["lq"],
            "lk": op.attrs["lk"],
            "heads": op.attrs["heads"],
            "head_dim": op.attrs["head_dim"],
            "sequences": op.attrs["batch"],
            "layers": 1,
            "flops": op.flops * op.repeat,
        }
        for op in graph
        if op.kind is OpKind.ATTENTION
    ]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    keys = ["stage", "role", "axis", "lq", "lk", "heads", "head_dim", "sequences"]
    df = df.groupby(keys, sort=False, as_index=False)[["layers", "flops"]].sum()
    df["flop_share"] = df["flops"] / df["flops"].sum()
    return df


def describe_text(graph: OpGraph) -> str:
    """Params, FLOPs, op counts, and the attention sequence-length profile of a model."""
    frame = graph.to_frame()
    lines = [
        (f"{graph.name}: {graph.total_params():,} parameters, {_si(graph.total_flops(), 'FLOP')} "
        f"per invocation ({len(graph)} ops)"),
        "",
        "  stage            params          FLOPs (repeats included)",
    ]
    stages = frame.assign(total=frame["flops"] * frame["repeat"]).groupby("stage", sort=False)
    for stage, g in stages:
        lines.append(f"  {stage:<16} {int(g['params'].sum()):>15,} {_si(g['total'].sum(), 'FLOP'):>12}")
    lines += ["", "  op kind          count"]
    lines += [f"  {k:<16} {v:>5}" for k, v in frame["kind"].value_counts().items()]
    profile = attention_profile(graph)
    if not profile.empty:
        lines += ["", "  attention profile (sequence lengths; FLOP share of all attention)"]
        lines.append(profile.drop(columns="flops").to_string(index=False, formatters={"flop_share": "{:.1%}".format}))
        by_role = profile.groupby(["role", "axis"])["flops"].sum() / profile["flops"].sum()
        lines += ["", "  attention FLOPs by role: " + ", ".join(f"{r}/{a} {v:.1%}" for (r, a), v in by_role.items())]
    return "\n".join(lines)


def models_text() -> str:
    """Every registered model with its family, options and defaults."""
    lines = []
    for name, spec in registry().items():
        opts = ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
        lines.append(f"{name:<28} {spec.family:<16} {spec.summary}\n{'':<28} options: {opts}")
    return "\n".join(lines)


def archs_text() -> str:
    """Every hardware preset with its description and source."""
    lines = []
    for name in sorted(presets()):
        arch = load_arch(name)
        a = area(arch)
        lines.append(f"{name:<10} {arch.description}\n{'':<10} source: {arch.source}\n{'':<10} "
                     f"modelled area {a.total_mm2:.0f} mm² at {a.node_nm:g} nm (arrays {a.arrays_mm2:.0f}, "
                     f"SRAM {a.sram_mm2 + a.global_buffer_mm2:.0f}, vector {a.vector_mm2:.0f}, other {a.other_mm2:.0f}; "
                     "sim/area, no DRAM PHYs)")  # fmt: skip
    return "\n".join(lines)


def sweep_text(frame: pd.DataFrame, keys: list[str], top: int = 10) -> str:
    """The fastest design points of a sweep, with their swept settings."""
    cols = [k for k in keys if k in frame] + ["latency_s", "utilization", "dram_bytes", "energy_j"]
    bad = frame["infeasible"].notna() if "infeasible" in frame else pd.Series(False, index=frame.index)
    best = frame[~bad].sort_values("latency_s").head(top)[cols]
    text = f"\n{len(frame)} design points; fastest {len(best)}:\n" + best.to_string(index=False)
    if bad.any():
        text += (f"\n{int(bad.sum())} points are infeasible (column `infeasible` says why; e.g. "
                 f"{frame.loc[bad, 'infeasible'].iloc[0]})")  # fmt: skip
    return text
