"""SCALE-Sim-compatible compute cycles: hand-checked cases and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.systolic import DATAFLOWS, condensed_k, gemm_cycles, gemm_cycles_batch, sparse_filter_storage


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


# -- layer-wise N:M sparsity (SCALE-Sim 3.0) ----------------------------------------------------
ratios = st.integers(min_value=1, max_value=16).flatmap(lambda m: st.tuples(st.integers(1, m), st.just(m)))


@pytest.mark.parametrize(
    ("m", "k", "n", "rows", "cols", "dataflow", "ratio", "expected"),
    [
        # K' = 8*2 + min(2, 33 % 4) = 17; OS: 3*3 folds of 17 + 8 + 8 - 2 = 31 (SCALE-Sim: 278)
        (17, 33, 19, 8, 8, "os", "2:4", 9 * 31 - 1),
        # WS: ceil(17/8)*ceil(19/8) = 9 folds of 2*8 + 8 + 17 - 2 = 39 (SCALE-Sim: 350)
        (17, 33, 19, 8, 8, "ws", "2:4", 9 * 39 - 1),
        # K' = 8*3 + min(3, 1) = 25; IS: ceil(25/8)*ceil(17/8) = 12 folds of 16 + 8 + 19 - 2 = 41 (SCALE-Sim: 491)
        (17, 33, 19, 8, 8, "is", "3:4", 12 * 41 - 1),
        # GEMV, 1:4: K' = 10, OS: 1*3 folds of 10 + 14 = 24 (SCALE-Sim: 71)
        (1, 40, 24, 8, 8, "os", "1:4", 3 * 24 - 1),
    ],
)
def test_sparse_hand_computed(m, k, n, rows, cols, dataflow, ratio, expected):
    assert gemm_cycles(m, k, n, rows, cols, dataflow, sparsity=ratio) == expected


@settings(max_examples=200)
@given(k=dims, nm=ratios)
def test_condensed_k_bounds(k, nm):
    n, m = nm
    kc = condensed_k(k, n, m)
    assert math.ceil(k * n / m) <= kc <= k
    if k % m == 0:
        assert kc == k * n // m
    assert condensed_k(np.array([k]), n, m)[0] == kc


@settings(max_examples=150)
@given(m=dims, k=dims, n=dims, rows=arrays, cols=arrays, nm=ratios)
def test_sparse_never_slower_and_monotone_in_n(m, k, n, rows, cols, nm):
    nz, blk = nm
    for df in DATAFLOWS:
        dense = gemm_cycles(m, k, n, rows, cols, df)
        sparse = gemm_cycles(m, k, n, rows, cols, df, sparsity=(nz, blk))
        assert sparse <= dense
        assert gemm_cycles(m, k, n, rows, cols, df, sparsity=f"{blk}:{blk}") == dense
        if nz < blk:
            assert gemm_cycles(m, k, n, rows, cols, df, sparsity=(nz + 1, blk)) >= sparse


def test_sparse_not_monotone_in_ratio_across_block_sizes():
    """A short last block keeps min(N, K mod M) values: at K = 3, 3:7 (0.43) keeps 3, 1:2 keeps 2."""
    assert condensed_k(3, 3, 7) == 3 > condensed_k(3, 1, 2) == 2


@pytest.mark.parametrize("bad", ["5:4", "0:4", "2", "a:b", (3, 2)])
def test_sparse_rejects_bad_ratios(bad):
    with pytest.raises(ValueError, match="N:M"):
        gemm_cycles(8, 8, 8, 4, 4, "os", sparsity=bad)


def test_filter_storage_formats():
    # K = 33, N = 19, 2:4: 17 x 19 = 323 nonzeros (SCALE-Sim SPARSE_REPORT values)
    ell = sparse_filter_storage(33, 19, "2:4", "ellpack_block")
    assert (ell.original, ell.data, ell.metadata, ell.new, ell.metadata_bits) == (627, 323, 20.1875, 343.1875, 646)
    csr = sparse_filter_storage(33, 19, "2:4", "csr")
    assert (csr.data, csr.metadata, csr.new) == (323, 323 + 34, 680)  # a column index per value, K + 1 row pointers
    csc = sparse_filter_storage(33, 19, "2:4", "csc")
    assert (csc.metadata, csc.new) == (323 + 20, 666)  # a row index per value, N + 1 column pointers
    assert sparse_filter_storage(33, 19, None, "dense").new == 627
    assert sparse_filter_storage(33, 19, "1:1", "ellpack_block").new == 627  # log2(1) = 0 metadata bits
    with pytest.raises(ValueError, match="unknown filter storage format"):
        sparse_filter_storage(33, 19, "2:4", "rle")
