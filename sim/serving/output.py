"""`serve`: run a serve experiment and write its tables and plots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.errors import InputError

from .config import load_serve_experiment
from .runner import PointResult, run_points

QUANTILES = np.linspace(0.0, 1.0, 201)


def flat_row(point: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    row = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in point.items()}
    for key, value in metrics.items():
        if key == "k_share":
            row.update({f"k{k}_share": share for k, share in value.items()})
        else:
            row[key] = value
    return row


def write_tables(results: list[tuple[dict[str, Any], PointResult]], out: Path) -> list[Path]:
    rows = [flat_row(point, r.metrics) for point, r in results]
    frame = pd.DataFrame(rows)
    quantiles = pd.DataFrame(
        {"quantile": QUANTILES}
        | {f"point{i}_latency_s": np.quantile(r.outcome.latency_s, QUANTILES) for i, (_, r) in enumerate(results)}
    )
    paths = [out / "points.csv", out / "summary.json", out / "latency_quantiles.csv"]
    frame.to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps([{"point": p, "metrics": r.metrics} for p, r in results], indent=1, default=str))
    quantiles.to_csv(paths[2], index=False)
    return paths


def serve(
    path: str | Path, out: str | Path | None = None, progress: Callable[[str], None] | None = print, plots: bool = True
) -> list[Path]:
    """Run every point of the serve experiment at `path`; write tables (and plots) to `out`."""
    data, points = load_serve_experiment(path)
    name = points[0][1].name
    out = Path(out) if out else Path("ttvsim-out") / name
    results = run_points(points, str(path), progress)
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = write_tables(results, out)
    except OSError as exc:
        raise InputError(f"cannot write results ({exc.strerror})", where=str(out)) from None
    if plots:
        from .plots import write_plots

        paths += write_plots(results, out, name)
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


def run_cli(args: Any, say: Callable[[str], None] = print) -> int:
    paths = serve(args.experiment, args.out, say, plots=not args.no_plots)
    say(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0
