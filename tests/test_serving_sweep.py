"""Serve sweeps through the sweep store: keys, resume after a kill, nothing recomputed, grid order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import sim.serving.sweep as serve_sweep
from sim.serving.config import expand, validate
from sim.serving.output import serve
from sim.serving.sweep import point_key, run_sweep

DOC = {
    "name": "sweep",
    "workload": {"model": "sd15", "options": {"resolution": 256, "steps": 30, "cfg": True}},
    "stream": {"requests": 600, "seed": 5, "arrivals": {"rate": 2.0}},
    "cache": {"capacity": 2000, "policy": "lcbfu"},
    "fleet": {"arch": "h100", "instances": 1},
    "sweep": {"cache.capacity": [0, 300, 2000], "cache.policy": ["lru", "lcbfu"]},
}


class Counting:
    """run_point that counts its calls and can fail on a given call (a killed sweep)."""

    def __init__(self, fail_on: int = 0) -> None:
        self.calls, self.fail_on, self.real = 0, fail_on, serve_sweep.run_point

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def points(doc=DOC):
    return expand(doc, "t:", Path("."))


def test_keys_follow_what_determines_the_numbers(tmp_path):
    base = validate({k: v for k, v in DOC.items() if k != "sweep"}, "t:", Path("."))
    key = point_key(base)
    renamed = validate(DOC | {"name": "other", "description": "x", "sweep": {}}, "t:", Path("."))
    assert point_key(renamed) == key  # name, description and sweep do not change the numbers
    for patch in (
        {"cache": DOC["cache"] | {"capacity": 2001}},
        {"stream": DOC["stream"] | {"seed": 6}},
        {"fleet": {"arch": "h100", "instances": 1, "arch_overrides": {"dram": {"bandwidth_gbs": 1000}}}},
        {"fleet": {"groups": [{"arch": "h100", "instances": 1, "price_per_hour": 5.0}]}},
        {"workload": {"model": "sd15", "options": {"resolution": 256, "steps": 31, "cfg": True}}},
    ):
        changed = validate({k: v for k, v in (DOC | patch).items() if k != "sweep"}, "t:", Path("."))
        assert point_key(changed) != key, patch
    # the old and the group spelling of the same fleet are the same point
    grouped = validate(DOC | {"sweep": {}, "fleet": {"groups": [{"arch": "h100", "instances": 1}]}}, "t:", Path("."))
    assert point_key(grouped) == key


def test_a_killed_sweep_resumes_and_a_rerun_recomputes_nothing(tmp_path, monkeypatch):
    grid = points()
    store = tmp_path / "sweep.sqlite"
    killed = Counting(fail_on=4)
    monkeypatch.setattr(serve_sweep, "run_point", killed)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, store)
    resumed = Counting()
    monkeypatch.setattr(serve_sweep, "run_point", resumed)
    lines: list[str] = []
    frame = run_sweep(grid, store, progress=lines.append)
    assert resumed.calls == 3 and lines[0].startswith("6 points: 3 already stored, 3 to run")
    assert frame[["cache.capacity", "cache.policy"]].values.tolist() == [
        [p["cache.capacity"], p["cache.policy"]] for p, _ in grid
    ]
    again = Counting()
    monkeypatch.setattr(serve_sweep, "run_point", again)
    assert run_sweep(grid, store).equals(frame) and again.calls == 0
    monkeypatch.setattr(serve_sweep, "run_point", Counting())
    fresh = run_sweep(grid, tmp_path / "other.sqlite")
    pd.testing.assert_frame_equal(fresh, frame)  # resumed rows are the rows of an uninterrupted run
    assert frame["requests"].dtype == "int64" and (frame["hit_rate"][frame["cache.capacity"] == 0] == 0).all()
    assert (frame["hit_rate"][frame["cache.capacity"] == 2000] > 0.1).all()


def test_a_grown_sweep_runs_only_its_new_points(tmp_path, monkeypatch):
    store = tmp_path / "sweep.sqlite"
    monkeypatch.setattr(serve_sweep, "run_point", Counting())
    run_sweep(points(), store)
    grown = DOC | {"sweep": {"cache.capacity": [0, 300, 2000, 5000], "cache.policy": ["lru", "lcbfu"]}}
    counter = Counting()
    monkeypatch.setattr(serve_sweep, "run_point", counter)
    frame = run_sweep(points(grown), store)
    assert counter.calls == 2 and len(frame) == 8 and frame["cache.capacity"].tolist()[-2:] == [5000, 5000]


def test_serve_writes_tables_and_plots_from_the_store(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(DOC | {"sweep": {"cache.capacity": [0, 2000]}}))
    out = tmp_path / "out"
    serve(path, out, progress=None)
    said: list[str] = []
    written = serve(path, out, progress=said.append)
    assert "0 to run" in said[0] and {p.name for p in written} >= {"points.csv", "latency_cdf.png", "cache_size.png"}
    table = pd.read_csv(out / "points.csv")
    assert table["cache.capacity"].tolist() == [0, 2000] and "latency_quantiles" not in table
    quantiles = pd.read_csv(out / "latency_quantiles.csv")
    assert list(quantiles.columns) == ["quantile", "point0_latency_s", "point1_latency_s"]
    assert quantiles["point1_latency_s"].is_monotonic_increasing
