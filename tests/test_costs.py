"""Invariants of the memory, vector and engine cost models (property-based where it matters)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import workloads
from sim import engine
from sim.systolic import gemm_cycles
from workloads import GraphBuilder


def gemm_graph(m: int, k: int, n: int):
    b = GraphBuilder("gemm", stage="s")
    b.linear("fc", b.input((m, k)), n, bias=False)
    return b.build()


def attention_graph(batch: int, lq: int, lk: int, heads: int, d: int):
    b = GraphBuilder("attn", stage="s")
    q = b.input((batch, lq, heads * d))
    kv = b.input((batch, lk, heads * d))
    b.attention("attn", q, kv, kv, heads)
    return b.build()


def arch(rows=16, cols=16, dataflow="os", sram=64, bw=16.0, cores=1, count=1, **extra):
    return sim.load_arch(
        {
            "name": "t",
            "frequency_mhz": 1000,
            "word_bytes": 2,
            "cores": cores,
            "array": {"rows": rows, "cols": cols, "dataflow": dataflow, "count": count},
            "sram": {"ifmap_kb": sram, "filter_kb": sram, "ofmap_kb": sram},
            "dram": {"bandwidth_gbs": bw},
            "vector": {"lanes": 16},
            **extra,
        }
    )


dims = st.integers(1, 600)
dataflows = st.sampled_from(["os", "ws", "is"])
sizes = st.sampled_from([8, 16, 32])


@settings(max_examples=60, deadline=None)
@given(m=dims, k=dims, n=dims, df=dataflows, size=sizes)
def test_compute_cycles_are_scalesim_and_bound_macs(m, k, n, df, size):
    a = arch(size, size, df)
    row = sim.simulate(gemm_graph(m, k, n), a).ops.iloc[0]
    assert row["compute_cycles"] == gemm_cycles(m, k, n, size, size, df)
    assert row["cycles"] >= m * k * n / (size * size) - 1
    assert row["stall_cycles"] >= 0
    # every operand is read from DRAM at least once and the output written once
    assert row["dram_read_bytes"] >= 2 * (m * k + k * n)
    assert row["dram_write_bytes"] >= 2 * m * n


@settings(max_examples=60, deadline=None)
@given(m=dims, k=dims, n=dims, df=dataflows, bw=st.floats(0.5, 64), factor=st.floats(1.0, 8.0))
def test_more_bandwidth_never_slower(m, k, n, df, bw, factor):
    g = gemm_graph(m, k, n)
    slow = sim.simulate(g, arch(dataflow=df, bw=bw)).latency_s
    fast = sim.simulate(g, arch(dataflow=df, bw=bw * factor)).latency_s
    assert fast <= slow * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(m=dims, k=dims, n=dims, df=dataflows, kb=st.sampled_from([2, 4, 16, 64, 256]), factor=st.sampled_from([1, 2, 4, 16]))
def test_larger_sram_never_slower_and_never_more_traffic(m, k, n, df, kb, factor):
    g = gemm_graph(m, k, n)
    small = sim.simulate(g, arch(8, 8, df, sram=kb, bw=4.0))
    big = sim.simulate(g, arch(8, 8, df, sram=kb * factor, bw=4.0))
    assert big.latency_s <= small.latency_s * (1 + 1e-12)
    assert big.summary()["dram_bytes"] <= small.summary()["dram_bytes"]


def test_small_sram_refetches_operands():
    g = gemm_graph(512, 512, 512)
    small = sim.simulate(g, arch(8, 8, "os", sram=2)).summary()["dram_bytes"]
    big = sim.simulate(g, arch(8, 8, "os", sram=4096)).summary()["dram_bytes"]
    assert big == 2 * (3 * 512 * 512)  # A, B read once, C written once
    assert small > 2 * big


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 4), lq=st.integers(1, 512), lk=st.integers(1, 512), heads=st.integers(1, 8), d=st.sampled_from([8, 40, 64]), df=dataflows)
def test_fused_attention_moves_no_more_dram_bytes(batch, lq, lk, heads, d, df):
    g = attention_graph(batch, lq, lk, heads, d)
    a = arch(dataflow=df)
    fused = sim.simulate(g, a, attention="fused").summary()
    unfused = sim.simulate(g, a, attention="unfused").summary()
    assert fused["dram_bytes"] <= unfused["dram_bytes"]
    assert fused["macs"] == unfused["macs"] == batch * heads * lq * lk * 2 * d


def test_deterministic(tiny, os128):
    a = sim.simulate(tiny, os128).ops
    b = sim.simulate(tiny, os128).ops
    assert a.equals(b)


def test_repeat_scales_linearly_and_is_evaluated_once(tiny, os128, monkeypatch):
    once = sim.simulate(tiny, os128).summary()
    graph50 = type(tiny)("tiny50")
    graph50.extend(tiny, repeat=50)
    seen = []
    real = engine.evaluate

    def counting(unit, *args):
        seen.append(len(unit))
        return real(unit, *args)

    monkeypatch.setattr(engine, "evaluate", counting)
    fifty = sim.simulate(graph50, os128).summary()
    assert fifty["cycles"] == pytest.approx(50 * once["cycles"])
    assert fifty["dram_bytes"] == pytest.approx(50 * once["dram_bytes"])
    # 11 ops lower to 12 kernels; q, k, v and out are the same 256x64x64 GEMM: 9 distinct
    assert seen == [9]


def test_launch_overhead_adds_kernels_times_latency(tiny, os128):
    with_launch = sim.load_arch("os128", {"host": {"launch_overhead_us": 5.0}})
    base = sim.simulate(tiny, os128, attention="unfused").summary()
    slow = sim.simulate(tiny, with_launch, attention="unfused")
    kernels = int(slow.ops["kernels"].sum())
    assert kernels == len(tiny) + 2  # unfused attention is 3 kernels
    assert slow.summary()["latency_s"] == pytest.approx(base["latency_s"] + kernels * 5e-6)
    captured = sim.load_arch("os128", {"host": {"launch_overhead_us": 5.0, "graph_capture": True}})
    assert sim.simulate(tiny, captured, attention="unfused").summary()["latency_s"] == pytest.approx(base["latency_s"] + 5e-6)


@pytest.mark.parametrize("cores", [1, 2, 4, 8])
def test_partitioning_conserves_macs_and_speeds_up(cores, tiny):
    one = sim.simulate(tiny, arch(cores=1))
    many = sim.simulate(tiny, arch(cores=cores))
    assert many.summary()["macs"] == one.summary()["macs"] == tiny.total_macs()
    gemm = many.ops["macs"] > 0
    assert (many.ops.loc[gemm, "compute_cycles"] <= one.ops.loc[gemm, "compute_cycles"]).all()
    assert many.ops["cores_used"].max() <= cores
    assert many.ops.loc[gemm, "cores_used"].max() == cores  # the 4096-token linears fill every core


def test_vector_ops_bound_by_lanes_or_bandwidth(os128):
    b = GraphBuilder("v", stage="s")
    b.group_norm("gn", b.input((1, 320, 64, 64)), 32)
    row = sim.simulate(b.build(), os128).ops.iloc[0]
    elements = 320 * 64 * 64
    alu = np.ceil(elements * os128.vector.cost("norm") / os128.vector.lanes)
    dram = elements * 2 * 2  # read + write, fp16, fits on chip: one read pass
    assert row["compute_cycles"] == alu
    assert row["cycles"] == max(alu, np.ceil(dram / os128.bytes_per_cycle))
    # a tensor larger than on-chip memory is read norm_passes times
    b2 = GraphBuilder("v2", stage="s")
    b2.group_norm("gn", b2.input((1, 320, 256, 256)), 32)
    big = sim.simulate(b2.build(), os128).ops.iloc[0]
    assert big["dram_read_bytes"] == 2 * 320 * 256 * 256 * os128.vector.norm_passes


def test_unknown_attention_mode(tiny, os128):
    with pytest.raises(workloads.InputError, match="did you mean 'fused'"):
        sim.simulate(tiny, os128, attention="fussed")


def test_energy_is_positive_and_additive(tiny, os128):
    r = sim.simulate(tiny, os128)
    assert (r.ops["energy_j"] > 0).all()
    assert r.summary()["energy_j"] == pytest.approx(r.ops["energy_j"].sum())
    cheap = dataclasses.replace(os128, energy=dataclasses.replace(os128.energy, dram_pj_per_byte=0.0))
    assert sim.simulate(tiny, cheap).summary()["energy_j"] < r.summary()["energy_j"]


def test_elementwise_fusion_removes_a_round_trip_and_launch(os128):
    b = GraphBuilder("f", stage="s")
    x = b.linear("fc", b.input((4096, 320)), 1280)
    b.activation("act", x, "silu")
    g = b.build()
    plain = sim.simulate(g, os128)
    fused = sim.simulate(g, os128, fuse_elementwise=True)
    saved = 2 * 2 * 4096 * 1280  # the GEMM output is neither written nor read back (fp16)
    assert plain.summary()["dram_bytes"] - fused.summary()["dram_bytes"] == saved
    assert fused.latency_s < plain.latency_s
    assert list(fused.ops["kernels"]) == [1, 1] and fused.summary()["macs"] == plain.summary()["macs"]
    launch = sim.load_arch("os128", {"host": {"launch_overhead_us": 10.0}})
    extra = sim.simulate(g, launch, fuse_elementwise=True).latency_s - sim.simulate(g, os128, fuse_elementwise=True).latency_s
    assert extra == pytest.approx(10e-6)  # one launch for the fused pair


def test_global_buffer_serves_refetches(os128):
    g = gemm_graph(2048, 2048, 2048)
    small = arch(16, 16, "os", sram=16, bw=32.0)
    with_l2 = sim.load_arch(
        {**dataclasses.asdict(small), "global_buffer": {"size_kb": 65536, "bandwidth_gbs": 4000}}
    )
    a, b = sim.simulate(g, small).summary(), sim.simulate(g, with_l2).summary()
    assert b["dram_bytes"] == 2 * 3 * 2048 * 2048  # each operand once from DRAM
    assert a["dram_bytes"] > b["dram_bytes"] and b["latency_s"] <= a["latency_s"]


def test_timeline_shows_launch_gaps(tiny, tmp_path):
    import json

    from sim.results.trace import timeline, write_trace

    arch_ = sim.load_arch("os128", {"host": {"launch_overhead_us": 3.0}})
    r = sim.simulate(tiny, arch_)
    t = timeline(r)
    assert (t["idle_s"] > 0).all() and t["idle_s"].sum() == pytest.approx(r.ops["launch_cycles"].sum() / 1e9)
    assert (t["start_s"].iloc[1:].to_numpy() == t["end_s"].iloc[:-1].to_numpy()).all()
    events = json.loads(write_trace(r, tmp_path / "t.json").read_text())["traceEvents"]
    assert sum(e.get("name") == "launch" for e in events) == len(tiny)


def test_attention_tile_padding_costs_cycles_not_macs():
    g = attention_graph(batch=64, lq=16, lk=16, heads=8, d=64)  # temporal-attention-like
    plain = arch(dataflow="os")
    tiled = sim.load_arch({**dataclasses.asdict(plain), "attention": {"tile_q": 128, "tile_kv": 64}})
    a, b = sim.simulate(g, plain).summary(), sim.simulate(g, tiled).summary()
    assert a["macs"] == b["macs"] == 64 * 8 * 16 * 16 * 2 * 64
    assert b["compute_cycles"] > 4 * a["compute_cycles"] and b["utilization"] < a["utilization"] / 4
    # unfused attention is not tiled that way
    assert sim.simulate(g, tiled, attention="unfused").summary()["cycles"] == sim.simulate(g, plain, attention="unfused").summary()["cycles"]


def test_group_norm_parallelism_is_limited_by_groups():
    b = GraphBuilder("gn", stage="s")
    b.group_norm("gn", b.input((1, 128, 256, 256)), 32)
    g = b.build()
    base = arch(cores=64, bw=1000.0)
    starved = sim.load_arch({**dataclasses.asdict(base), "vector": {"lanes": 16, "core_bandwidth_gbs": 10.0}})
    r = sim.simulate(g, starved).ops.iloc[0]
    assert r["cores_used"] == 32  # one core per (sample, group)
    traffic = r["dram_read_bytes"] + r["dram_write_bytes"]
    assert r["cycles"] == pytest.approx(np.ceil(traffic / 2 / (32 * 10.0 / 2)), rel=1e-9)  # 32 cores x 10 GB/s
    assert sim.simulate(g, base).latency_s < sim.simulate(g, starved).latency_s


def test_os_output_tiles_larger_than_the_array_cut_refetches():
    g = gemm_graph(4096, 4096, 4096)
    small_out = arch(16, 16, "os", sram=64)
    big_out = sim.load_arch({**dataclasses.asdict(small_out), "sram": {"ifmap_kb": 64, "filter_kb": 64, "ofmap_kb": 1024}})
    a, b = sim.simulate(g, small_out).summary(), sim.simulate(g, big_out).summary()
    assert b["dram_bytes"] < a["dram_bytes"] / 3  # 512x512 instead of 128x128 output tiles
    assert b["compute_cycles"] == a["compute_cycles"]


def test_l2_traffic_is_reported(os128):
    g = gemm_graph(2048, 2048, 2048)
    small = arch(16, 16, "os", sram=16, bw=32.0)
    with_l2 = sim.load_arch({**dataclasses.asdict(small), "global_buffer": {"size_kb": 65536, "bandwidth_gbs": 4000}})
    assert sim.simulate(g, small).ops["l2_read_bytes"].sum() == 0
    row = sim.simulate(g, with_l2).ops.iloc[0]
    assert row["l2_read_bytes"] > row["dram_read_bytes"]  # re-reads come from the L2


def test_per_core_utilization_shows_fold_imbalance():
    g = gemm_graph(48, 64, 16)  # 3 folds of a 16x16 OS array
    r = sim.simulate(g, arch(16, 16, "os", cores=2))
    util = r.core_utilization()
    assert list(util.index) == [0, 1]
    # 3 folds on 2 cores: 2 fold-steps; core 0 busy in both, core 1 in one
    assert util[0] == pytest.approx(1.0) and util[1] == pytest.approx(0.5)
    assert len(r.kernels) == 1 and r.kernels["folds"].iloc[0] == 3


def test_fused_attention_is_faster_on_stable_diffusion_shapes(os128):
    g = attention_graph(batch=2, lq=4096, lk=4096, heads=8, d=40)
    fused, unfused = sim.simulate(g, os128, attention="fused"), sim.simulate(g, os128, attention="unfused")
    assert fused.latency_s < unfused.latency_s
    # the online softmax overlaps the array: the fused op costs less than its kernels' sum
    k = fused.kernels
    assert fused.ops["cycles"].iloc[0] < (k["compute_cycles"] + k["stall_cycles"]).sum()
