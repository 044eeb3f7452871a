"""The `ttvsim` command line: happy paths and one clear line + exit 2 for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.experiment.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "experiments" / "sd15_quickstart.yaml"

SMALL = """\
name: small
workload: {model: sd15, options: {resolution: 256, steps: 2, cfg: true}}
arch: os128
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_prints_summary_and_writes_tables(tmp_path, capsys):
    exp = write(tmp_path, SMALL)
    assert main(["run", str(exp), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    for word in ("small: sd15 on os128", "latency", "unet", "vae_decoder", "text_encoder", "conv", "attention"):
        assert word in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["latency_s"] > 0 and set(summary["by_stage"]) == {"text_encoder", "unet", "vae_decoder"}
    ops = (tmp_path / "out" / "ops.csv").read_text().splitlines()
    assert ops[0].startswith("op,kind,op_class,stage") and len(ops) > 500


def test_quickstart_experiment_is_valid():
    from sim.experiment import load_experiment

    exp = load_experiment(QUICKSTART)
    assert exp.workload.model == "sd15" and exp.load_arch().name == "os128"


def test_attention_override(tmp_path, capsys):
    exp = write(tmp_path, SMALL)
    assert main(["run", str(exp), "--out", str(tmp_path / "o"), "--attention", "unfused"]) == 0
    assert "attention unfused" in capsys.readouterr().out


def test_describe(capsys):
    assert main(["describe", "sd15_unet", "--resolution", "512"]) == 0
    text = capsys.readouterr().out
    assert "859,520,964 parameters" in text
    assert "attention profile" in text and "4096" in text and "77" in text


def test_models_and_archs(capsys):
    assert main(["models"]) == 0
    assert "sd15_unet" in capsys.readouterr().out
    assert main(["archs"]) == 0
    assert "tpu_v1" in capsys.readouterr().out


BAD = [
    ("workload: {model: sd15\n", "malformed YAML: line"),
    ("- a\n- b\n", "expected a mapping at the top level"),
    (SMALL + "colour: red\n", "unknown key 'colour'"),
    (SMALL.replace("workload:", "workloud:"), "unknown key 'workloud' (did you mean 'workload'?)"),
    (SMALL.replace("model: sd15", "model: sd15x"), "unknown model 'sd15x' (did you mean 'sd15'?)"),
    (SMALL.replace("steps: 2", "stpes: 2"), "has no option 'stpes' (did you mean 'steps'?)"),
    (SMALL.replace("steps: 2", "steps: -3"), "option 'steps' must be positive"),
    (SMALL.replace("steps: 2", "steps: many"), "option 'steps' expects an integer"),
    (SMALL.replace("arch: os128", "arch: os12"), "unknown arch preset 'os12' (did you mean 'os128'?)"),
    (SMALL.replace("arch: os128", "arch: missing.yaml"), "arch file 'missing.yaml' not found"),
    (SMALL + "arch_overrides: {array: {dataflow: rs}}\n", "array.dataflow: unknown value 'rs'"),
    (SMALL + "arch_overrides: {array: {rows: 0}}\n", "array.rows: must be positive"),
    (SMALL + "arch_overrides: {sram: {ofmap_kb: 8}}\n", "cannot hold a double-buffered 128x128 OS stationary tile"),
    (SMALL + "simulation: {attention: flash}\n", "simulation.attention: unknown value 'flash'"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_experiments_exit_2_with_one_line(tmp_path, capsys, text, message):
    exp = write(tmp_path, text)
    assert main(["run", str(exp), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("ttvsim: error: ") and err.count("\n") == 1
    assert str(exp) in err or "arch" in err


def test_missing_experiment_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


def test_describe_bad_option(capsys):
    assert main(["describe", "sd15_unet", "--resolutoin", "512"]) == 2
    assert "did you mean 'resolution'" in capsys.readouterr().err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    exp = write(tmp_path, SMALL.replace("model: sd15", "model: nope"))
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(exp)], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown model 'nope'" in proc.stderr


def test_topology_path_resolves_against_the_experiment(tmp_path, capsys):
    (tmp_path / "layers.csv").write_text("Layer, M, N, K,\nfc1, 64, 32, 16,\nfc2, 64, 16, 32,\n")
    exp = write(tmp_path, "name: topo\nworkload: {model: scalesim_topology, options: {path: layers.csv, format: gemm}}\narch: edge\n")
    assert main(["run", str(exp), "--out", str(tmp_path / "out")]) == 0
    assert "topo: " in capsys.readouterr().out


def test_unusable_output_fails_before_the_simulation(tmp_path, capsys):
    exp = write(tmp_path, SMALL)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out, message in [(blocker / "sub", "cannot create the output folder"), (blocker, "exists and is not a folder")]:
        assert main(["run", str(exp), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""  # refused before anything ran
        assert message in captured.err and captured.err.count("\n") == 1


def test_version(capsys):
    from sim.version import code_digest, version

    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"ttvsim {version()} (code {code_digest()})" and len(code_digest()) == 16


def test_internal_error_is_one_line_and_exit_1(monkeypatch, capsys):
    from sim.results import report

    def broken() -> str:
        raise KeyError("boom")

    monkeypatch.setattr(report, "archs_text", broken)
    monkeypatch.delenv("TTVSIM_DEBUG", raising=False)
    assert main(["archs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ttvsim: internal error (KeyError: 'boom'), please report") and err.count("\n") == 1
    monkeypatch.setenv("TTVSIM_DEBUG", "1")
    assert main(["archs"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_closed_stdout_still_writes_every_file_and_exits_141(tmp_path):
    """`ttvsim run X | head -1`: the reader is gone before the first line; files are complete."""
    exp = write(tmp_path, SMALL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(exp), "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    proc.stdout.close()  # like `head` exiting before ttvsim prints
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == ""
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"ops.csv", "kernels.csv", "summary.json", "trace.json"} <= names
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["latency_s"] > 0


def test_closed_stdout_sweep_finishes_and_writes_csv(tmp_path):
    text = SMALL + "sweep:\n  arch.dram.bandwidth_gbs: [256, 512]\n  workload.options.steps: [1, 2]\n"
    exp = write(tmp_path, text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(exp), "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == ""
    rows = (tmp_path / "out" / "sweep.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header and every point, both workload groups


@pytest.mark.parametrize(("override", "key"), [
    ("frequency_mhz: .nan", "arch_overrides.frequency_mhz"),
    ("dram: {bandwidth_gbs: .inf}", "arch_overrides.dram.bandwidth_gbs"),
    ("array: {rows: -4}", "arch_overrides.array.rows"),
    ("dram: {bandwith_gbs: 5}", "arch_overrides.dram"),
])  # fmt: skip
def test_bad_override_names_the_experiment_and_key(tmp_path, capsys, override, key):
    """A bad arch override is the experiment's mistake: the error names its file and key, not the preset's."""
    exp = write(tmp_path, SMALL + f"arch_overrides: {{{override}}}\n")
    assert main(["run", str(exp), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{exp}: {key}" in err and "os128.yaml" not in err
