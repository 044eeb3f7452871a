"""Design-space sweeps: expansion, validation before running, SQLite store, resume, Dask."""

from __future__ import annotations

import re
import sqlite3

import pytest

from sim import version as sim_version
from sim.experiment import Experiment, load_experiment, sweep
from sim.experiment.cli import main
from workloads.errors import InputError

BASE = """\
name: sw
workload: {model: sd15_unet, options: {resolution: 256}}
arch: edge
sweep:
  arch.array.rows: [16, 32]
  arch.array.cols: [16, 32]
  simulation.attention: [fused, unfused]
"""


def load(tmp_path, text: str = BASE) -> Experiment:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return load_experiment(path)


def test_grid_and_zip(tmp_path):
    exp = load(tmp_path)
    pts = list(sweep.points(exp))
    assert len(pts) == 8 and pts[0] == {"arch.array.rows": 16, "arch.array.cols": 16, "simulation.attention": "fused"}
    zipped = load(tmp_path, BASE.replace("simulation.attention: [fused, unfused]", "") + "sweep_mode: zip\n")
    assert list(sweep.points(zipped)) == [
        {"arch.array.rows": 16, "arch.array.cols": 16},
        {"arch.array.rows": 32, "arch.array.cols": 32},
    ]


def test_variant_applies_every_kind_of_key(tmp_path):
    exp = load(tmp_path)
    v = sweep.variant(
        exp, {"arch.dram.bandwidth_gbs": 99, "workload.options.resolution": 512, "simulation.attention": "unfused"}
    )
    assert v.load_arch().dram.bandwidth_gbs == 99 and v.workload.options["resolution"] == 512
    assert v.simulation.attention == "unfused" and exp.workload.options["resolution"] == 256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("  arch.array.rowz: [4]\n", "unknown key 'rowz' (did you mean 'rows'?)"),
        ("  arch.array.rows: [0]\n", "must be positive"),
        ("  simulation.attention: [flash]\n", "unknown value 'flash'"),
        ("  workload.options.steps: [2]\n", "has no option 'steps'"),
        ("  hardware.rows: [4]\n", "unknown sweep key 'hardware.rows'"),
        ("  arch.array.rows: 4\n", "expected a non-empty list"),
    ],
)
def test_bad_points_fail_before_anything_runs(tmp_path, change, message):
    exp = load(tmp_path, "name: sw\nworkload: {model: sd15_unet}\narch: edge\nsweep:\n" + change)
    store = tmp_path / "s.sqlite"
    with pytest.raises(InputError, match=re.escape(message)):
        sweep.run_sweep(exp, "sweep.yaml", store)
    assert not store.exists()


def test_store_resume_and_one_build_per_workload(tmp_path, monkeypatch):
    exp = load(tmp_path)
    builds = []
    real = Experiment.build
    monkeypatch.setattr(Experiment, "build", lambda self, source="": builds.append(1) or real(self, source))
    store = tmp_path / "s.sqlite"
    frame = sweep.run_sweep(exp, "sweep.yaml", store)
    assert len(frame) == 8 and len(builds) == 1  # one workload: one graph for 8 points
    assert (frame["latency_s"] > 0).all()
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 8
    messages = []
    again = sweep.run_sweep(exp, "sweep.yaml", store, progress=messages.append)
    assert "8 already stored, 0 to run" in messages[0] and len(again) == 8 and len(builds) == 1
    bigger = frame.set_index(["arch.array.rows", "arch.array.cols", "simulation.attention"])["latency_s"]
    assert bigger[(32, 32, "fused")] < bigger[(16, 16, "fused")]


def test_cli_sweep(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(BASE)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "8 design points" in out and (tmp_path / "o" / "sweep.csv").is_file()
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--attention", "fused"]) == 2


@pytest.mark.dask
def test_dask_local_cluster_gives_the_same_points(tmp_path):
    pytest.importorskip("distributed")
    exp = load(tmp_path)
    local = sweep.run_sweep(exp, "sweep.yaml", tmp_path / "a.sqlite")
    client = sweep.dask_client("local", 1)
    try:
        remote = sweep.run_sweep(exp, "sweep.yaml", tmp_path / "b.sqlite", client=client)
    finally:
        client.close()
    key = ["arch.array.rows", "arch.array.cols", "simulation.attention"]
    assert local.sort_values(key)["latency_s"].tolist() == remote.sort_values(key)["latency_s"].tolist()


def test_changed_base_settings_do_not_reuse_stored_points(tmp_path):
    store = tmp_path / "s.sqlite"
    sweep.run_sweep(load(tmp_path), "sweep.yaml", store)
    changed = load(tmp_path, BASE + "arch_overrides: {dram: {bandwidth_gbs: 1}}\n")
    messages = []
    frame = sweep.run_sweep(changed, "sweep.yaml", store, progress=messages.append)
    assert "0 already stored, 8 to run" in messages[0] and len(frame) == 8


def test_dask_flag_errors(tmp_path, capsys):
    single = tmp_path / "single.yaml"
    single.write_text("name: one\nworkload: {model: sd15_unet, options: {resolution: 256}}\narch: edge\n")
    assert main(["run", str(single), "--dask", "local"]) == 2
    assert "has no `sweep` section" in capsys.readouterr().err
    pytest.importorskip("distributed")
    path = tmp_path / "sweep.yaml"
    path.write_text(BASE)
    assert main(["run", str(path), "--dask", "local", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["run", str(path), "--dask", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_points_are_lazy_and_indexable(tmp_path):
    exp = load(tmp_path, BASE + "  workload.options.resolution: [256, 512]\n")
    grid = sweep.points(exp)
    assert len(grid) == 16 and [grid.point(i) for i in range(16)] == list(grid)
    groups = [list(g) for g in grid.groups()]
    assert sorted(o for g in groups for o in g) == list(range(16)) and len(groups) == 2
    assert all(len({grid.point(o)["workload.options.resolution"] for o in g}) == 1 for g in groups)
    factors = list(grid.factors())  # validation: 4 arch + 2 workload + 2 simulation setting sets
    assert len(factors) == 8


def test_grid_over_the_limit_is_refused_before_expansion(tmp_path, monkeypatch):
    values = ", ".join(str(i + 1) for i in range(10))
    axes = "".join(f"  arch.k{j}: [{values}]\n" for j in range(7))
    exp = load(tmp_path, "name: big\nworkload: {model: sd15_unet}\narch: edge\nsweep:\n" + axes)
    monkeypatch.setattr(sweep.itertools, "product", lambda *a: pytest.fail("expanded"))
    with pytest.raises(
        InputError, match=r"10,000,000 points, more than sweep_limit 1,000,000; set `sweep_limit: 10000000`"
    ):
        sweep.run_sweep(exp, "big.yaml", tmp_path / "s.sqlite")
    assert not (tmp_path / "s.sqlite").exists()
    monkeypatch.undo()
    small = load(tmp_path, BASE + "sweep_limit: 4\n")
    with pytest.raises(InputError, match="8 points, more than sweep_limit 4"):
        sweep.points(small)
    assert len(sweep.points(load(tmp_path, BASE + "sweep_limit: 8\n"))) == 8


def test_code_change_invalidates_stored_points(tmp_path, monkeypatch):
    store, exp = tmp_path / "s.sqlite", load(tmp_path)
    sweep.run_sweep(exp, "sweep.yaml", store)
    monkeypatch.setattr(sim_version, "code_digest", lambda: "edited-cost-model")
    messages = []
    frame = sweep.run_sweep(exp, "sweep.yaml", store, progress=messages.append)
    assert "0 already stored, 8 to run" in messages[0] and len(frame) == 8
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 16  # old rows kept, never reported


def test_same_name_different_grids_never_merge(tmp_path):
    store = tmp_path / "s.sqlite"
    first = sweep.run_sweep(load(tmp_path), "sweep.yaml", store)
    other = load(tmp_path, BASE.replace("[16, 32]\n  arch.array.cols", "[8]\n  arch.array.cols"))
    messages = []
    second = sweep.run_sweep(other, "sweep.yaml", store, progress=messages.append)
    assert "4 points, 0 already stored, 4 to run" in messages[0]
    assert len(second) == 4 and set(second["arch.array.rows"]) == {8}
    again = sweep.run_sweep(load(tmp_path), "sweep.yaml", store)
    assert again.equals(first) and set(again["arch.array.rows"]) == {16, 32}


def test_repeated_points_run_once_and_keep_their_rows(tmp_path):
    exp = load(tmp_path, BASE.replace("[16, 32]\n  arch.array.cols", "[16, 16]\n  arch.array.cols"))
    messages = []
    frame = sweep.run_sweep(exp, "sweep.yaml", tmp_path / "s.sqlite", progress=messages.append)
    assert messages[0] == "8 points, 0 already stored, 4 to run (4 repeat others)" and len(frame) == 8


def test_file_options_are_part_of_the_key(tmp_path):
    topology = tmp_path / "t.csv"
    topology.write_text("Layer, M, N, K,\nfc1, 64, 64, 64,\n")
    text = "name: t\nworkload: {model: scalesim_topology, options: {path: t.csv, format: gemm}}\narch: edge\nsweep:\n  arch.array.rows: [16]\n"
    store = tmp_path / "s.sqlite"
    before = sweep.run_sweep(load(tmp_path, text), "t.yaml", store)
    topology.write_text("Layer, M, N, K,\nfc1, 64, 64, 4096,\n")
    messages = []
    after = sweep.run_sweep(load(tmp_path, text), "t.yaml", store, progress=messages.append)
    assert "0 already stored, 1 to run" in messages[0] and after["macs"][0] == 64 * before["macs"][0]


def test_process_pool_sweep_gives_the_serial_rows(tmp_path):
    """`--jobs 2` (a forked process pool over chunks of points) stores exactly the serial rows."""
    text = """\
name: pool
workload: {model: sd15_unet, options: {resolution: 256}}
arch: os128
sweep:
  arch.dram.bandwidth_gbs: [128, 256, 512, 1024]
  arch.frequency_mhz: [500, 1000, 1500]
  arch.vector.lanes: [64, 128]
"""
    exp = tmp_path / "pool.yaml"
    exp.write_text(text)
    frames = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        assert main(["run", str(exp), "--out", str(out), "--jobs", jobs]) == 0
        frames.append((out / "sweep.csv").read_text())
    assert frames[0] == frames[1]
