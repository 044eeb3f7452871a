"""Benchmark: how fast ttvsim simulates a full Stable Diffusion 1.5 pipeline.

Measures, per preset: graph build time, warm `sim.simulate` time (median of repeats, same
process), and cold time in a new process (imports + build + simulate, Numba cache on disk;
and once with an empty Numba cache, i.e. compiling). Also times `ttvsim run` of the
quickstart experiment end to end, and reports SCALE-Sim's own time on the cross-check
layers if `experiments/data/scalesim_reference.csv` recorded it.

    python experiments/benchmark.py [--repeats 20] [--out experiments/out/benchmark.md]

This is a measurement, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import sim
import workloads

HERE = Path(__file__).resolve().parent
PIPELINE = {"resolution": 512, "batch": 1, "steps": 50, "cfg": True}

_COLD = """
import time; t0 = time.perf_counter()
import sim, workloads
g = workloads.build("sd15", resolution=512, batch=1, steps=50, cfg=True)
r = sim.simulate(g, sim.load_arch({arch!r}))
r.summary()
print(time.perf_counter() - t0)
"""


def _wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=HERE.parent)
    return time.perf_counter() - t0


def warm(arch_name: str, repeats: int) -> dict[str, float]:
    """Median build and simulate times in this process (after one warm-up)."""
    arch = sim.load_arch(arch_name)
    graph = workloads.build("sd15", **PIPELINE)
    sim.simulate(graph, arch)
    builds, sims = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        graph = workloads.build("sd15", **PIPELINE)
        t1 = time.perf_counter()
        result = sim.simulate(graph, arch)
        result.summary()
        sims.append(time.perf_counter() - t1)
        builds.append(t1 - t0)
    again = []
    for _ in range(repeats):  # the same graph again: lowering reused, as sweeps and scripts do
        t0 = time.perf_counter()
        sim.simulate(graph, arch).summary()
        again.append(time.perf_counter() - t0)
    return {"build_ms": 1e3 * statistics.median(builds), "simulate_ms": 1e3 * statistics.median(sims),
            "resimulate_ms": 1e3 * statistics.median(again), "latency_s": result.latency_s, "ops": len(graph)}  # fmt: skip


def import_seconds(repeats: int = 5) -> float:
    """Median seconds for a new process to `import sim` (heavy imports are deferred)."""
    code = "import time; t = time.perf_counter(); import sim; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
            for _ in range(repeats)]  # fmt: skip
    return statistics.median(runs)


def cold(arch_name: str, numba_cache: str | None = None) -> float:
    """Seconds for a new Python process to import, build and simulate."""
    env = dict(os.environ)
    if numba_cache:
        env["NUMBA_CACHE_DIR"] = numba_cache
    out = subprocess.run(
        [sys.executable, "-c", _COLD.format(arch=arch_name)], check=True, capture_output=True, text=True, env=env
    )
    return float(out.stdout.strip().splitlines()[-1])


def scalesim_times() -> str:
    path = HERE / "data" / "scalesim_reference.csv"
    if not path.is_file():
        return "SCALE-Sim reference data not recorded (run experiments/validate_scalesim.py --record)."
    df = pd.read_csv(path)
    col = next((c for c in df.columns if "seconds" in c or "time" in c), None)
    if col is None:
        return "SCALE-Sim times were not recorded in the reference CSV."
    layers = len(df)
    mean = df[col].mean()
    total = df[col].sum()
    ours = _time_our_layers(df)
    return (
        f"SCALE-Sim 3.0 on the {layers} cross-check runs (layer x dataflow x array): {total:.1f} s total, "
        f"{mean:.2f} s per run on average (recorded by validate_scalesim.py). ttvsim on the same runs: "
        f"{1e3 * ours:.1f} ms total ({1e6 * ours / layers:.0f} us per run, warm)."
    )


def _time_our_layers(df: pd.DataFrame) -> float:
    """Warm time for ttvsim to simulate every recorded SCALE-Sim run as a one-op graph."""
    jobs = []
    for row in df.itertuples():
        b = workloads.GraphBuilder("layer", stage="layer")
        b.linear("fc", b.input((int(row.M), int(row.K))), int(row.N), bias=False)
        arch = sim.load_arch({
            "name": "x", "frequency_mhz": 1000, "word_bytes": 1,
            "array": {"rows": int(row.rows), "cols": int(row.cols), "dataflow": str(row.dataflow)},
            "sram": {"ifmap_kb": 4096, "filter_kb": 4096, "ofmap_kb": 4096},
            "dram": {"bandwidth_gbs": 10}, "vector": {"lanes": int(row.rows)},
        })  # fmt: skip
        jobs.append((b.build(), arch))
    for graph, arch in jobs[:3]:
        sim.simulate(graph, arch)
    t0 = time.perf_counter()
    for graph, arch in jobs:
        sim.simulate(graph, arch)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=str(HERE / "out" / "benchmark.md"))
    args = parser.parse_args()

    rows = []
    for name in sorted(sim.presets()):
        w = warm(name, args.repeats)
        rows.append({"preset": name, **w, "cold_s": cold(name)})
    with tempfile.TemporaryDirectory() as empty:
        compile_s = cold("os128", numba_cache=empty)
    quick = _wall([sys.executable, "-m", "sim", "run", "experiments/sd15_quickstart.yaml", "--out",
                   tempfile.mkdtemp()])  # fmt: skip

    table = pd.DataFrame(rows)
    lines = [
        "# ttvsim benchmark: full SD 1.5 pipeline (text encoder + 50 CFG steps + VAE decode)",
        "",
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}. Command: `python experiments/benchmark.py`.",
        "",
        table.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else table.to_string(index=False),
        "",
        "- build_ms / simulate_ms: median warm time in one process (graph build; first simulate of that graph:",
        "  lowering + cost models + summary). resimulate_ms: `simulate(graph, arch).summary()` again on the same",
        "  graph (lowering kept with the graph, as in sweeps and scripts).",
        f"- `import sim` in a new process: {import_seconds():.3f} s (median of 5).",
        "- cold_s: a new process importing ttvsim, building and simulating (Numba cache on disk).",
        f"- cold with an empty Numba cache (compiling the cost models): {compile_s:.2f} s.",
        f"- `ttvsim run experiments/sd15_quickstart.yaml` end to end (new process): {quick:.2f} s.",
        f"- {scalesim_times()}",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
