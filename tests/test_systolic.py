"""SCALE-Sim-compatible compute cycles: hand-checked cases and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.systolic import DATAFLOWS, gemm_cycles, gemm_cycles_batch


@pytest.mark.parametrize(
    ("m", "k", "n", "rows", "cols", "dataflow", "expected"),
    [
        # OS: ceil(8/4)*ceil(8/4) = 4 folds of K + R + C - 2 = 3 + 4 + 4 - 2 = 9 cycles
        (8, 3, 8, 4, 4, "os", 4 * 9 - 1),
        # WS: ceil(3/4)*ceil(8/4) = 2 folds of 2R + C + M - 2 = 8 + 4 + 8 - 2 = 18
        (8, 3, 8, 4, 4, "ws", 2 * 18 - 1),
        # IS: ceil(3/4)*ceil(8/4) = 2 folds of 2R + C + N - 2 = 8 + 4 + 8 - 2 = 18
        (8, 3, 8, 4, 4, "is", 2 * 18 - 1),
        # partial folds cost a full fold: M=5 on 4 rows -> 2 row folds
        (5, 16, 4, 4, 4, "os", 2 * (16 + 4 + 4 - 2) - 1),
        # M = 1 (a decode-like GEMV) on a 128x128 WS array
        (1, 4096, 4096, 128, 128, "ws", 32 * 32 * (256 + 128 + 1 - 2) - 1),
    ],
)
def test_hand_computed(m, k, n, rows, cols, dataflow, expected):
    assert gemm_cycles(m, k, n, rows, cols, dataflow) == expected


def test_dataflow_names_are_case_insensitive():
    assert gemm_cycles(8, 8, 8, 4, 4, "WS") == gemm_cycles(8, 8, 8, 4, 4, "ws")


@pytest.mark.parametrize("bad", [{"M": 0}, {"K": -1}, {"rows": 0}])
def test_rejects_non_positive(bad):
    args = {"M": 4, "K": 4, "N": 4, "rows": 4, "cols": 4} | bad
    with pytest.raises(ValueError, match="must be positive"):
        gemm_cycles(dataflow="os", **args)


def test_rejects_unknown_dataflow():
    with pytest.raises(ValueError, match="unknown dataflow"):
        gemm_cycles(4, 4, 4, 4, 4, "rs")


dims = st.integers(min_value=1, max_value=3000)
arrays = st.sampled_from([1, 2, 3, 8, 16, 32, 128, 256])


@settings(max_examples=300, deadline=None)
@given(m=dims, k=dims, n=dims, rows=arrays, cols=arrays, df=st.sampled_from(sorted(DATAFLOWS)))
def test_cycles_bound_macs_and_overlap_is_faster(m, k, n, rows, cols, df):
    plain = gemm_cycles(m, k, n, rows, cols, df)
    fast = gemm_cycles(m, k, n, rows, cols, df, overlap=True)
    assert plain + 1 >= math.ceil(m * k * n / (rows * cols))
    assert fast + 1 >= math.ceil(m * k * n / (rows * cols))
    assert fast <= plain


@settings(max_examples=100, deadline=None)
@given(m=dims, k=dims, n=dims, rows=arrays, cols=arrays)
def test_more_work_never_fewer_cycles(m, k, n, rows, cols):
    for df in DATAFLOWS:
        base = gemm_cycles(m, k, n, rows, cols, df)
        assert gemm_cycles(m + 1, k, n, rows, cols, df) >= base
        assert gemm_cycles(m, k + 1, n, rows, cols, df) >= base
        assert gemm_cycles(m, k, n + 1, rows, cols, df) >= base


def test_batch_matches_scalar():
    rng = np.random.default_rng(0)
    m, k, n = (rng.integers(1, 2000, size=50) for _ in range(3))
    for name, code in DATAFLOWS.items():
        batch = gemm_cycles_batch(m, k, n, 32, 16, code, False)
        assert list(batch) == [gemm_cycles(a, b, c, 32, 16, name) for a, b, c in zip(m, k, n)]
