"""diffusers' unfused attention chained in a CUDA graph (`unfused/unfused.csv`, measured for
validation only: no constant comes from it): the runtime model of the step (head copies, baddbmm,
softmax, bmm, merge copy) against the measured kernels, and graph replay against eager launch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from workloads.builder import GraphBuilder

ROOT = Path(__file__).resolve().parents[1]
UNFUSED = ROOT / "arch_configs" / "calibration" / "h200" / "unfused" / "unfused.csv"
STEPS = 12  # sim/calibrate/unfused.py LENGTH


def _step_us(frame: pd.DataFrame) -> np.ndarray:
    """Kernel time per step, without the chain's own `z * 1.0` multiplies (vectorized kernels)."""
    sys.path.insert(0, str(ROOT / "experiments" / "gpu"))
    from derive_constants import chain_kernel_us

    mul = frame.kernels.map(
        lambda ks: sum(float(i.rpartition("=")[2].removesuffix("us")) for i in ks.split(";") if "vectorized_elementwise" in i)
    )  # fmt: skip
    return (chain_kernel_us(frame, STEPS) - mul / STEPS).to_numpy()


def test_unfused_attention_model_follows_the_graph_replay():
    h200 = sim.load_arch("h200")
    rows = pd.read_csv(UNFUSED)
    graph = rows[~rows.op.str.endswith("/eager")]
    for shape, measured in zip(graph["shape"], _step_us(graph)):
        b, s, heads, d = map(int, shape.split("x"))
        g = GraphBuilder("t", stage="dit")
        x = g.input((b, s, heads * d))
        g.attention("attn", x, x, x, heads)
        k = sim.simulate(g.graph, h200, attention="unfused", runtime="cuda_graph").kernels
        model = float(((k.compute_cycles + k.stall_cycles) * k.repeat).sum()) / h200.frequency_mhz
        assert model == pytest.approx(measured, rel=0.08), shape


def test_graph_replay_runs_the_unfused_kernels_as_eagerly():
    rows = pd.read_csv(UNFUSED)
    graph = rows[~rows.op.str.endswith("/eager")].set_index("shape")
    eager = rows[rows.op.str.endswith("/eager")].set_index("shape")
    assert np.allclose(graph.kernel_us, eager.kernel_us.loc[graph.index], rtol=0.02)
    small = graph.loc["2x256x16x72"]
    assert 0.1 < (small.time_us - small.kernel_us) / small.launches < 0.4  # the gap per launch of a short step


def test_unfused_family_runs_on_the_cpu_harness(tmp_path):
    pytest.importorskip("torch")
    from sim.calibrate import main

    assert main(["--out", str(tmp_path), "--families", "unfused", "--device", "cpu"]) == 0
    rows = pd.read_csv(tmp_path / "unfused.csv")
    assert list(rows.op) == ["attention_step/eager"] and rows.launches.iloc[0] > 0
