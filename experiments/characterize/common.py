"""Shared pieces of the characterization studies: claims, reports, model options, plots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import sim
import workloads
from workloads.errors import InputError
from workloads.registry import ModelSpec, registry

PAPER = "Golden et al., ISPASS 2024 (arXiv:2312.14385)"
FAMILIES = ("diffusion-tti", "transformer-tti", "ttv")


@dataclass(frozen=True)
class Claim:
    """One published finding next to what ttvsim computes."""

    claim: str
    paper: str
    ttvsim: str
    agrees: bool | None  # None: not directly comparable
    note: str = ""


@dataclass
class Study:
    """A finished study: claims, data tables and figures, written as markdown + PNG."""

    name: str
    title: str
    arch: str
    claims: list[Claim] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # file stem -> matplotlib Figure
    notes: list[str] = field(default_factory=list)
    paper: str = PAPER

    def write(self, out_dir: str | Path) -> Path:
        """Write `<name>.md`, `<name>_<table>.csv` and `<name>_<figure>.png` into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lines = [f"# {self.title}", "", f"Arch preset: `{self.arch}`. Paper: {self.paper}.", ""]
        lines += ["| claim | paper | ttvsim | agrees |", "|---|---|---|---|"]
        for c in self.claims:
            verdict = {True: "yes", False: "**no**", None: "n/a"}[c.agrees]
            lines.append(f"| {c.claim} | {c.paper} | {c.ttvsim} | {verdict} |")
        why = [f"- {c.claim}: {c.note}" for c in self.claims if c.note]
        if why or self.notes:
            lines += ["", "## Notes", "", *why, *[f"- {n}" for n in self.notes]]
        for stem, fig in self.figures.items():
            png = out / f"{self.name}_{stem}.png"
            fig.savefig(png, dpi=110, bbox_inches="tight")
            lines += ["", f"![{stem}]({png.name})"]
        for stem, table in self.tables.items():
            table.to_csv(out / f"{self.name}_{stem}.csv", index=False)
            lines += ["", f"## {stem}", "", _markdown(table)]
        path = out / f"{self.name}.md"
        path.write_text("\n".join(lines) + "\n")
        return path


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(rows)


def pipelines(families: Iterable[str] = FAMILIES) -> list[ModelSpec]:
    """Whole-pipeline models (not components) of the given families, by name."""
    return [s for s in registry().values() if not s.component and s.family in set(families)]


def options(spec: ModelSpec, small: bool, **overrides: Any) -> dict[str, Any]:
    """Options for a study run: defaults, fewer steps/tokens when `small`, then `overrides`."""
    opts: dict[str, Any] = {}
    if small:
        for key, value in {"steps": 2, "sr_steps": 2, "gen_tokens": 8, "kv_buckets": 2}.items():
            if key in spec.options:
                opts[key] = value
    opts.update({k: v for k, v in overrides.items() if k in spec.options})
    return opts


def simulate(model: str, arch: sim.Arch, attention: str = "fused", **opts: Any) -> sim.Result:
    """Build `model` with `opts` and simulate it on `arch`."""
    return sim.simulate(workloads.build(model, **opts), arch, attention=attention)


def shares(series: pd.Series) -> dict[str, float]:
    """Values as fractions of their sum."""
    total = float(series.sum()) or 1.0
    return {str(k): float(v) / total for k, v in series.items()}


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def figure(width: float = 7.0, height: float = 4.0, nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """A new matplotlib figure and axes on the Agg backend (no display needed); with several
    rows or columns, an array of axes (`plt.subplots`)."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("the reproduction plots need matplotlib: pip install -e '.[plots]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)
    return fig, ax


def costs(result: sim.Result) -> dict[str, float]:
    """Latency, energy and DRAM traffic of a run."""
    o = result.ops
    return {
        "latency_s": result.latency_s,
        "energy_j": float(o["energy_j"].sum()),
        "dram_bytes": float((o["dram_read_bytes"] + o["dram_write_bytes"]).sum()),
    }


def class_frame(results: Mapping[str, sim.Result]) -> pd.DataFrame:
    """Model x op-class share of time."""
    rows = [{"model": name, **shares(r.by("op_class"))} for name, r in results.items()]
    return pd.DataFrame(rows).fillna(0.0)
