"""ttvsim's stall-free systolic cycles equal the real SCALE-Sim 3.0.0's, on recorded runs.

`experiments/data/scalesim_reference.csv` was recorded by `experiments/validate_scalesim.py
--record` from SCALE-Sim itself; this test needs no SCALE-Sim install.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.systolic import gemm_cycles  # noqa: E402

REFERENCE = REPO / "experiments" / "data" / "scalesim_reference.csv"


def _load_layers() -> ModuleType:
    """experiments/ is not a package: import scalesim_layers.py by path."""
    spec = importlib.util.spec_from_file_location("scalesim_layers", REPO / "experiments" / "scalesim_layers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("scalesim_layers", module)
    spec.loader.exec_module(module)
    return module


LAYERS = _load_layers()
with REFERENCE.open(newline="") as f:
    ROWS = list(csv.DictReader(f))


def _dims(row: dict[str, str]) -> tuple[int, ...]:
    return tuple(int(row[k]) for k in ("M", "K", "N", "rows", "cols"))


def test_reference_covers_every_layer_dataflow_and_array() -> None:
    layers = {layer.name for layer in LAYERS.LAYERS}
    points = {(r["layer"], r["dataflow"], int(r["rows"]), int(r["cols"])) for r in ROWS}
    assert len(layers) >= 24
    assert len(points) >= 144
    expected = {(n, df, r, c) for n in layers for df in LAYERS.DATAFLOWS for r, c in LAYERS.ARRAYS}
    assert points == expected


def test_gemm_cycles_match_scalesim_exactly() -> None:
    mismatches = []
    for row in ROWS:
        ours = gemm_cycles(*_dims(row), row["dataflow"])
        if ours != int(row["scalesim_compute_cycles"]):
            mismatches.append(f"{row['layer']} MKN={_dims(row)[:3]} {row['rows']}x{row['cols']} {row['dataflow']}: "
                              f"SCALE-Sim {row['scalesim_compute_cycles']}, ttvsim {ours}")
    assert not mismatches, f"{len(mismatches)}/{len(ROWS)} differ:\n" + "\n".join(mismatches)


def test_stall_free_cycles_are_total_minus_stalls() -> None:
    """The recorded compute cycles are SCALE-Sim's own Total Cycles - Stall Cycles."""
    for row in ROWS:
        total, stalls = int(row["scalesim_total_cycles_with_stalls"]), int(row["scalesim_stall_cycles"])
        assert total - stalls == int(row["scalesim_compute_cycles"]), row["layer"]


def test_recorded_dims_agree_with_layer_definitions() -> None:
    for row in ROWS:
        layer = LAYERS.layer_by_name(row["layer"])
        assert layer.kind == row["kind"]
        assert layer.gemm_dims() == _dims(row)[:3], row["layer"]
