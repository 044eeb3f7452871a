"""Runtime (software-stack) models and GPU kernel costs (sim.runtime, sim.cost.gpu)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.arch.gpu import GpuConfig
from sim.cost import KERNEL, evaluate, hardware_record
from sim.cost.gpu import GK_ACT_TRANSPOSE, GK_ATTN_CUDNN, GK_BROADCAST, GK_CONV, GK_GEMM, GK_WEIGHT_TRANSPOSE
from sim.runtime import RuntimeConfig, expand
from workloads.builder import GraphBuilder
from workloads.errors import InputError
from workloads.ir import numel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


def _graph(build):
    b = GraphBuilder("t", stage="unet")
    build(b)
    return b.graph


def _conv_graph(b):
    x = b.input((2, 320, 64, 64))
    b.conv("conv", x, 320, 3)


def _kernels(result, op):
    k = result.kernels
    return k[k.op == op]


def _record(**fields):
    rec = np.zeros(1, dtype=KERNEL)
    for name, value in fields.items():
        rec[name] = value
    return rec


def _gemm_cycles(arch, m, k, n, count=1, gk=GK_GEMM):
    out = evaluate(_record(unit=0, m=m, k=k, n=n, count=count, a_dram=1, b_dram=1, c_dram=1, gpu_kind=gk, mac_dtype=-1),
                   hardware_record(arch))  # fmt: skip
    return float(out["compute_cycles"][0] - arch.gpu.gemm_fixed_us * arch.frequency_mhz)


def test_nchw_conv_is_conv_three_transposes_and_bias(h200):
    graph = _graph(_conv_graph)
    nchw = sim.simulate(graph, h200, runtime="eager")
    last = sim.simulate(graph, h200, runtime={"mode": "eager", "conv_layout": "channels_last"})
    kn, kl = _kernels(nchw, "conv"), _kernels(last, "conv")
    assert len(kn) == 5 and len(kl) == 2
    # the conv kernel itself costs the same in both layouts; NCHW adds exactly the 3 transposes
    busy = lambda k: (k.compute_cycles + k.stall_cycles).to_numpy()  # noqa: E731
    op_busy = lambda r: float((r.ops.compute_cycles + r.ops.stall_cycles).sum())  # noqa: E731
    assert busy(kn)[2] == busy(kl)[0] and busy(kn)[4] == busy(kl)[1]
    assert op_busy(nchw) == pytest.approx(busy(kn).sum()) and op_busy(last) == pytest.approx(busy(kl).sum())
    op = graph.ops()[0]
    kinds = [k["gpu_kind"] for k in expand(op, [{"unit": 0, "m": 1, "k": 1, "n": 1}], graph, RuntimeConfig())]
    assert kinds == [GK_ACT_TRANSPOSE, GK_WEIGHT_TRANSPOSE, GK_CONV, GK_ACT_TRANSPOSE, GK_BROADCAST]
    # weight transposes move the whole filter, on every call
    assert kn.iloc[1].dram_read_bytes == 320 * 320 * 9 * 2


def _chain(b):
    x = b.input((2, 1280))
    for i in range(20):  # small kernels: an eager host cannot keep up with them
        x = b.activation(f"act{i}", x, "silu")


def test_graph_replay_removes_host_gaps(h200):
    graph = _graph(_chain)
    eager = sim.simulate(graph, h200, runtime="eager")
    replay = sim.simulate(graph, h200, runtime="cuda_graph")
    hz = h200.frequency_mhz * 1e6
    # small kernels: each also runs graph_small_kernel_us longer than launched eagerly
    gap = (20 * (h200.gpu.graph_gap_us + h200.gpu.graph_small_kernel_us) + h200.gpu.graph_launch_us) * 1e-6
    assert replay.ops.launch_cycles.sum() / hz == pytest.approx(gap)
    # eager: the device waits for the host's dispatch of every op (9.64 us per SiLU)
    assert eager.latency_s >= 20 * h200.gpu.eager_op_us["activation"] * 1e-6
    assert eager.ops.launch_cycles.sum() > 10 * replay.ops.launch_cycles.sum()


def test_waves_quantize_over_sms(h200):
    t, sms = h200.gpu.gemm_tile, h200.cores
    m = t // 2  # exactly the smallest tile (t/2 x t)
    one = _gemm_cycles(h200, m, 4096, t, count=sms, gk=GK_CONV)  # exactly one wave of tiles
    assert _gemm_cycles(h200, m, 4096, t, count=sms + 1, gk=GK_CONV) == pytest.approx(2 * one)
    assert _gemm_cycles(h200, m, 4096, t, count=2 * sms, gk=GK_CONV) == pytest.approx(2 * one)


def test_stream_k_spreads_a_partial_wave(h200):
    t, sms = h200.gpu.gemm_tile, h200.cores
    one = _gemm_cycles(h200, t // 2, 4096, t, count=sms, gk=GK_CONV)
    streamed = _gemm_cycles(h200, t // 2, 4096, t, count=sms + 1)  # cuBLAS: iterations spread evenly
    assert one * (sms + 1) / sms <= streamed < 1.5 * one  # whole tiles: 2 waves (+ the partial-tile fix-up)
    assert _gemm_cycles(h200, t // 2, 4096, t, count=sms) == pytest.approx(one)  # whole waves: no stream-K


def test_split_k_when_tiles_are_few(h200):
    t, k = h200.gpu.gemm_tile, 8192
    rate = h200.array.rows * h200.array.cols * h200.array.count * h200.gpu.gemm_efficiency
    one_tile_whole_k = t * t * k / rate
    assert _gemm_cycles(h200, t, k, t) < one_tile_whole_k / 8


@pytest.mark.parametrize(("d", "padded"), [(40, 64), (64, 64), (72, 128), (80, 128), (160, 192)])
def test_head_dim_padding(d, padded):
    def build(b):
        q = b.input((2, 4096, 8 * d))
        b.attention("attn", q, q, q, heads=8)

    graph = _graph(build)
    (kernel,) = expand(graph.ops()[0], [{}, {}, {}], graph, RuntimeConfig())
    assert kernel["gpu_kind"] == GK_ATTN_CUDNN and kernel["k"] == padded


def _gn_silu(b):
    x = b.input((2, 320, 64, 64))
    y = b.group_norm("norm", x)
    b.activation("act", y, "silu")


def test_group_norm_is_three_kernels_with_block_parallel_statistics(h200):
    graph = _graph(_gn_silu)
    r = sim.simulate(graph, h200, runtime="cuda_graph")
    k = _kernels(r, "norm")
    assert len(k) == 3
    stats = k.iloc[0]
    g = h200.gpu
    block = g.gn_block_us * 1e-6 + 2 * 320 * 64 * 64 * 2 / (2 * 32) / (g.gn_block_gbs * 1e9)  # N x groups blocks
    assert stats.stall_cycles / (h200.frequency_mhz * 1e6) == pytest.approx(block)


def test_group_norm_statistics_slow_down_on_large_inputs(h200):
    """groupnorm.csv: one block's rate falls ~45% once the input passes ~18.5 MB (21 MB and above)."""
    from test_gpu_regimes import _us

    from sim.cost.gpu import GK_GN_STATS

    g = h200.gpu

    def stats_us(mb: float) -> float:
        words = int(mb * 1e6 / 2)
        return _us(h200, unit=1, words_in=words, words_out=0, elements=words, par=32, gpu_kind=GK_GN_STATS)

    below, above = stats_us(g.gn_far_from_mb * 0.99), stats_us(g.gn_far_from_mb * 1.01)
    assert above / below == pytest.approx(1.01 / 0.99 * g.gn_block_gbs / g.gn_block_far_gbs, rel=0.01)
    assert 1.5 < g.gn_block_gbs / g.gn_block_far_gbs < 2.0


def test_compiled_fuses_pointwise_into_the_norm(h200):
    graph = _graph(_gn_silu)
    replay = sim.simulate(graph, h200, runtime="cuda_graph")
    compiled = sim.simulate(graph, h200, runtime="compiled_graph")
    launches = lambda r: int(r.ops.kernels.sum())  # noqa: E731
    assert launches(replay) == 4 and launches(compiled) == 3
    act = _kernels(compiled, "act").iloc[0]
    assert act.dram_read_bytes == 0  # the norm's output never leaves the chip
    assert compiled.latency_s < replay.latency_s


def test_layer_norm_costs_per_row(h200):
    def build(rows):
        return lambda b: b.layer_norm("ln", b.input((rows, 320)))

    # many rows: throughput-bound (a row block's latency, test_gpu_chains.py, is hidden)
    few, many = (sim.simulate(_graph(build(n)), h200, runtime="cuda_graph") for n in (1 << 16, 1 << 17))
    extra = (many.ops.stall_cycles.sum() - few.ops.stall_cycles.sum()) / (h200.frequency_mhz * 1e6)
    per_row = h200.gpu.layernorm_row_ns * 1e-9 + 320 * 2 * 2 / (h200.gpu.bandwidth_gbs["layernorm"] * 1e9)
    assert extra == pytest.approx((1 << 16) * per_row, rel=1e-3)


def test_runtime_unset_is_unchanged(h200):
    import workloads

    graph = workloads.build("sd15_unet", resolution=256, batch=1)
    bare = dataclasses.replace(h200, gpu=GpuConfig())
    a, b = sim.simulate(graph, h200), sim.simulate(graph, bare)
    assert a.latency_s == b.latency_s
    assert (a.ops.cycles.to_numpy() == b.ops.cycles.to_numpy()).all()


def test_runtime_needs_a_gpu_arch():
    graph = _graph(_conv_graph)
    with pytest.raises(InputError, match="no gpu section"):
        sim.simulate(graph, sim.load_arch("os128"), runtime="eager")
    with pytest.raises(InputError, match="mode"):
        sim.simulate(graph, sim.load_arch("h200"), runtime="eagre")


def test_unfused_attention_launches_diffusers_kernels(h200):
    def build(b):
        q = b.input((2, 1024, 640))
        b.attention("attn", q, q, q, heads=8)

    graph = _graph(build)
    r = sim.simulate(graph, h200, attention="unfused", runtime="cuda_graph")
    k = _kernels(r, "attn")
    assert list(k.unit) == ["move"] * 3 + ["gemm", "vector", "gemm", "move"]
    assert k.iloc[4].dram_write_bytes == 2 * 8 * 1024 * 1024 * 2  # the fp16 scores
    assert numel(graph.ops()[0].output) == 2 * 1024 * 640


def test_preset_constants_come_from_the_microbenchmarks(h200):
    spec = importlib.util.spec_from_file_location("derive", ROOT / "experiments" / "gpu" / "derive_constants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gpu = h200.gpu
    for name, (value, _source) in module.derive().items():
        if name == "event_overhead_us":
            continue
        if "." in name:
            field, key = name.split(".")
            assert getattr(gpu, field)[key] == pytest.approx(value), name
        elif name.removesuffix("_gbs") in gpu.bandwidth_gbs:
            assert gpu.bandwidth_gbs[name.removesuffix("_gbs")] == pytest.approx(value), name
        else:
            assert getattr(gpu, name) == pytest.approx(value), name


def test_group_norm_statistics_follow_the_microbenchmark(h200):
    """groupnorm.csv statistics kernels (profiled) against the model, all rows (few and many blocks)."""
    from test_gpu_regimes import _us

    from sim.cost.gpu import GK_GN_STATS

    gn = pd.read_csv(ROOT / "arch_configs" / "calibration" / "h200" / "groupnorm.csv")
    words = (gn.N * gn.C * gn.H * gn.W).to_numpy()
    model = np.array([_us(h200, unit=1, words_in=int(w), words_out=0, elements=int(w), par=int(b), gpu_kind=GK_GN_STATS)
                      for w, b in zip(words, gn.blocks)])  # fmt: skip
    err = np.abs(model / gn.stats_us.to_numpy(float) - 1)
    assert np.median(err) < 0.1 and np.median(err[gn.blocks.to_numpy() <= 128]) < 0.1
