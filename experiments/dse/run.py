"""The design-space study: a TTI/TTV accelerator under an area and power budget.

    python experiments/dse/run.py [--samples N] [--out ttvsim-out/dse] [--results experiments/results/dse]

Generates one experiment per model of `study.yaml` (same sweep, search and seed, so every model
sees the same Latin-hypercube designs), runs each into `OUT/<model>/sweep.sqlite` (resumable),
runs the same space through Optuna NSGA-II for one model, and writes to RESULTS: the rows of
every model (`<model>.csv`), the plots and `summary.md` (the numbers the README quotes).
Each generated experiment is `OUT/<model>.yaml`: `ttvsim run` it, then `ttvsim results` /
`ttvsim plot` its folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml

from sim.experiment import load_experiment
from sim.experiment.sweep import point_metrics, run_sweep, variant
from sim.results import plots
from sim.results.progress import bar_factory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEEP = [
    "arch.array.rows", "arch.array.cols", "arch.array.count", "arch.cores", "arch.dram.bandwidth_gbs", "design.sram",
    "design.precision", "design.sparsity", "latency_s", "energy_j", "power_w", "area_mm2", "area_arrays_mm2",
    "area_sram_mm2", "sram_total_mb", "peak_tops", "utilization", "dram_bytes", "edp_js", "by_class", "feasible", "pareto",
]  # fmt: skip


def experiment_files(study: dict, out: Path, samples: int | None) -> dict[str, Path]:
    """Write one experiment YAML per model (and one Optuna one); return name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    search = {**study["search"], **({"samples": samples} if samples else {})}
    base = {"arch": str(HERE / study["arch"]), "sweep": study["sweep"], "search": search}
    files = {}
    for key, workload in study["models"].items():
        files[key] = _write(out / f"{key}.yaml", {"name": f"dse_{key}", "workload": workload, **base})
    opt = study["optuna"]
    optuna_search = {"mode": "optuna", "samples": samples or opt["samples"], "seed": search["seed"],
                     "constraints": search["constraints"], "objectives": opt["objectives"]}  # fmt: skip
    files["optuna"] = _write(
        out / "optuna.yaml",
        {"name": f"dse_{opt['model']}_optuna", "workload": study["models"][opt["model"]], **base, "search": optuna_search},
    )
    return files


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(path: Path, out: Path) -> pd.DataFrame:
    exp = load_experiment(path)
    print(f"== {exp.name}")
    return run_sweep(exp, str(path), out / "sweep.sqlite", progress=print, bar=bar_factory("points", exp.name))


def summarize(name: str, frame: pd.DataFrame) -> dict:
    ok = frame[frame["feasible"]]
    front = ok[ok["pareto"]].sort_values("latency_s")
    best = ok.nsmallest(1, "latency_s").iloc[0]
    cheap = ok.nsmallest(1, "area_mm2").iloc[0]
    return {
        "model": name, "points": len(frame), "feasible": len(ok), "front": len(front),
        "best_latency_s": best["latency_s"], "best_area_mm2": best["area_mm2"], "best_power_w": best["power_w"],
        "best_design": _design(best), "smallest_area_mm2": cheap["area_mm2"], "smallest_latency_s": cheap["latency_s"],
        "front_fp8_share": float((front["design.precision"] == "fp8").mean()),
        "front_sparse_share": float((front["design.sparsity"] == "2:4").mean()),
        "front_sram": front["design.sram"].value_counts().to_dict(),
        "median_bw_front_gbs": float(front["arch.dram.bandwidth_gbs"].median()),
        "median_bw_all_gbs": float(ok["arch.dram.bandwidth_gbs"].median()),
    }  # fmt: skip


def _design(row: pd.Series) -> str:
    return (f"{row['arch.cores']}x{row['arch.array.count']} arrays of {row['arch.array.rows']}x{row['arch.array.cols']}, "
            f"SRAM {row['design.sram']}, {row['arch.dram.bandwidth_gbs']} GB/s, {row['design.precision']}, "
            f"{row['design.sparsity']}")  # fmt: skip


def toggle_effect(path: Path, frame: pd.DataFrame, axis: str, values: tuple[str, str], top: int = 10) -> tuple[float, float]:
    """Median (latency, area) ratio values[1] / values[0] over the `top` fastest feasible designs,
    each simulated with `axis` set both ways (everything else equal)."""
    from sim.engine import Simulator
    from sim.experiment.sweep import expand

    exp = load_experiment(path)
    simulator = Simulator(exp.build(str(path)))
    lat, area = [], []
    for _, row in frame[frame["feasible"]].nsmallest(top, "latency_s").iterrows():
        out = []
        for value in values:
            point = {k: _plain(row[k]) for k in exp.sweep} | {axis: value}
            chosen = variant(exp, expand(exp, point))
            arch = chosen.load_arch(str(path))
            summary = simulator.run(arch, passes=chosen.passes).summary()
            out.append((summary["latency_s"], point_metrics(arch, chosen.passes, summary)["area_mm2"]))
        lat.append(out[1][0] / out[0][0])
        area.append(out[1][1] / out[0][1])
    return float(pd.Series(lat).median()), float(pd.Series(area).median())


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="override search.samples (and the Optuna trials)")
    parser.add_argument("--out", default=str(ROOT / "ttvsim-out" / "dse"))
    parser.add_argument("--results", default=str(ROOT / "experiments" / "results" / "dse"))
    args = parser.parse_args()
    out, results = Path(args.out), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    study = yaml.safe_load((HERE / "study.yaml").read_text())
    files = experiment_files(study, out, args.samples)
    rows, frames = [], {}
    for key in study["models"]:
        frame = run(files[key], out / key)
        frames[key] = frame
        frame[[c for c in KEEP if c in frame]].to_csv(results / f"{key}.csv", index=False)
        rows.append(summarize(key, frame))
        plots.pareto_plot(frame, "latency_s", "area_mm2", results / f"pareto_{key}.png", color="design.precision",
                          title=f"{key}: latency vs modelled area ({len(frame)} LHS designs, budget 200 mm², 150 W)")  # fmt: skip
    optuna_frame = run(files["optuna"], out / "optuna")
    optuna_frame[[c for c in ["trial", *KEEP] if c in optuna_frame]].to_csv(results / "optuna_sd15.csv", index=False)
    _plots(study, frames, optuna_frame, results, out)
    _write_summary(rows, frames, optuna_frame, results, files)


def _plots(study: dict, frames: dict[str, pd.DataFrame], optuna_frame: pd.DataFrame, results: Path, out: Path) -> None:
    sd15 = frames["sd15"]
    plots.pareto_plot(sd15, "energy_j", "latency_s", results / "pareto_sd15_energy.png", color="design.sparsity",
                      title="sd15: latency vs energy per image (LHS designs)")  # fmt: skip
    both = pd.concat([sd15.assign(search="LHS"), optuna_frame.assign(search="Optuna NSGA-II")], ignore_index=True)
    plots.pareto_plot(both, "latency_s", "area_mm2", results / "pareto_sd15_lhs_vs_optuna.png", color="search",
                      title=f"sd15: LHS ({len(sd15)} designs) vs NSGA-II ({len(optuna_frame)} designs)")  # fmt: skip
    front = sd15[sd15["pareto"]]
    plots.breakdown_plot(front, results / "breakdown_sd15_front.png", share=True,
                         keys=["arch.cores", "arch.array.rows", "arch.array.cols", "design.precision"],
                         title="sd15: share of time by op class along the Pareto front (fastest first)")  # fmt: skip
    best = front.nsmallest(1, "latency_s").iloc[0]
    exp = load_experiment(out / "sd15.yaml")
    point = {k: _plain(best[k]) for k in exp.sweep}
    from sim.experiment.sweep import expand

    chosen = variant(exp, expand(exp, point))
    result = chosen.run()
    plots.roofline_plot(result, results / "roofline_sd15_fastest.png",
                        title=f"Roofline: sd15 on the fastest feasible design ({_design(best)})")  # fmt: skip
    plots.timeline_plot(result, results / "timeline_sd15_fastest.png",
                        title="Step timeline: sd15 (20 steps, CFG) on the fastest feasible design")  # fmt: skip


def _markdown(frame: pd.DataFrame) -> list[str]:
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return [head, rule, *("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False))]


def _write_summary(
    rows: list[dict], frames: dict[str, pd.DataFrame], optuna_frame: pd.DataFrame, results: Path, files: dict[str, Path]
) -> None:
    table = pd.DataFrame(rows)
    lines = ["# Design-space study: summary (generated by experiments/dse/run.py)", ""]
    lines += _markdown(table.drop(columns=["front_sram"]))
    lines += ["", "SRAM sizes on each front: " + json.dumps({r["model"]: r["front_sram"] for r in rows})]
    lines += ["", "Toggling one feature on the 10 fastest feasible designs (median ratio, latency / area):"]
    for key, frame in frames.items():
        (fl, fa), (sl, sa) = (toggle_effect(files[key], frame, "design.precision", ("fp16", "fp8")),
                              toggle_effect(files[key], frame, "design.sparsity", ("dense", "2:4")))  # fmt: skip
        lines.append(f"- {key}: fp8 vs fp16 latency x{fl:.3f}, area x{fa:.3f}; 2:4 vs dense latency x{sl:.3f}, area x{sa:.3f}")
    # does one design serve every model? rank designs by their worst latency ratio to each model's best
    keys = KEEP[:8]
    merged = None
    for key, frame in frames.items():
        ok = frame[frame["feasible"]].drop_duplicates(keys).set_index(keys)["latency_s"]
        ratio = (ok / ok.min()).rename(key)
        merged = ratio.to_frame() if merged is None else merged.join(ratio, how="inner")
    worst = merged.max(axis=1).sort_values()
    lines += ["", f"Best single design for all models (worst-case slowdown vs each model's fastest): {worst.iloc[0]:.2f}x",
              f"  {dict(zip(keys, map(_plain, worst.index[0])))}"]  # fmt: skip
    lhs, opt = frames["sd15"], optuna_frame
    for name, f in (("LHS", lhs), ("Optuna NSGA-II", opt)):
        ok = f[f["feasible"]]
        lines.append(f"- sd15 {name}: {len(f)} evaluations, {len(ok)} feasible, front {int(ok['pareto'].sum())} points, "
                     f"fastest feasible {ok['latency_s'].min():.4g} s, "
                     f"fastest under 100 mm² {ok[ok['area_mm2'] <= 100]['latency_s'].min():.4g} s")  # fmt: skip
    (results / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
