"""GPU mechanisms calibrated by `sim/calibrate/chains.py` (small dependent kernels in graph replay):
a LayerNorm row block's latency, the bias epilogue of a linear in a chain, the larger graph gap of
GEMM kernels; and the measured chains agree with the model they calibrate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_gpu_regimes import _us

import sim
from sim.cost import hardware_record
from sim.cost.gpu import GK_GEMM, GK_LAYERNORM, GK_LINEAR
from sim.runtime import RuntimeConfig, expand
from sim.runtime.host import host_model
from workloads.builder import GraphBuilder


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


CHAINS = Path(__file__).resolve().parents[1] / "arch_configs" / "calibration" / "h200" / "chains" / "chains.csv"


def _layer_norm(arch, rows: int, width: int, hw=None) -> float:
    n = rows * width
    return _us(arch, hw, unit=1, words_in=n, words_out=n, elements=n, par=rows, gpu_kind=GK_LAYERNORM)


def test_few_row_layer_norm_is_one_blocks_latency(h200):
    g = h200.gpu
    latency = g.layernorm_block_us + 4 * 1152 / (g.layernorm_block_gbs * 1e3)  # a row of 1152: read + written
    assert _layer_norm(h200, 2, 1152) == pytest.approx(g.kernel_floor_us + latency, rel=0.01)
    off = hardware_record(h200).copy()
    off["gpu_layernorm_block_us"] = 0.0  # the throughput model alone
    assert _layer_norm(h200, 2, 1152) > 2 * _layer_norm(h200, 2, 1152, off)
    # many rows: the latency is hidden (within 0.1%)
    assert _layer_norm(h200, 1 << 16, 1152) == pytest.approx(_layer_norm(h200, 1 << 16, 1152, off), rel=1e-3)
    times = [_layer_norm(h200, r, 1152) for r in (2, 64, 512, 4096, 65536)]
    assert times == sorted(times)


def test_layer_norm_model_follows_the_measured_chains(h200):
    c = pd.read_csv(CHAINS)
    ln = c[(c.benchmark == "layer_norm") & (c.op == "layer_norm")]
    shapes = ln["shape"].str.split("x", expand=True).astype(int).to_numpy()
    model = np.array([_layer_norm(h200, r, w) for r, w in shapes])
    err = model / (ln.kernel_us.to_numpy(float) / 48) - 1
    assert np.median(np.abs(err)) < 0.06 and np.abs(err).max() < 0.2


def test_linear_with_bias_pays_the_epilogue(h200):
    def kinds(bias: bool) -> list[int]:
        b = GraphBuilder("t", stage="dit")
        b.linear("fc", b.input((512, 1152)), 1152, bias=bias)
        default = [{"unit": 0, "m": 512, "k": 1152, "n": 1152, "count": 1, "launches": 1}]
        return [k["gpu_kind"] for k in expand(b.graph["fc"], default, b.graph, RuntimeConfig())]

    assert kinds(True) == [GK_LINEAR] and kinds(False) == [GK_GEMM]
    shape = {"unit": 0, "m": 512, "k": 1152, "n": 1152}
    extra = _us(h200, **shape, gpu_kind=GK_LINEAR) - _us(h200, **shape, gpu_kind=GK_GEMM)
    assert extra == pytest.approx(h200.gpu.gemm_bias_us)  # a fixed cost: not derated by the power cap
    assert 0.3 < h200.gpu.gemm_bias_us < 1.5


def test_graph_gap_is_larger_after_a_gemm(h200):
    b = GraphBuilder("t", stage="dit")
    x = b.input((512, 1152))
    b.add("res", b.linear("fc", x, 1152), x)
    ops = [b.graph["fc"], b.graph["res"]]
    host = host_model(ops, np.array([1.0, 1.0]), h200.gpu, RuntimeConfig(mode="cuda_graph"))
    g = h200.gpu
    assert host.per_op_s == pytest.approx([(g.graph_gap_us + g.graph_gemm_gap_us) * 1e-6, g.graph_gap_us * 1e-6])
    assert g.graph_gemm_gap_us > 0.1


def test_chains_gaps_measured_per_kernel_class():
    """The committed chains: GEMM chains leave a larger gap per kernel than pointwise ones."""
    c = pd.read_csv(CHAINS)
    graph = c[~c.op.str.endswith("/eager")]
    gap = (graph.time_us - graph.kernel_us) / graph.launches
    linear = gap[(graph.benchmark == "linear") & (graph.op == "alone")]
    pointwise = gap[graph.benchmark.isin(["elementwise", "tiny"]) & (graph.kernel_us / graph.launches < 10)]
    assert linear.median() > pointwise.median() + 0.1
