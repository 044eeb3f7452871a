"""Search beyond grids: seeded sampling, safe constraints, Pareto fronts, sweeps with search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.experiment import load_experiment
from sim.experiment.search import (
    Axis,
    annotate,
    pareto_front,
    parse_constraints,
    parse_expression,
    parse_objectives,
    sample,
)
from sim.experiment.sweep import run_sweep
from workloads.errors import InputError

SPACE = [Axis("a", (1, 2, 3, 4)), Axis("b", (), 1.0, 1000.0, log=True), Axis("c", (), 0, 10, integer=True)]


@pytest.mark.parametrize("mode", ["random", "lhs"])
def test_sampling_is_deterministic_under_a_seed(mode):
    assert sample(SPACE, 50, mode, seed=3) == sample(SPACE, 50, mode, seed=3)
    assert sample(SPACE, 50, mode, seed=3) != sample(SPACE, 50, mode, seed=4)
    for p in sample(SPACE, 50, mode, seed=3):
        assert p["a"] in (1, 2, 3, 4) and 1.0 <= p["b"] <= 1000.0 and isinstance(p["c"], int) and 0 <= p["c"] <= 10


def test_latin_hypercube_uses_every_stratum_once():
    n = 40
    points = sample([Axis("x", (), 0.0, 1.0)], n, "lhs", seed=0)
    strata = sorted(int(p["x"] * n) for p in points)
    assert strata == list(range(n))
    counts = pd.Series([p["a"] for p in sample(SPACE, 40, "lhs", seed=1)]).value_counts()
    assert set(counts) == {10}  # a list axis: every value equally often


def test_constraints_filter_exactly():
    frame = pd.DataFrame({"area_mm2": [100.0, 400.0, 401.0, 50.0], "power_w": [10.0, 300.0, 1.0, 301.0],
                          "arch.array.rows": [64, 128, 256, 64], "design.precision": ["fp8", "fp16", "fp8", "fp16"]})  # fmt: skip
    c = parse_constraints(["area_mm2 <= 400", "power_w <= 300"], lambda n: n == "area_mm2", "c")
    assert [e.text for e in c.design] == ["area_mm2 <= 400"] and [e.text for e in c.run] == ["power_w <= 300"]
    assert c.check(frame, "all", 4).tolist() == [True, True, False, False]
    assert c.check(frame, "design", 4).tolist() == [True, True, False, True]
    e = parse_expression("arch.array.rows * 2 >= 256 and not design.precision == 'fp16' or min(area_mm2, 60) < 55", "e")
    assert e.names == {"arch.array.rows", "design.precision", "area_mm2"}
    assert np.asarray(e.evaluate(frame)).tolist() == [False, False, True, True]
    assert bool(parse_expression("1 < area_mm2 / 100 <= 4", "e").evaluate({"area_mm2": 400.0}))


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('true')", "open('/etc/passwd')", "area_mm2.__class__", "[x for x in area_mm2]",
     "lambda: 1", "area_mm2[0]", "area_mm2 if 1 else 2", "f'{area_mm2}'", "True", "area_mm2 <= ", "", "x" * 600,
     "min(area_mm2, key=1)", "area_mm2 @ 2", "().__class__"],
)  # fmt: skip
def test_unsafe_or_malformed_constraints_are_input_errors(text):
    with pytest.raises(InputError, match="search.constraints"):
        parse_expression(text, "search.constraints[0]")


def test_pareto_front_on_hand_built_sets():
    pts = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [1, 6], [4, 1]], dtype=float)
    # (3,4) is dominated by (2,3); (5,5) by all; (1,6) by (1,5): same x, larger y; duplicates both stay
    assert pareto_front(pts).tolist() == [True, True, False, True, True, False, False, True]
    assert pareto_front(np.array([[1.0, 1.0]])).tolist() == [True]
    assert pareto_front(np.zeros((0, 2))).tolist() == []
    assert pareto_front(np.array([[1.0, np.nan], [2.0, 2.0]])).tolist() == [False, True]
    three = np.array([[1, 1, 9], [9, 1, 1], [1, 9, 1], [2, 2, 9], [1, 1, 9]], dtype=float)
    assert pareto_front(three).tolist() == [True, True, True, False, True]
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 6, size=(200, 3)).astype(float)  # many ties
    brute = [not any((q <= p).all() and (q < p).any() for q in pts) for p in pts]
    assert pareto_front(pts).tolist() == brute


def test_objectives_and_annotate_mark_the_feasible_front():
    frame = pd.DataFrame({"latency_s": [1.0, 2.0, 0.5, 3.0], "area_mm2": [10.0, 5.0, 50.0, 1.0],
                          "throughput_per_w": [1.0, 2.0, 3.0, 4.0]})  # fmt: skip
    objectives = parse_objectives(["latency_s", "area_mm2"], "o")
    c = parse_constraints(["area_mm2 <= 20"], lambda n: True, "c")
    out = annotate(frame, c, objectives, "search")
    assert out["feasible"].tolist() == [True, True, False, True] and out["pareto"].tolist() == [True, True, False, True]
    assert [o.maximize for o in parse_objectives(["throughput_per_w", "min:throughput_per_w", "max:latency_s"], "o")] == [True, False, True]
    with pytest.raises(InputError, match="unknown objective 'latncy_s'"):
        annotate(frame, c, parse_objectives(["latncy_s"], "o"), "search")
    with pytest.raises(InputError, match="expected min:NAME"):
        parse_objectives(["best:latency_s"], "o")


SWEEP = """\
name: s
workload: {model: sd15_vae_decoder, options: {resolution: 64}}
arch: os128
sweep:
  arch.array.rows: [16, 32, 64]
  arch.dram.bandwidth_gbs: {low: 64, high: 1024, log: true, int: true}
  design.precision:
    fp16: {}
    int8: {arch.array.throughput: {int8: 2.0}, passes: [{name: precision, by_class: {conv: int8}}]}
search: {mode: lhs, samples: 6, seed: 2, constraints: ["area_mm2 <= 30", "arch.array.rows >= 32", "power_w <= 1000"], objectives: [latency_s, area_mm2]}
"""


def test_lhs_sweep_filters_design_constraints_before_running_and_marks_the_front(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP)
    exp = load_experiment(path)
    lines: list[str] = []
    frame = run_sweep(exp, str(path), tmp_path / "out" / "sweep.sqlite", progress=lines.append)
    assert any("meet the design constraints" in line for line in lines)
    assert len(frame) and (frame["arch.array.rows"] >= 32).all() and (frame["area_mm2"] <= 30).all()
    assert {"power_w", "sram_total_mb", "area_mm2", "feasible", "pareto"} <= set(frame.columns)
    assert frame["power_w"].to_numpy() == pytest.approx((frame["energy_j"] / frame["latency_s"]).to_numpy())
    int8 = frame[frame["design.precision"] == "int8"]
    fp16 = frame[frame["design.precision"] == "fp16"]
    if len(int8) and len(fp16):  # the bundle's pass reached the simulator: int8 convs move fewer bytes
        assert int8["dram_bytes"].min() < fp16["dram_bytes"].max()
    again = run_sweep(exp, str(path), tmp_path / "out" / "sweep.sqlite", progress=lines.append)
    assert "0 to run" in lines[-1] or any("0 to run" in line for line in lines[-3:])
    pd.testing.assert_frame_equal(frame, again)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("search: {mode: lhs, samples: 3, constraints: ['__import__(\"os\")']}", "search.constraints"),
        ("search: {mode: lhs, samples: 3, constraints: ['latency_s <= 1 <=']}", "not an expression"),
        ("search: {mode: lhs, samples: 3, objectives: ['best:latency_s']}", "min:NAME or max:NAME"),
        ("search: {mode: optuna, samples: 3}", "needs objectives"),
        ("search: {mode: anneal}", "unknown value 'anneal'"),
    ],
)
def test_bad_search_sections_are_one_line_input_errors(tmp_path, edit, message):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.split("search:")[0] + edit + "\n")
    with pytest.raises(InputError, match=message):
        load_experiment(path)


def test_run_time_constraint_names_are_checked(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace("power_w <= 1000", "powr_w <= 1000").replace("samples: 6", "samples: 2"))
    with pytest.raises(InputError, match="unknown name 'powr_w'.*power_w"):
        run_sweep(load_experiment(path), str(path), tmp_path / "o" / "sweep.sqlite")


def test_optuna_search_resumes_from_its_study(tmp_path):
    pytest.importorskip("optuna")
    path = tmp_path / "s.yaml"
    text = SWEEP.replace("mode: lhs, samples: 6", "mode: optuna, samples: 4").replace("arch.array.rows >= 32", "arch.array.rows >= 16")
    path.write_text(text)
    store = tmp_path / "out" / "sweep.sqlite"
    first = run_sweep(load_experiment(path), str(path), store)
    assert (tmp_path / "out" / "optuna.sqlite").is_file() and 1 <= len(first) <= 4
    path.write_text(text.replace("samples: 4", "samples: 6"))
    lines: list[str] = []
    second = run_sweep(load_experiment(path), str(path), store, progress=lines.append)
    assert "4 done, 2 to run" in lines[0]
    keep = [c for c in first.columns if c != "pareto"]  # the front may change with more points
    pd.testing.assert_frame_equal(second[keep].iloc[: len(first)].reset_index(drop=True), first[keep].reset_index(drop=True))
