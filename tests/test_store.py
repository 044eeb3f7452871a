"""The sweep store: checked before any point runs, batched commits, exact grids, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sim
from sim.engine import Simulator
from sim.experiment.cli import main
from sim.results.store import SweepStore
from workloads.errors import InputError

ROOT = Path(sim.__file__).resolve().parents[1]  # the code under test, also in subprocesses
SUMMARY = {"workload": "w", "arch": "a", "attention": "fused", "latency_s": 1.0, "by_class": {"gemm": 1.0}}
SWEEP = """\
name: st
workload: {model: sd15_unet, options: {resolution: 256}}
arch: edge
sweep:
  arch.array.rows: [16, 32]
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]


def test_points_are_committed_in_batches_of_points_or_seconds(tmp_path):
    path, clock = tmp_path / "s.sqlite", Clock()
    with SweepStore(path, batch_points=3, batch_seconds=10, clock=clock) as store:
        for i in range(2):
            store.add(f"k{i}", {"i": i}, SUMMARY)
        assert rows(path) == 0  # a batch in progress is invisible (and lost on a kill)
        store.add("k2", {"i": 2}, SUMMARY)
        assert rows(path) == 3  # every 3 points
        store.add("k3", {"i": 3}, SUMMARY)
        clock.now = 10
        store.add("k4", {"i": 4}, SUMMARY)
        assert rows(path) == 5  # or once 10 s passed since the last commit
        store.add("k5", {"i": 5}, SUMMARY)
        assert rows(path) == 5
    assert rows(path) == 6  # close commits the rest
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_frame_is_exactly_the_registered_grid(tmp_path):
    with SweepStore(tmp_path / "s.sqlite") as store:
        for key in ("a", "b", "old"):
            store.add(key, {"x": key}, {**SUMMARY, "latency_s": 0.0 if key == "old" else 1.0})
        store.register(["b", "a", "new", "b"])
        assert list(store.missing()) == [2] and store.stored() == 3
        frame = store.frame(lambda ordinal: {"ordinal": ordinal})
    assert frame["ordinal"].tolist() == [0, 1, 3]  # grid order, repeats kept, no leftover "old" row
    assert "point" not in frame and "settings" not in frame and (frame["latency_s"] == 1.0).all()


def test_new_summary_keys_become_columns(tmp_path):
    with SweepStore(tmp_path / "s.sqlite") as store:
        store.add("a", {}, SUMMARY)
        store.add("b", {}, {**SUMMARY, "by_step": {"denoise": 2.0}, "steps_s": 3, "flag": True})
        store.register(["a", "b"])
        frame = store.frame(lambda _: {})
    assert json.loads(frame["by_step"].tolist()[1]) == {"denoise": 2.0} and frame["steps_s"].tolist()[1] == 3.0
    assert json.loads(frame["by_class"].tolist()[0]) == {"gemm": 1.0}


def corrupt(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 300)


def foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")


def older(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE points (experiment TEXT, point TEXT, PRIMARY KEY (experiment, point))")


def folder(path: Path) -> None:
    path.mkdir()


def newer(path: Path) -> None:
    SweepStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'version'")


BROKEN = {
    "corrupt": (corrupt, "is not a SQLite database, or is corrupt; rerun with --fresh"),
    "foreign": (foreign, "is not a ttvsim sweep store (tables: customers); rerun with --fresh"),
    "older": (older, "is an older ttvsim sweep store"),
    "newer": (newer, "has store schema version '99'"),
    "folder": (folder, "is a folder, not a sweep store"),
}


@pytest.fixture
def no_simulation(monkeypatch):
    """Any simulated point fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a point was simulated")

    monkeypatch.setattr(Simulator, "run", refuse)
    monkeypatch.setattr(Simulator, "summaries", refuse)


@pytest.mark.parametrize("case", BROKEN)
def test_broken_store_is_one_line_before_any_point_runs(tmp_path, capsys, no_simulation, case):
    make, message = BROKEN[case]
    (tmp_path / "o").mkdir()
    make(tmp_path / "o" / "sweep.sqlite")
    exp = tmp_path / "e.yaml"
    exp.write_text(SWEEP)
    assert main(["run", str(exp), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(tmp_path / "o" / "sweep.sqlite") in err


@pytest.mark.parametrize("case", ["corrupt", "foreign", "older", "newer"])
def test_fresh_replaces_a_broken_store(tmp_path, case):
    path = tmp_path / "s.sqlite"
    BROKEN[case][0](path)
    with pytest.raises(InputError):
        SweepStore(path)
    with SweepStore(path, fresh=True) as store:
        store.add("a", {}, SUMMARY)
    assert rows(path) == 1


@pytest.mark.parametrize("out", ["a_file", "a_file/below"])
def test_output_folder_that_cannot_be_made(tmp_path, capsys, no_simulation, out):
    (tmp_path / "a_file").write_text("")
    exp = tmp_path / "e.yaml"
    exp.write_text(SWEEP)
    assert main(["run", str(exp), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a_file" in err  # the CLI or the store refuses it


def test_locked_store(tmp_path):
    path = tmp_path / "s.sqlite"
    with SweepStore(path), pytest.raises(InputError, match="is in use by another ttvsim run"):
        SweepStore(path)
    SweepStore(path).close()  # released with the first


@pytest.fixture
def read_only(tmp_path):
    """A store file this process cannot write (chattr +i when running as root)."""
    path = tmp_path / "s.sqlite"
    SweepStore(path).close()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
            pytest.skip("root without chattr: cannot make a read-only file")
        yield path
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        yield path


def test_read_only_store(read_only):
    with pytest.raises(InputError, match="cannot be written"):
        SweepStore(read_only)


# -- kill and resume ------------------------------------------------------------------------

KILL_SWEEP = """\
name: kill
workload: {model: scalesim_topology, options: {path: tiny.csv, format: gemm}}
arch: edge
sweep:
  arch.dram.bandwidth_gbs: [%s]
  arch.frequency_mhz: [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
""" % ", ".join(str(b) for b in range(1, 201))
DRIVER = """\
import sys, time
import sim.engine, sim.version
from sim.experiment.cli import main

sim.version.code_digest = lambda: "kill-test"  # other edits to the checkout must not change keys
runs = []


class Fake:  # a cheap deterministic point: this tests the store, not the cost models
    def __init__(self, arch, attention):
        self.arch, self.attention = arch, attention

    def summary(self):
        latency = 1 / self.arch.dram.bandwidth_gbs + 1 / self.arch.frequency_mhz
        return {"workload": "tiny", "arch": self.arch.name, "attention": self.attention, "latency_s": latency,
                "cycles": latency * 1e6, "by_class": {"gemm": latency}, "by_step": {"denoise": [latency]}}


def summaries(self, archs, attention="fused", **options):
    runs.extend(1 for _ in archs)
    time.sleep(0.001 * len(archs))
    return [Fake(arch, attention).summary() for arch in archs]


sim.engine.Simulator.summaries = summaries
rc = main(sys.argv[1:])
print(f"simulated {len(runs)}")
sys.exit(rc)
"""


def start(tmp_path: Path, out: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(tmp_path / "driver.py"),
        "run",
        str(tmp_path / "kill.yaml"),
        "--out",
        str(tmp_path / out),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_rows(path: Path, proc: subprocess.Popen, at_least: int) -> None:
    while proc.poll() is None:
        try:
            if rows(path) >= at_least:
                return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.02)
    raise AssertionError(f"the sweep ended before storing {at_least} points: {proc.communicate()}")


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out


def table(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM points ORDER BY point").fetchall()


def test_kill_and_resume_gives_the_rows_of_an_uninterrupted_run(tmp_path):
    (tmp_path / "tiny.csv").write_text("Layer, M, N, K,\nfc1, 64, 64, 64,\n")
    (tmp_path / "kill.yaml").write_text(KILL_SWEEP)
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    killed = start(tmp_path, "resumed")
    store = tmp_path / "resumed" / "sweep.sqlite"
    wait_for_rows(store, killed, 200)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    kept = rows(store)
    assert 200 <= kept < 2000
    reference = start(tmp_path, "reference")  # uninterrupted, meanwhile
    resumed = finish(start(tmp_path, "resumed"))
    assert f"2000 points, {kept} already stored, {2000 - kept} to run" in resumed
    assert f"simulated {2000 - kept}" in resumed  # only the missing points ran
    assert "simulated 2000" in finish(reference)
    assert table(store) == table(tmp_path / "reference" / "sweep.sqlite") and len(table(store)) == 2000
    assert (tmp_path / "resumed" / "sweep.csv").read_text() == (tmp_path / "reference" / "sweep.csv").read_text()
