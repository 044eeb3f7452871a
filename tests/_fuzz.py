"""Shared helpers of the fuzz suites: one-line error assertions and an experiment runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.experiment.cli import main
from workloads.errors import InputError

BASE = "name: fuzz\nworkload: {model: sd15, options: {resolution: 256, steps: 2}}\narch: os128\n"
MAX_LINE = 2100  # InputError caps its message at 2000 characters; "ttvsim: error: " on top


# --------------------------------------------------------------------------- helpers


def assert_one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], expect: str = "") -> str:
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit {code}; stderr: {err[:300]!r}"
    assert err.startswith("ttvsim: error: ") and err.endswith("\n") and err.count("\n") == 1, err[:300]
    assert "Traceback" not in err and len(err) < MAX_LINE
    assert expect.lower() in err.lower(), err[:300]
    return err


def assert_input_error(exc: pytest.ExceptionInfo[InputError], expect: str = "") -> None:
    message = str(exc.value)
    assert "\n" not in message and len(message) < MAX_LINE
    assert expect.lower() in message.lower(), message[:300]


def run_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str | bytes, expect: str = "") -> str:
    path = tmp_path / "exp.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return assert_one_line_error(capsys, ["run", str(path), "--out", str(tmp_path / "out")], expect)
