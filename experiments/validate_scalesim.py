"""Cross-check ttvsim's systolic model against the real SCALE-Sim 3.0.0.

Modes:
  (default) / --check   compare the committed reference CSV with ttvsim: stall-free compute
                        cycles must equal `sim.systolic.gemm_cycles` exactly (exit 1 otherwise);
                        total cycles with stalls are compared with `sim.simulate` as an error
                        distribution. No SCALE-Sim needed.
  --record              run SCALE-Sim (in experiments/.scalesim-venv) on every layer x dataflow
                        x array x memory setup and rewrite experiments/data/scalesim_reference.csv,
                        then check.
  --live                run SCALE-Sim now into a temporary CSV and check against it (CI).
  --sparse              only the sparse set (with any mode above); by default both sets run.
  --time                also print SCALE-Sim's wall time (total and per layer).

The sparse set (`scalesim_layers.sparse_cases`, recorded in
experiments/data/scalesim_sparse_reference.csv): SCALE-Sim with `[sparsity] SparsitySupport =
true`, `OptimizedMapping = false` (layer-wise N:M, the ratio in the topology's last column)
and each `SparseRep` (ellpack_block, csr, csc). Stall-free compute cycles must equal
`sim.systolic.gemm_cycles(..., sparsity="N:M")`, the condensed reduction SCALE-Sim folds
(its filter operand's rows) `condensed_k`, and SPARSE_REPORT.csv's original, new
(filter + metadata) and metadata filter storage `sparse_filter_storage` -- all exactly.

How SCALE-Sim 3.0.0 is driven: its Python API, `scalesim.scale_sim.scalesim(config=, topology=,
layout=, input_type_gemm=, save_disk_space=True, verbose=False).run_scale(top_path=)`, one run
per (layer, dataflow, array, memory) in a worker process inside the venv (this same file run
with `--worker`). `python -m scalesim.scale` does the same but ignores its `-s N` flag and
always writes full traces. Reports read: COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv.

Which SCALE-Sim number is "stall-free compute cycles": COMPUTE_REPORT's `Total Cycles` is the
cycle at which the last OFMAP demand row is served, with every stall added (`single_layer_sim.
calc_report_data` -> `double_buffered_scratchpad.service_memory_requests`: row i is issued at
cycle i + stalls so far). Its stall-free value is `Total Cycles - Stall Cycles` = (number of
demand-matrix rows) - 1 = folds * per-fold - 1; the worker records the row count directly and
checks it against `Total Cycles - Stall Cycles`. `Total Cycles (incl. prefetch)` additionally
spans the DRAM prefetch before the first demand and the OFMAP write-back after the last.

SCALE-Sim 3.0.0 quirk: in USER bandwidth mode, `Bandwidth` only sets the OFMAP write port; the
IFMAP and FILTER read ports take `[layout] IfmapSRAMBankBandwidth` / `FilterSRAMBankBandwidth`.
The generated config sets all three to the same words/cycle, so SCALE-Sim has three
independent DRAM ports of that bandwidth, while ttvsim gets one channel of that bandwidth.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_PYTHON = HERE / ".scalesim-venv" / "bin" / "python"
REFERENCE_CSV = HERE / "data" / "scalesim_reference.csv"
SPARSE_REFERENCE_CSV = HERE / "data" / "scalesim_sparse_reference.csv"
REPORT_MD = HERE / "out" / "scalesim_validation.md"

sys.path[:0] = [str(HERE), str(REPO)]  # scalesim_layers; sim and workloads (lazily, outside the venv)
from scalesim_layers import (  # noqa: E402
    ARRAYS,
    CONV_HEADER,
    DATAFLOWS,
    GEMM_HEADER,
    LAYERS,
    MEMORY_SETUPS,
    SPARSE_MEMORY,
    ConvLayer,
    layer_by_name,
    sparse_cases,
)

COLUMNS = [
    "layer", "kind", "M", "K", "N", "rows", "cols", "dataflow",
    "memory", "ifmap_kb", "filter_kb", "ofmap_kb", "bandwidth",
    "scalesim_compute_cycles", "scalesim_total_cycles_with_stalls", "scalesim_stall_cycles",
    "scalesim_total_cycles_incl_prefetch", "scalesim_folds",
    "scalesim_dram_ifmap_reads", "scalesim_dram_filter_reads", "scalesim_dram_ofmap_writes",
    "scalesim_seconds",
]  # fmt: skip
INT_COLUMNS = set(COLUMNS) - {"layer", "kind", "dataflow", "memory", "scalesim_seconds"}
SPARSE_COLUMNS = [
    "layer", "kind", "M", "K", "N", "ratio", "format", "rows", "cols", "dataflow",
    "scalesim_condensed_k", "scalesim_compute_cycles", "scalesim_total_cycles_with_stalls",
    "scalesim_stall_cycles", "scalesim_folds", "scalesim_original_filter_storage",
    "scalesim_new_filter_storage", "scalesim_filter_metadata_storage", "scalesim_seconds",
]  # fmt: skip
# SPARSE_REPORT storage columns stay as SCALE-Sim prints them (ELLPACK metadata is fractional).
SPARSE_INT_COLUMNS = set(SPARSE_COLUMNS) - {"layer", "kind", "ratio", "format", "dataflow", "scalesim_seconds"} - {
    "scalesim_new_filter_storage", "scalesim_filter_metadata_storage"}


# -- SCALE-Sim side (runs inside the venv) ----------------------------------------------------
def scalesim_config(rows: int, cols: int, dataflow: str, mem: dict[str, Any], sparse_rep: str = "") -> str:
    """A SCALE-Sim 3.0.0 config: USER bandwidth, one bank per SRAM, no layouts; layer-wise N:M
    sparsity stored as `sparse_rep` when given (else no sparsity)."""
    bw = mem["bandwidth"]
    return f"""[general]
run_name = run

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {mem["ifmap_kb"]}
FilterSramSzkB = {mem["filter_kb"]}
OfmapSramSzkB = {mem["ofmap_kb"]}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bw}
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {bw}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {bw}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = {"true" if sparse_rep else "false"}
SparseRep = {sparse_rep or "ellpack_block"}
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = USER
UseRamulatorTrace = False
"""


def _read_report(path: Path) -> dict[str, str]:
    """The single layer row of a SCALE-Sim report CSV, keyed by its stripped header names."""
    with path.open() as f:
        header, row = (line.rstrip().rstrip(",").split(",") for line in f.readlines()[:2])
    return {h.strip(): v.strip() for h, v in zip(header, row)}


def _run_scalesim(layer: Any, config: str, sparsity: str = "") -> tuple[Any, dict[str, dict[str, str]], float]:
    """Run SCALE-Sim on one layer (`sparsity`: an N:M topology column); return the simulator,
    its report rows by report name and the wall time."""
    from scalesim.scale_sim import scalesim  # venv only

    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        work = Path(tmp)
        (work / "scale.cfg").write_text(config)
        header = CONV_HEADER if layer.kind == "conv" else GEMM_HEADER
        row = layer.topology_row() + (f" {sparsity}," if sparsity else "")
        (work / "topo.csv").write_text(f"{header}{' Sparsity,' if sparsity else ''}\n{row}\n")
        (work / "layout.csv").write_text("Layer name,\n")  # read but unused without custom layouts
        start = time.perf_counter()
        sim = scalesim(
            save_disk_space=True,
            verbose=False,
            config=str(work / "scale.cfg"),
            topology=str(work / "topo.csv"),
            layout=str(work / "layout.csv"),
            input_type_gemm=layer.kind == "gemm",
        )
        sim.run_scale(top_path=str(work / "out"))
        seconds = time.perf_counter() - start
        names = ["COMPUTE_REPORT", "DETAILED_ACCESS_REPORT"] + (["SPARSE_REPORT"] if sparsity else [])
        reports = {name: _read_report(work / "out" / "run" / f"{name}.csv") for name in names}
    return sim, reports, seconds


def _stall_free(sim: Any, compute: dict[str, str], what: str) -> int:
    """Demand-matrix rows - 1 (SCALE-Sim's stall-free cycles), checked against the report."""
    demand_rows = sim.runner.single_layer_sim_object_list[0].compute_system.get_demand_matrices()[2].shape[0]
    total, stalls = int(compute["Total Cycles"]), int(compute["Stall Cycles"])
    if total - stalls != demand_rows - 1:
        print(f"note: {what}: Total-Stall={total - stalls} != rows-1={demand_rows - 1}", file=sys.stderr)
    return demand_rows - 1


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Run SCALE-Sim on one point (dense, or sparse when the job has a ratio); one reference row."""
    if "ratio" in job:
        return run_sparse(job)
    layer = layer_by_name(job["layer"])
    m, k, n = layer.gemm_dims()
    sim, reports, seconds = _run_scalesim(layer, scalesim_config(job["rows"], job["cols"], job["dataflow"], job["mem"]))
    compute, detail = reports["COMPUTE_REPORT"], reports["DETAILED_ACCESS_REPORT"]
    cs = sim.runner.single_layer_sim_object_list[0].compute_system
    ss_mkn = (cs.ifmap_op_mat.shape[0], cs.ifmap_op_mat.shape[1], cs.filter_op_mat.shape[1])
    if ss_mkn != (m, k, n):
        raise RuntimeError(f"{layer.name}: SCALE-Sim maps it to M,K,N={ss_mkn}, scalesim_layers says {(m, k, n)}")
    mem = job["mem"]
    return {
        "layer": layer.name, "kind": layer.kind, "M": m, "K": k, "N": n,
        "rows": job["rows"], "cols": job["cols"], "dataflow": job["dataflow"],
        "memory": mem["name"], "ifmap_kb": mem["ifmap_kb"], "filter_kb": mem["filter_kb"],
        "ofmap_kb": mem["ofmap_kb"], "bandwidth": mem["bandwidth"],
        "scalesim_compute_cycles": _stall_free(sim, compute, f"{layer.name} {job['dataflow']}"),
        "scalesim_total_cycles_with_stalls": int(compute["Total Cycles"]),
        "scalesim_stall_cycles": int(compute["Stall Cycles"]),
        "scalesim_total_cycles_incl_prefetch": int(compute["Total Cycles (incl. prefetch)"]),
        "scalesim_folds": cs.row_fold * cs.col_fold,
        "scalesim_dram_ifmap_reads": int(detail["DRAM IFMAP Reads"]),
        "scalesim_dram_filter_reads": int(detail["DRAM Filter Reads"]),
        "scalesim_dram_ofmap_writes": int(detail["DRAM OFMAP Writes"]),
        "scalesim_seconds": round(seconds, 4),
    }  # fmt: skip


def run_sparse(job: dict[str, Any]) -> dict[str, Any]:
    """Run SCALE-Sim on one sparse case; one sparse reference row."""
    layer = layer_by_name(job["layer"])
    m, k, n = layer.gemm_dims()
    config = scalesim_config(job["rows"], job["cols"], job["dataflow"], vars(SPARSE_MEMORY), job["format"])
    sim, reports, seconds = _run_scalesim(layer, config, job["ratio"])
    compute, sparse = reports["COMPUTE_REPORT"], reports["SPARSE_REPORT"]
    cs = sim.runner.single_layer_sim_object_list[0].compute_system
    if sparse["Sparsity Representation"] != job["format"]:
        raise RuntimeError(f"{layer.name}: SCALE-Sim reports {sparse['Sparsity Representation']}, not {job['format']}")
    return {
        "layer": layer.name, "kind": layer.kind, "M": m, "K": k, "N": n, "ratio": job["ratio"],
        "format": job["format"], "rows": job["rows"], "cols": job["cols"], "dataflow": job["dataflow"],
        "scalesim_condensed_k": cs.filter_op_mat.shape[0],
        "scalesim_compute_cycles": _stall_free(sim, compute, f"{layer.name} {job['ratio']} {job['dataflow']}"),
        "scalesim_total_cycles_with_stalls": int(compute["Total Cycles"]),
        "scalesim_stall_cycles": int(compute["Stall Cycles"]),
        "scalesim_folds": cs.row_fold * cs.col_fold,
        "scalesim_original_filter_storage": sparse["Original Filter Storage"],
        "scalesim_new_filter_storage": sparse["New Storage (Filter+Metadata)"],
        "scalesim_filter_metadata_storage": sparse["Filter Metadata Storage"],
        "scalesim_seconds": round(seconds, 4),
    }  # fmt: skip


def worker(jobs_path: Path, out_path: Path, processes: int) -> None:
    """Venv entry point: run every job (in `processes` processes) and dump the rows as JSON."""
    import multiprocessing

    jobs = json.loads(jobs_path.read_text())
    # Biggest layers first, so the last few runs do not leave a core idle.
    order = sorted(range(len(jobs)), key=lambda i: -math.prod(layer_by_name(jobs[i]["layer"]).gemm_dims()))
    start = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        done = pool.map(run_one, [jobs[i] for i in order], chunksize=1)
    rows: list[dict[str, Any]] = [{}] * len(jobs)
    for i, row in zip(order, done):
        rows[i] = row
    out_path.write_text(json.dumps({"rows": rows, "wall_seconds": time.perf_counter() - start}))


# -- driver side (ttvsim's python) -------------------------------------------------------------
def all_jobs() -> list[dict[str, Any]]:
    """Every (layer, array, dataflow, memory setup) point of the reference set."""
    return [
        {"layer": layer.name, "rows": r, "cols": c, "dataflow": df, "mem": vars(mem)}
        for mem in MEMORY_SETUPS
        for r, c in ARRAYS
        for df in DATAFLOWS
        for layer in LAYERS
    ]


def sparse_jobs() -> list[dict[str, Any]]:
    """Every sparse case (`scalesim_layers.sparse_cases`) as a worker job."""
    return [vars(case) for case in sparse_cases()]


def run_scalesim(jobs: list[dict[str, Any]], processes: int) -> tuple[list[dict[str, Any]], float]:
    """Run the real SCALE-Sim in its venv on `jobs`; exit 2 if the venv is missing."""
    if not VENV_PYTHON.exists():
        print(f"SCALE-Sim venv not found ({VENV_PYTHON}); run `bash experiments/setup_scalesim.sh` first",
              file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryDirectory(prefix="ttvsim-scalesim-") as tmp:
        jobs_path, out = Path(tmp) / "jobs.json", Path(tmp) / "rows.json"
        jobs_path.write_text(json.dumps(jobs))
        cmd = [str(VENV_PYTHON), str(Path(__file__).resolve()), "--worker", str(jobs_path), str(out), str(processes)]
        subprocess.run(cmd, check=True, cwd=tmp, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    return result["rows"], result["wall_seconds"]


def write_csv(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] = COLUMNS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path, int_columns: Iterable[str] = INT_COLUMNS) -> list[dict[str, Any]]:
    """Reference rows with integer columns parsed."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in int_columns:
            row[key] = int(row[key])
        row["scalesim_seconds"] = float(row["scalesim_seconds"])
    return rows


def ttvsim_compute_cycles(row: dict[str, Any]) -> int:
    from sim.systolic import gemm_cycles

    return gemm_cycles(row["M"], row["K"], row["N"], row["rows"], row["cols"], row["dataflow"])


def _ttvsim_arch(row: dict[str, Any]) -> Any:
    import sim

    freq_mhz, word_bytes = 1000, 1
    return sim.load_arch({
        "name": f"scalesim_{row['rows']}x{row['cols']}_{row['dataflow']}_{row['memory']}",
        "frequency_mhz": freq_mhz,
        "word_bytes": word_bytes,
        "cores": 1,
        "array": {"rows": row["rows"], "cols": row["cols"], "dataflow": row["dataflow"]},
        "sram": {"ifmap_kb": row["ifmap_kb"], "filter_kb": row["filter_kb"], "ofmap_kb": row["ofmap_kb"]},
        "dram": {"bandwidth_gbs": row["bandwidth"] * word_bytes * freq_mhz / 1000},
        "vector": {"lanes": row["rows"]},
    })  # fmt: skip


def _ttvsim_graph(name: str) -> Any:
    """A one-op graph of the layer as ttvsim's workload builders would write it."""
    from workloads.builder import GraphBuilder

    layer = layer_by_name(name)
    b = GraphBuilder("layer", stage="layer")
    if isinstance(layer, ConvLayer):
        x = b.input((1, layer.c, layer.h, layer.w))
        b.conv("conv", x, out_ch=layer.f, kernel=(layer.r, layer.s), stride=layer.stride, padding=0, bias=False)
    else:
        b.linear("fc", b.input((layer.m, layer.k)), layer.n, bias=False)
    return b.build()


def ttvsim_memory(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, int] | None], str]:
    """ttvsim's total cycles and DRAM words per row via `sim.simulate`, or Nones and a reason."""
    try:
        import sim

        simulate = sim.simulate
    except (ImportError, AttributeError) as exc:
        return [None] * len(rows), f"ttvsim memory model unavailable ({exc})"
    out: list[dict[str, int] | None] = []
    graphs: dict[str, Any] = {}
    for row in rows:
        graph = graphs.setdefault(row["layer"], _ttvsim_graph(row["layer"]))
        ops = simulate(graph, _ttvsim_arch(row)).ops
        out.append({key: round(float(ops[col].sum())) for key, col in
                    (("cycles", "cycles"), ("dram_read", "dram_read_bytes"), ("dram_write", "dram_write_bytes"))})
    return out, ""


def pct_error(ours: float, ref: float) -> float:
    return 100.0 * (ours - ref) / ref


def summarize(errors: Iterable[float]) -> str:
    errs = [abs(e) for e in errors]
    if not errs:
        return "n/a"
    return (f"mean |err| {statistics.fmean(errs):.1f}%, median {statistics.median(errs):.1f}%, "
            f"max {max(errs):.1f}% over {len(errs)} rows")


# SCALE-Sim quantities ttvsim's memory model is compared with: (label, ttvsim key, SCALE-Sim fn).
MEMORY_METRICS: tuple[tuple[str, str, Any], ...] = (
    ("total cycles w/ stalls (`Total Cycles`)", "cycles", lambda r: r["scalesim_total_cycles_with_stalls"]),
    ("total cycles incl. prefetch/write-back", "cycles", lambda r: r["scalesim_total_cycles_incl_prefetch"]),
    ("DRAM words read", "dram_read", lambda r: r["scalesim_dram_ifmap_reads"] + r["scalesim_dram_filter_reads"]),
)


def compare(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Exact compute-cycle comparison and the memory-model error distributions."""
    ours = [ttvsim_compute_cycles(r) for r in rows]
    mismatches = [(r, o) for r, o in zip(rows, ours) if o != r["scalesim_compute_cycles"]]
    mem, why = ttvsim_memory(rows)
    summaries: list[str] = []
    if not why:
        for setup in dict.fromkeys(r["memory"] for r in rows):
            for label, key, ref in MEMORY_METRICS:
                errs = [pct_error(m[key], ref(r)) for r, m in zip(rows, mem) if r["memory"] == setup and ref(r) > 0]
                summaries.append(f"memory `{setup}`, {label}: {summarize(errs)}")
    return {"ours": ours, "mismatches": mismatches, "memory": mem, "unavailable": why, "summaries": summaries}


def _table(header: Sequence[str], body: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in line) + " |" for line in body]
    return lines


def render_report(rows: Sequence[dict[str, Any]], result: dict[str, Any], source: str) -> str:
    """Markdown: summary lines, then one table per memory setup x array x dataflow."""
    n_ok = len(rows) - len(result["mismatches"])
    ragged = [layer.name for layer in LAYERS if isinstance(layer, ConvLayer) and layer.out_hw != layer.torch_out_hw]
    lines = [
        "# ttvsim vs SCALE-Sim 3.0.0",
        "",
        (f"Reference: {source}. Regenerate: `bash experiments/setup_scalesim.sh && "
        "python experiments/validate_scalesim.py --record`."),
        "",
        (f"- Stall-free compute cycles: **{n_ok}/{len(rows)} exact** "
        "(SCALE-Sim `Total Cycles - Stall Cycles` = demand rows - 1 vs `sim.systolic.gemm_cycles`)."),
    ]
    if result["unavailable"]:
        lines.append(f"- Total cycles with stalls: {result['unavailable']}.")
    lines += [f"- ttvsim `sim.simulate` vs SCALE-Sim, {s}." for s in result["summaries"]]
    lines += [
        (f"- SCALE-Sim time for the {len(rows)} runs: {sum(r['scalesim_seconds'] for r in rows):.1f} s "
        "(sum of per-run wall times)."),
        ("- SCALE-Sim's bandwidth is per operand port (IFMAP, FILTER and OFMAP each get it); ttvsim's "
        "DRAM channel is shared. SCALE-Sim's `Total Cycles` does not count the prefetch of the first "
        "SRAM fill (operands that fit on chip never stall); `incl. prefetch` spans first DRAM read to "
        "last OFMAP write."),
    ]
    if ragged:
        lines.append(f"- {', '.join(ragged)}: SCALE-Sim rounds the ofmap size up, PyTorch (and ttvsim's "
                     "conv builder) down, so ttvsim's total there is for a smaller M.")
    groups: dict[tuple[str, int, int, str], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["memory"], r["rows"], r["cols"], r["dataflow"]), []).append(i)
    header = ["layer", "M K N", "SCALE-Sim compute", "ttvsim compute", "match", "SCALE-Sim total w/ stalls",
              "stalls", "incl. prefetch", "ttvsim total", "% error", "% error vs incl. prefetch",
              "DRAM rd SCALE-Sim", "DRAM rd ttvsim"]  # fmt: skip
    for (mem, r, c, df), idx in groups.items():
        first = rows[idx[0]]
        lines += ["", (f"## {df.upper()} {r}x{c}, memory `{mem}` (SRAM {first['ifmap_kb']}/{first['filter_kb']}/"
                  f"{first['ofmap_kb']} KiB, {first['bandwidth']} words/cycle)"), ""]
        body = []
        for i in idx:
            row, ours, mem = rows[i], result["ours"][i], result["memory"][i]
            ref_total, ref_pf = row["scalesim_total_cycles_with_stalls"], row["scalesim_total_cycles_incl_prefetch"]
            body.append([
                row["layer"], f"{row['M']} {row['K']} {row['N']}", row["scalesim_compute_cycles"], ours,
                "yes" if ours == row["scalesim_compute_cycles"] else "**NO**", ref_total, row["scalesim_stall_cycles"],
                ref_pf, "n/a" if mem is None else mem["cycles"],
                "n/a" if mem is None else f"{pct_error(mem['cycles'], ref_total):+.1f}",
                "n/a" if mem is None else f"{pct_error(mem['cycles'], ref_pf):+.1f}",
                row["scalesim_dram_ifmap_reads"] + row["scalesim_dram_filter_reads"],
                "n/a" if mem is None else mem["dram_read"],
            ])  # fmt: skip
        lines += _table(header, body)
    return "\n".join(lines) + "\n"


def print_timing(rows: Sequence[dict[str, Any]], wall: float | None) -> None:
    """SCALE-Sim's wall time per layer (summed over its runs) and in total."""
    per_layer: dict[str, float] = {}
    for r in rows:
        per_layer[r["layer"]] = per_layer.get(r["layer"], 0.0) + r["scalesim_seconds"]
    runs_per_layer = len(rows) // max(len(per_layer), 1)
    print(f"SCALE-Sim wall time per layer (sum over its {runs_per_layer} runs):")
    for name, secs in sorted(per_layer.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<22} {secs:8.2f} s")
    print(f"SCALE-Sim total: {sum(per_layer.values()):.1f} s summed over {len(rows)} runs"
          + (f", {wall:.1f} s wall clock" if wall is not None else ""))


# -- sparse set ---------------------------------------------------------------------------------
# Sparse reference columns ttvsim must reproduce exactly, and how ttvsim computes each.
SPARSE_CHECKS = (
    "scalesim_condensed_k", "scalesim_compute_cycles", "scalesim_original_filter_storage",
    "scalesim_new_filter_storage", "scalesim_filter_metadata_storage",
)  # fmt: skip


def ttvsim_sparse(row: dict[str, Any]) -> dict[str, float]:
    """ttvsim's value of every `SPARSE_CHECKS` column for one sparse case."""
    from sim.systolic import condensed_k, gemm_cycles, nm_ratio, sparse_filter_storage

    storage = sparse_filter_storage(row["K"], row["N"], row["ratio"], row["format"])
    cycles = gemm_cycles(row["M"], row["K"], row["N"], row["rows"], row["cols"], row["dataflow"], sparsity=row["ratio"])
    values = (condensed_k(row["K"], *nm_ratio(row["ratio"])), cycles, storage.original, storage.new, storage.metadata)
    return dict(zip(SPARSE_CHECKS, values))


def compare_sparse(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, float], list[str]]]:
    """(row, ttvsim's values, the columns that differ) for every sparse row."""
    out = []
    for row in rows:
        ours = ttvsim_sparse(row)
        out.append((row, ours, [k for k in SPARSE_CHECKS if float(row[k]) != float(ours[k])]))
    return out


def render_sparse(compared: Sequence[tuple[dict[str, Any], dict[str, float], list[str]]], source: str) -> list[str]:
    n_ok = sum(not diff for _, _, diff in compared)
    lines = [
        "", "# Sparse: layer-wise N:M (SparsitySupport = true, OptimizedMapping = false)", "",
        f"Reference: {source}. **{n_ok}/{len(compared)} exact** on the condensed reduction K', stall-free compute "
        "cycles and SPARSE_REPORT filter storage (original, new = filter + metadata, metadata; words).", "",
    ]  # fmt: skip
    header = ["layer", "M K N", "N:M", "array", "dataflow", "format", "K' SS/ttv", "cycles SS/ttv",
              "new storage SS/ttv", "metadata SS/ttv", "match"]  # fmt: skip
    body = [[
        row["layer"], f"{row['M']} {row['K']} {row['N']}", row["ratio"], f"{row['rows']}x{row['cols']}",
        row["dataflow"], row["format"], f"{row['scalesim_condensed_k']}/{ours['scalesim_condensed_k']}",
        f"{row['scalesim_compute_cycles']}/{ours['scalesim_compute_cycles']}",
        f"{row['scalesim_new_filter_storage']}/{ours['scalesim_new_filter_storage']}",
        f"{row['scalesim_filter_metadata_storage']}/{ours['scalesim_filter_metadata_storage']}",
        "**NO** " + ", ".join(diff) if diff else "yes",
    ] for row, ours, diff in compared]  # fmt: skip
    return lines + _table(header, body)


def check_sparse(rows: Sequence[dict[str, Any]], source: str) -> tuple[int, list[str]]:
    """Compare the sparse rows, print the summary; (1 on any mismatch else 0, report lines)."""
    compared = compare_sparse(rows)
    bad = [(row, ours, diff) for row, ours, diff in compared if diff]
    print(f"sparse N:M: {len(rows) - len(bad)}/{len(rows)} exact (K', compute cycles, filter storage) "
          f"vs SCALE-Sim ({source})")
    if bad:
        print("\nSPARSE MISMATCHES (layer, M K N, N:M, array, dataflow, format: column SCALE-Sim vs ttvsim):")
        for row, ours, diff in bad:
            cols = "; ".join(f"{k} {row[k]} vs {ours[k]}" for k in diff)
            print(f"  {row['layer']:<18} {row['M']} {row['K']} {row['N']} {row['ratio']} {row['rows']}x{row['cols']} "
                  f"{row['dataflow']} {row['format']}: {cols}")
    return int(bool(bad)), render_sparse(compared, source)


def check_dense(rows: Sequence[dict[str, Any]], source: str) -> tuple[int, str]:
    """Compare, print the summary; (1 on any compute mismatch else 0, the markdown report)."""
    result = compare(rows)
    n_ok = len(rows) - len(result["mismatches"])
    print(f"compute cycles: {n_ok}/{len(rows)} exact vs SCALE-Sim ({source})")
    if result["unavailable"]:
        print(result["unavailable"])
    for line in result["summaries"]:
        print(f"ttvsim vs SCALE-Sim, {line}")
    if result["mismatches"]:
        print("\nMISMATCHES (layer, M K N, array, dataflow: SCALE-Sim vs ttvsim):")
        for row, ours in result["mismatches"]:
            print(f"  {row['layer']:<22} {row['M']:>4} {row['K']:>4} {row['N']:>4}  {row['rows']}x{row['cols']} "
                  f"{row['dataflow']}: {row['scalesim_compute_cycles']} vs {ours}")
    return int(bool(result["mismatches"])), render_report(rows, result, source)


def check(dense: Sequence[dict[str, Any]], sparse: Sequence[dict[str, Any]], sources: tuple[str, str]) -> int:
    """Check both sets (either may be empty), write the markdown report; 1 on any mismatch."""
    status, report = check_dense(dense, sources[0]) if dense else (0, "# ttvsim vs SCALE-Sim 3.0.0\n")
    if sparse:
        sparse_status, lines = check_sparse(sparse, sources[1])
        status |= sparse_status
        report += "\n".join(lines) + "\n"
    REPORT_MD.parent.mkdir(parents=True, exist_ok=True)
    REPORT_MD.write_text(report)
    print(f"report: {REPORT_MD}")
    return status


def _shown(path: Path) -> str:
    return f"`{path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path}`"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare the committed reference CSVs (default)")
    mode.add_argument("--record", action="store_true", help="run SCALE-Sim and rewrite the reference CSVs")
    mode.add_argument("--live", action="store_true", help="run SCALE-Sim now into temp CSVs and check")
    mode.add_argument("--worker", nargs=3, metavar=("JOBS", "OUT", "PROCS"), help=argparse.SUPPRESS)
    parser.add_argument("--sparse", action="store_true", help="only the sparse N:M set")
    parser.add_argument("--time", action="store_true", help="print SCALE-Sim's wall time per layer and in total")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="SCALE-Sim processes")
    parser.add_argument("--csv", type=Path, default=REFERENCE_CSV, help="dense reference CSV to check")
    parser.add_argument("--sparse-csv", type=Path, default=SPARSE_REFERENCE_CSV, help="sparse reference CSV to check")
    args = parser.parse_args(argv)

    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), int(args.worker[2]))
        return 0
    wall: float | None = None
    if args.record or args.live:
        try:
            fresh, wall = run_scalesim(([] if args.sparse else all_jobs()) + sparse_jobs(), args.jobs)
        except subprocess.CalledProcessError as exc:
            print(f"SCALE-Sim run failed (exit {exc.returncode}); see its error above", file=sys.stderr)
            return 1
        dense, sparse = [r for r in fresh if "ratio" not in r], [r for r in fresh if "ratio" in r]
        if args.record:
            if dense:
                write_csv(dense, REFERENCE_CSV)
            write_csv(sparse, SPARSE_REFERENCE_CSV, SPARSE_COLUMNS)
        sources = ("a live SCALE-Sim 3.0.0 run",) * 2 if args.live else (
            f"{_shown(REFERENCE_CSV)} (just recorded)", f"{_shown(SPARSE_REFERENCE_CSV)} (just recorded)")
    else:
        paths = ([] if args.sparse else [args.csv]) + [args.sparse_csv]
        missing = [p for p in paths if not p.exists()]
        if missing:
            print(f"reference CSV {missing[0]} missing; record it with --record", file=sys.stderr)
            return 2
        dense = [] if args.sparse else read_csv(args.csv)
        sparse = read_csv(args.sparse_csv, SPARSE_INT_COLUMNS)
        sources = (_shown(args.csv), _shown(args.sparse_csv))
    if args.time:
        print_timing([*dense, *sparse], wall)
    return check(dense, sparse, sources)


if __name__ == "__main__":
    sys.exit(main())
