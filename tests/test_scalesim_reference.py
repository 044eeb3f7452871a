"""ttvsim's stall-free systolic cycles equal the real SCALE-Sim 3.0.0's, on recorded runs.

`experiments/data/scalesim_reference.csv` (dense) and `scalesim_sparse_reference.csv` (layer-wise
N:M, `SparsitySupport = true`) were recorded by `experiments/validate_scalesim.py --record` from
SCALE-Sim itself; this test needs no SCALE-Sim install.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.systolic import condensed_k, gemm_cycles, nm_ratio, sparse_filter_storage  # noqa: E402

REFERENCE = REPO / "experiments" / "data" / "scalesim_reference.csv"
SPARSE_REFERENCE = REPO / "experiments" / "data" / "scalesim_sparse_reference.csv"


def _load_layers() -> ModuleType:
    """experiments/ is not a package: import scalesim_layers.py by path."""
    spec = importlib.util.spec_from_file_location("scalesim_layers", REPO / "experiments" / "scalesim_layers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("scalesim_layers", module)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


LAYERS = _load_layers()
ROWS = _read(REFERENCE)
SPARSE_ROWS = _read(SPARSE_REFERENCE)


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


# -- sparse N:M ---------------------------------------------------------------------------------
def _sparse_case(row: dict[str, str]) -> str:
    return f"{row['layer']} {row['ratio']} {row['rows']}x{row['cols']} {row['dataflow']} {row['format']}"


def test_sparse_reference_covers_every_case() -> None:
    cases = {(c.layer, c.ratio, c.rows, c.cols, c.dataflow, c.format) for c in LAYERS.sparse_cases()}
    recorded = {(r["layer"], r["ratio"], int(r["rows"]), int(r["cols"]), r["dataflow"], r["format"]) for r in SPARSE_ROWS}
    assert recorded == cases and len(SPARSE_ROWS) == len(cases) >= 200
    assert {r["ratio"] for r in SPARSE_ROWS} >= {"1:4", "2:4", "3:4"}
    assert {r["dataflow"] for r in SPARSE_ROWS} == set(LAYERS.DATAFLOWS)
    assert {r["format"] for r in SPARSE_ROWS} == {"ellpack_block", "csr", "csc"}
    assert len({(r["rows"], r["cols"]) for r in SPARSE_ROWS}) >= 3


def test_sparse_compute_cycles_match_scalesim_exactly() -> None:
    bad = []
    for row in SPARSE_ROWS:
        ours = gemm_cycles(*_dims(row), row["dataflow"], sparsity=row["ratio"])
        if ours != int(row["scalesim_compute_cycles"]):
            bad.append(f"{_sparse_case(row)}: SCALE-Sim {row['scalesim_compute_cycles']}, ttvsim {ours}")
    assert not bad, f"{len(bad)}/{len(SPARSE_ROWS)} differ:\n" + "\n".join(bad)


def test_sparse_condensed_reduction_matches_scalesim() -> None:
    for row in SPARSE_ROWS:
        assert condensed_k(int(row["K"]), *nm_ratio(row["ratio"])) == int(row["scalesim_condensed_k"]), _sparse_case(row)


def test_sparse_filter_storage_matches_scalesim_exactly() -> None:
    bad = []
    for row in SPARSE_ROWS:
        s = sparse_filter_storage(int(row["K"]), int(row["N"]), row["ratio"], row["format"])
        ours = (s.original, s.new, s.metadata)
        ref = tuple(float(row[f"scalesim_{k}"]) for k in ("original_filter_storage", "new_filter_storage",
                                                           "filter_metadata_storage"))
        if ours != ref:
            bad.append(f"{_sparse_case(row)}: SCALE-Sim {ref}, ttvsim {ours}")
    assert not bad, f"{len(bad)}/{len(SPARSE_ROWS)} differ:\n" + "\n".join(bad)


def test_sparse_one_to_one_is_dense() -> None:
    """SCALE-Sim's sparse mode at 1:1 runs the dense GEMM: the dense formula's cycles."""
    for row in (r for r in SPARSE_ROWS if r["ratio"] == "1:1"):
        assert int(row["scalesim_compute_cycles"]) == gemm_cycles(*_dims(row), row["dataflow"]), _sparse_case(row)
