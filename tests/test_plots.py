"""Plots render to non-empty PNGs without a display (Agg); `ttvsim results` and `ttvsim plot`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import sim
from sim.experiment.cli import main
from sim.results import plots
from sim.results.trace import trace_events
from workloads import GraphBuilder

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def result():
    b = GraphBuilder("tiny", stage="unet")
    x = b.input((1, 64, 256))
    b.linear("fc1", x, 256)
    b.softmax("sm", b.input((1, 4, 64, 64)))
    return sim.simulate(b.build(), sim.load_arch("os128"))


def _frame() -> pd.DataFrame:
    rows = []
    for i, (lat, area) in enumerate([(1.0, 40.0), (2.0, 20.0), (3.0, 10.0), (2.5, 30.0), (4.0, 50.0)]):
        rows.append({"arch.array.rows": 32 * (i + 1), "design.precision": "fp8" if i % 2 else "fp16",
                     "latency_s": lat, "area_mm2": area, "energy_j": lat * 2, "feasible": i != 4,
                     "by_class": json.dumps({"conv": lat * 0.6, "linear": lat * 0.3, "norm": lat * 0.1})})  # fmt: skip
    return pd.DataFrame(rows)


def _png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_renders(tmp_path, result):
    frame = _frame()
    assert _png(plots.pareto_plot(frame, "latency_s", "area_mm2", tmp_path / "p.png", color="design.precision"))
    assert _png(plots.pareto_plot(frame, "energy_j", "latency_s", tmp_path / "p2.png", log=False))
    assert _png(plots.breakdown_plot(frame, tmp_path / "b.png", share=True))
    assert _png(plots.roofline_plot(result, tmp_path / "r.png"))
    assert _png(plots.timeline_plot(result, tmp_path / "t.png"))


def test_trace_has_unit_tracks_process_names_and_a_dram_counter(result):
    events = trace_events(result)
    names = {e["args"]["name"] for e in events if e["name"] in ("thread_name", "process_name")}
    assert {"steps", "systolic arrays (GEMM)", "vector unit", "host"} <= names
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and all(e["args"]["GB/s"] >= 0 for e in counters)
    slices = [e for e in events if e["ph"] == "X" and e["tid"] in (10, 11, 12)]
    assert {e["name"] for e in slices} == {"fc1", "sm"}


def test_results_and_plot_commands(tmp_path, capsys):
    exp = tmp_path / "s.yaml"
    exp.write_text(
        "name: s\nworkload: {model: sd15_vae_decoder, options: {resolution: 64}}\narch: os128\n"
        "sweep: {arch.array.rows: [16, 32, 64]}\nsearch: {objectives: [latency_s, area_mm2]}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(exp), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["results", str(out), "--where", "arch.array.rows >= 32", "--sort", "latency_s", "--desc",
                 "--columns", "arch.array.rows,latency_s,area_mm2,power_w"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "2 points" in text and "power_w" in text
    assert main(["results", str(out), "--csv", str(tmp_path / "r.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3
    pytest.importorskip("pyarrow")
    assert main(["results", str(out), "--expand", "--parquet", str(tmp_path / "r.parquet")]) == 0
    assert "by_class.conv" in pd.read_parquet(tmp_path / "r.parquet").columns
    assert main(["plot", "pareto", str(out), "--out", str(tmp_path / "p.png")]) == 0
    assert main(["plot", "breakdown", str(out), "--out", str(tmp_path / "b.png")]) == 0
    assert _png(tmp_path / "p.png") and _png(tmp_path / "b.png")
    capsys.readouterr()
    assert main(["results", str(out), "--where", "__import__('os')"]) == 2
    assert main(["results", str(tmp_path)]) == 2
    assert main(["plot", "pareto", str(out), "--x", "latncy_s"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("ttvsim: error:") for line in err)
    assert "latency_s" in err[-1]
