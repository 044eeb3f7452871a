"""`serve`: run a serve experiment and write its tables and plots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from workloads.errors import InputError

from .config import load_serve_experiment
from .sweep import QUANTILES, quantiles, run_sweep

QUANTILE_COLUMNS = ("latency_quantiles", "baseline_latency_quantiles")


def write_tables(frame: pd.DataFrame, swept: list[str], out: Path) -> list[Path]:
    """points.csv (one row per point), summary.json (each point's settings and metrics) and
    latency_quantiles.csv (a column of latency quantiles per point)."""
    table = frame.drop(columns=[c for c in QUANTILE_COLUMNS if c in frame])
    columns = pd.DataFrame(
        {"quantile": QUANTILES} | {f"point{i}_latency_s": q for i, q in enumerate(quantiles(frame)) if q is not None}
    )
    records = [
        {
            "point": {k: row[k] for k in swept},
            "metrics": {k: v for k, v in row.items() if k not in swept and pd.notna(v)},
        }
        for row in table.to_dict("records")
    ]
    paths = [out / "points.csv", out / "summary.json", out / "latency_quantiles.csv"]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(records, indent=1, default=str))
    columns.to_csv(paths[2], index=False)
    return paths


def serve(
    path: str | Path,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = print,
    plots: bool = True,
    fresh: bool = False,
) -> list[Path]:
    """Run every point of the serve experiment at `path` not yet in `out`/sweep.sqlite; write
    tables (and plots) of all its points to `out`."""
    _, points = load_serve_experiment(path)
    name = points[0][1].name
    out = Path(out) if out else Path("ttvsim-out") / name
    frame = run_sweep(points, out / "sweep.sqlite", str(path), fresh, progress)
    swept = list(points[0][0])
    try:
        paths = write_tables(frame, swept, out)
    except OSError as exc:
        raise InputError(f"cannot write results ({exc.strerror})", where=str(out)) from None
    if plots:
        from .plots import write_plots

        paths += write_plots(frame, swept, out, name)
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.serving EXPERIMENT.yaml [--out DIR]` (the same as `ttvsim serve`)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="ttvsim serve", description="simulate serving with an approximate latent cache"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_cli(args)
    except InputError as exc:
        print(f"ttvsim: error: {exc}", file=sys.stderr)
        return 2


def add_arguments(parser: Any) -> None:
    parser.add_argument("experiment", help="serve experiment YAML (e.g. experiments/serving/sdxl_a100_cache.yaml)")
    parser.add_argument("--out", help="output folder (default: ttvsim-out/<experiment name>)")
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    parser.add_argument("--fresh", action="store_true", help="start a new sweep store (default: reuse stored points)")


def run_cli(args: Any, say: Callable[[str], None] = print) -> int:
    paths = serve(args.experiment, args.out, say, plots=not args.no_plots, fresh=args.fresh)
    say(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
