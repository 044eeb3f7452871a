"""Benchmark: design points per minute through the sweep runner, serial and with `--jobs`.

An arch-only grid over the full SD 1.5 pipeline (text encoder + 50 CFG steps + VAE decode) on
`os128`: DRAM bandwidth x ifmap SRAM x clock x vector lanes (x array rows for larger sizes).
Each size runs with `--jobs 1` and `--jobs N` into fresh stores; rows must be identical.

    python experiments/benchmark_sweep.py [--points 20000] [--jobs 2]

A measurement, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
AXES = {
    "arch.dram.bandwidth_gbs": [64 * i for i in range(1, 65)],
    "arch.sram.ifmap_kb": [256, 512, 1024, 2048, 4096],
    "arch.frequency_mhz": [500 + 50 * i for i in range(25)],
    "arch.vector.lanes": [64, 128, 256, 512],
    "arch.array.rows": [64, 128],
}


def grid(points: int) -> dict[str, list]:
    """The first axes' values, trimmed so the grid has about `points` points."""
    out: dict[str, list] = {}
    for key, values in AXES.items():
        size = len(list(itertools.product(*out.values()))) if out else 1
        need = max(1, -(-points // size))
        out[key] = values[: min(len(values), need)]
        if size * len(out[key]) >= points:
            break
    return out


def run(points: int, jobs: int, folder: Path, dask: bool = False) -> tuple[float, float, int, str]:
    """(CLI wall seconds, sweep-runner seconds, points, sweep.csv text) of one fresh sweep in a
    new process; the runner's time is the one `ttvsim run` prints (validation, store, every
    point, rows read back), the wall time adds start-up and writing sweep.csv."""
    exp = {
        "name": f"bench_{points}_{jobs}",
        "workload": {"model": "sd15", "options": {"resolution": 512, "steps": 50, "cfg": True}},
        "arch": "os128",
        "sweep": grid(points),
    }
    path = folder / f"{exp['name']}.yaml"
    path.write_text(yaml.safe_dump(exp))
    out = folder / exp["name"]
    t0 = time.perf_counter()
    spread = ["--dask", "local", "--workers", str(jobs)] if dask else ["--jobs", str(jobs)]
    done = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--out", str(out), "--fresh", *spread],
                          check=True, capture_output=True, text=True, cwd=HERE.parent)  # fmt: skip
    seconds = time.perf_counter() - t0
    runner = float(re.search(r"sweep runner: .* in ([0-9.]+) s", done.stdout).group(1))
    csv = (out / "sweep.csv").read_text()
    return seconds, runner, csv.count("\n") - 1, csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the median is reported")
    parser.add_argument("--dask", action="store_true", help="also run on a local Dask cluster of --jobs workers")
    parser.add_argument("--out", default=str(HERE / "out" / "benchmark_sweep.md"))
    args = parser.parse_args()
    settings = {"1": (1, False), str(args.jobs): (args.jobs, False)}
    if args.dask:
        settings[f"dask local, {args.jobs} workers"] = (args.jobs, True)
    results: dict[str, list[tuple[float, float, int, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so a noisy moment hits every setting
            for label, (jobs, dask) in settings.items():
                results.setdefault(label, []).append(run(args.points, jobs, Path(tmp), dask))
    n = results["1"][0][2]
    wall = {j: statistics.median(r[0] for r in rs) for j, rs in results.items()}
    runner = {j: statistics.median(r[1] for r in rs) for j, rs in results.items()}
    identical = all(r[3] == results["1"][0][3] for rs in results.values() for r in rs)
    lines = [
        f"# ttvsim sweep throughput: {n} arch points of the full SD 1.5 pipeline on os128",
        "",
        f"Machine: {os.cpu_count()} cores. Command: `python experiments/benchmark_sweep.py --points {args.points} "
        f"--jobs {args.jobs}` (median of {args.repeats} runs each).",
        "",
        "| jobs | sweep runner s | points per minute (runner) | wall s (new process: start-up, runner, sweep.csv) | points per minute (wall) |",
        "|---|---|---|---|---|",
        *(f"| {j} | {runner[j]:.2f} | {60 * n / runner[j]:,.0f} | {wall[j]:.2f} | {60 * n / wall[j]:,.0f} |" for j in results),
        "",
        f"Speed-up with {args.jobs} jobs: {runner['1'] / runner[str(args.jobs)]:.2f}x (runner), "
        f"{wall['1'] / wall[str(args.jobs)]:.2f}x (wall). "
        f"Rows identical in every run: {identical}.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
