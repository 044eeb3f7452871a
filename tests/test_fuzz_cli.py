"""Fuzz suite, part 2: command-line arguments and Python API arguments (see test_fuzz.py)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
from _fuzz import BASE, assert_input_error, assert_one_line_error

import sim
import workloads
from sim.arch.config import Arch
from workloads.errors import InputError

# --------------------------------------------------------------------------- command-line arguments

CLI_CASES: list[tuple[str, list[str], str]] = [
    ("no-command", [], "required"),
    ("bogus-command", ["bogus"], "invalid choice"),
    ("bogus-flag", ["--bogus"], ""),
    ("models-flag", ["models", "--bogus"], "unrecognized arguments: --bogus"),
    ("models-positional", ["models", "extra"], "unrecognized arguments"),
    ("archs-flag", ["archs", "--all"], "unrecognized arguments"),
    ("run-no-file", ["run"], "required"),
    ("run-two-files", ["run", "a.yaml", "b.yaml"], "unrecognized arguments"),
    ("run-out-no-value", ["run", "a.yaml", "--out"], "expected one argument"),
    ("run-bad-attention", ["run", "a.yaml", "--attention", "flash"], "invalid choice"),
    ("run-workers-zero", ["run", "a.yaml", "--workers", "0"], "--workers"),
    ("run-workers-text", ["run", "a.yaml", "--workers", "many"], "--workers"),
    ("run-workers-huge", ["run", "a.yaml", "--workers", "9" * 50], "--workers"),
    ("run-unknown-flag", ["run", "a.yaml", "--resolution", "5"], "unrecognized arguments"),
    ("describe-no-model", ["describe"], "required"),
    ("describe-unknown-model", ["describe", "sd16_unet"], "unknown model"),
    ("describe-mega-model", ["describe", "m" * 10**6], "unknown model"),
    ("describe-bad-yaml", ["describe", "sd15_unet", "--resolution", "{a"], "malformed YAML"),
    ("describe-bad-yaml-eq", ["describe", "sd15_unet", "--resolution={a"], "malformed YAML"),
    ("describe-no-value", ["describe", "sd15_unet", "--resolution"], "needs a value"),
    ("describe-value-is-flag", ["describe", "sd15_unet", "--resolution", "--batch", "1"], "needs a value"),
    ("describe-positional", ["describe", "sd15_unet", "512"], "unexpected argument"),
    ("describe-dashdash", ["describe", "sd15_unet", "--", "x"], "unexpected argument"),
    ("describe-empty-name", ["describe", "sd15_unet", "--=5"], ""),
    ("describe-space-name", ["describe", "sd15_unet", "--a b=5"], "bad option name"),
    ("describe-odd-name", ["describe", "sd15_unet", "--a.b=5"], "bad option name"),
    ("describe-twice", ["describe", "sd15_unet", "--batch", "1", "--batch", "2"], "given twice"),
    ("describe-typo", ["describe", "sd15_unet", "--resolutoin", "512"], "did you mean 'resolution'"),
    ("describe-negative", ["describe", "sd15_unet", "--resolution", "-512"], "must be positive"),
    ("describe-huge", ["describe", "sd15_unet", "--resolution", "9" * 5000], ""),
    ("describe-nan", ["describe", "sd15_unet", "--resolution", ".nan"], "expects an integer"),
    ("describe-deep", ["describe", "sd15_unet", "--resolution", "[" * 5000 + "]" * 5000], "nesting deeper"),
    ("describe-bool", ["describe", "sd15", "--cfg", "maybe"], "expects true or false"),
    ("describe-too-large", ["describe", "sd15_unet", "--batch", "4096", "--resolution", "16384"], "too large"),
    ("describe-config-missing", ["describe", "sd15_unet", "--config", "/nonexistent.json"], "not found"),
    ("describe-config-zero", ["describe", "sd15_unet", "--config", "/dev/zero"], "larger than 10 MB"),
    ("describe-choice", ["describe", "parti", "--size", "1t"], "unknown value for option 'size'"),
]


@pytest.mark.parametrize(("argv", "expect"), [pytest.param(a, e, id=i) for i, a, e in CLI_CASES])
def test_bad_command_line(capsys, argv, expect):
    assert_one_line_error(capsys, argv, expect)


def _out_cases(tmp: Path) -> list[tuple[str, str, str]]:
    (tmp / "file").write_text("x")
    (tmp / "store-folder" / "sweep.sqlite").mkdir(parents=True)
    return [
        ("dev-null-child", "/dev/null/x", "cannot create the output folder"),
        ("existing-file", str(tmp / "file"), "not a folder"),
        ("under-a-file", str(tmp / "file" / "sub"), "cannot create the output folder"),
        ("nul", str(tmp / "a\0b"), "cannot create the output folder"),
        ("proc", "/proc/ttvsim-out", "cannot create the output folder"),
    ]


@pytest.mark.parametrize("index", range(5))
def test_bad_output_folder_before_any_work(tmp_path, capsys, index):
    label, out, expect = _out_cases(tmp_path)[index]
    exp = tmp_path / "exp.yaml"
    exp.write_text(BASE)
    err = assert_one_line_error(capsys, ["run", str(exp), "--out", out], expect)
    assert "latency" not in err


def test_sweep_store_that_is_a_folder(tmp_path, capsys):
    _out_cases(tmp_path)
    exp = tmp_path / "exp.yaml"
    exp.write_text(BASE + "sweep: {arch.cores: [1, 2]}\n")
    assert_one_line_error(capsys, ["run", str(exp), "--out", str(tmp_path / "store-folder")], "sweep.sqlite")


def test_dask_without_a_sweep(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text(BASE)
    assert_one_line_error(capsys, ["run", str(exp), "--out", str(tmp_path / "o"), "--dask", "local"], "no `sweep`")


# --------------------------------------------------------------------------- Python API


@pytest.fixture(scope="module")
def graph() -> workloads.OpGraph:
    return workloads.build("sd15_unet", resolution=256)


@pytest.fixture(scope="module")
def arch() -> Arch:
    return sim.load_arch("os128")


LOAD_ARCH_CASES: list[tuple[str, tuple, dict, str]] = [
    ("overrides-string", ("h100",), {"overrides": "dram"}, "overrides: must be a nested mapping"),
    ("overrides-list", ("h100",), {"overrides": [("dram", 1)]}, "overrides: must be a nested mapping"),
    ("overrides-int-key", ("h100",), {"overrides": {1: 2}}, "keys must be strings"),
    ("overrides-section-int", ("h100",), {"overrides": {"dram": 5}}, "expected a mapping"),
    ("overrides-nan", ("h100",), {"overrides": {"dram": {"bandwidth_gbs": math.nan}}}, "finite"),
    ("overrides-bytes", ("h100",), {"overrides": {"energy": {"overrides": {"mac_pj": b"x"}}}}, "energy.overrides.mac_pj"),
    ("overrides-object", ("h100",), {"overrides": {"cores": object()}}, "overrides.cores"),
    ("overrides-set-in-list", ("h100",), {"overrides": {"energy": {"overrides": {"x": [{1}]}}}}, "[0]"),
    ("source-int", (123,), {}, "arch source must be"),
    ("source-none", (None,), {}, "arch source must be"),
    ("source-bytes", (b"os128",), {}, "arch source must be"),
    ("source-bool", (True,), {}, "arch source must be"),
    ("source-list", (["os128"],), {}, "arch source must be"),
    ("source-empty", ("",), {}, "arch source must be"),
    ("source-nul", ("os\x00128",), {}, "arch source must be"),
    ("source-unknown", ("os129",), {}, "unknown arch preset"),
    ("source-missing-file", ("/nonexistent/arch.yaml",), {}, "not found"),
    ("mapping-incomplete", ({"name": "x"},), {}, "missing required key"),
    ("mapping-nan", ({"name": "x", "frequency_mhz": math.nan},), {}, "frequency_mhz"),
]


@pytest.mark.parametrize(("args", "kwargs", "expect"), [pytest.param(a, k, e, id=i) for i, a, k, e in LOAD_ARCH_CASES])
def test_load_arch_bad_arguments(args, kwargs, expect):
    with pytest.raises(InputError) as exc:
        sim.load_arch(*args, **kwargs)
    assert_input_error(exc, expect)


SIMULATE_CASES: list[tuple[str, str, str, dict, str]] = [
    ("arch-string", "graph", "os128", {}, "arch must be an Arch"),
    ("arch-none", "graph", None, {}, "arch must be an Arch"),
    ("arch-dict", "graph", {"name": "x"}, {}, "arch must be an Arch"),
    ("graph-string", "sd15", "arch", {}, "graph must be an OpGraph"),
    ("graph-none", None, "arch", {}, "graph must be an OpGraph"),
    ("graph-list", [], "arch", {}, "graph must be an OpGraph"),
    ("attention-bad", "graph", "arch", {"attention": "flash"}, "unknown attention lowering 'flash'"),
    ("attention-int", "graph", "arch", {"attention": 1}, "attention must be one of"),
    ("fuse-string", "graph", "arch", {"fuse_elementwise": "yes"}, "fuse_elementwise must be"),
    ("arch-nan", "graph", "arch-nan", {}, "frequency_mhz"),
    ("arch-inf-dram", "graph", "arch-inf", {}, "bandwidth_gbs"),
]


@pytest.mark.parametrize(("g", "a", "kwargs", "expect"), [pytest.param(g, a, k, e, id=i) for i, g, a, k, e in SIMULATE_CASES])
def test_simulate_bad_arguments(graph, arch, g, a, kwargs, expect):
    values = {
        "graph": graph, "arch": arch,
        "arch-nan": dataclasses.replace(arch, frequency_mhz=math.nan),
        "arch-inf": dataclasses.replace(arch, dram=dataclasses.replace(arch.dram, bandwidth_gbs=math.inf)),
    }  # fmt: skip
    pick = lambda v: values.get(v, v) if isinstance(v, str) else v  # noqa: E731
    with pytest.raises(InputError) as exc:
        sim.simulate(pick(g), pick(a), **kwargs)
    assert_input_error(exc, expect)


@pytest.mark.parametrize(("name", "options", "expect"), [
    (5, {}, "unknown model"),
    (None, {}, "unknown model"),
    (["sd15"], {}, "unknown model"),
    ("sd15", {"resolution": math.nan}, "expects an integer"),
    ("sd15", {"bogus": 1}, "has no option"),
])  # fmt: skip
def test_build_bad_arguments(name, options, expect):
    with pytest.raises(InputError) as exc:
        workloads.build(name, **options)
    assert_input_error(exc, expect)


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


@pytest.mark.parametrize("argv", [["models"], ["--version"], ["describe", "sd15_text_encoder"]])
def test_full_stdout_is_one_line_exit_2(argv):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "sim", *argv], stdout=full, stderr=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr == "ttvsim: error: cannot write to standard output (No space left on device)\n"


def test_closed_stdout_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "models"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        check=False, preexec_fn=lambda: __import__("os").close(1),
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr == "ttvsim: error: standard output is closed\n"
