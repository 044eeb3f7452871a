"""Sparse hardware units (issue 10): skipping never slower, gating saves energy only, dense
annotations equal dense, compressed formats pay off below their break-even density."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import workloads
from sim.cost.sparse import break_even, format_bits
from workloads.annotations import FORMATS

SKIPPING = {"sparsity": {"structured": True, "unstructured": "skip", "attention_unit": True}}
GATING = {"sparsity": {"unstructured": "gate"}}


def gemm_graph(m: int, k: int, n: int):
    b = workloads.GraphBuilder("gemm", "denoiser")
    b.linear("fc", b.input((m, k)), n, bias=False)
    return b.build()


def run(graph, arch, passes, attention="fused"):
    return sim.simulate(graph, arch, passes=passes, attention=attention).ops.iloc[0]


dims = st.sampled_from([64, 200, 512, 1024, 3000])


@settings(max_examples=25, deadline=None)
@given(m=dims, k=dims, n=dims, density=st.floats(0.05, 1.0), preset=st.sampled_from(["os128", "tpu_v1", "edge", "h100"]))
def test_skipping_never_increases_compute_cycles(m, k, n, density, preset):
    g = gemm_graph(m, k, n)
    arch = sim.load_arch(preset, SKIPPING)
    dense = run(g, arch, [])
    sparse = run(g, arch, [{"name": "sparsity", "by_class": {"linear": {"weights": density}}}])
    assert sparse["compute_cycles"] <= dense["compute_cycles"]
    assert sparse["macs_issued"] <= dense["macs_issued"]


@pytest.mark.parametrize("ratio", ["1:4", "2:4", "3:4", "2:8"])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_structured_skipping_matches_scalesim_cycles(ratio, dataflow):
    m, k, n = 256, 1000, 192
    arch = sim.load_arch("os128", {**SKIPPING, "array": {"rows": 32, "cols": 32, "dataflow": dataflow}, "sram": {"ifmap_kb": 4096, "filter_kb": 4096, "ofmap_kb": 4096}})
    op = run(gemm_graph(m, k, n), arch, [{"name": "sparsity", "by_class": {"linear": {"weights": ratio}}}])
    want = sim.systolic.gemm_cycles(M=m, K=k, N=n, rows=32, cols=32, dataflow=dataflow, sparsity=ratio)
    assert op["compute_cycles"] == want


def test_sparse_tensor_cores_double_2to4_throughput_only():
    g, h100 = gemm_graph(4096, 4096, 4096), sim.load_arch("h100", {"sparsity": {"tensor_core_2to4": True}})
    dense = run(g, h100, [])
    two4 = run(g, h100, [{"name": "sparsity", "by_class": {"linear": {"weights": "2:4"}}}])
    one4 = run(g, h100, [{"name": "sparsity", "by_class": {"linear": {"weights": "1:4"}}}])
    assert two4["compute_cycles"] == pytest.approx(dense["compute_cycles"] / 2)
    assert one4["compute_cycles"] == dense["compute_cycles"]  # not a 2:4 pattern


def test_gating_saves_energy_and_no_cycles():
    g = gemm_graph(2048, 2048, 2048)
    arch = sim.load_arch("os128", GATING)
    dense = run(g, arch, [])
    gated = run(g, arch, [{"name": "sparsity", "by_class": {"linear": {"weights": 0.4, "format": "dense"}}}])
    assert gated["cycles"] == dense["cycles"] and gated["dram_read_bytes"] == dense["dram_read_bytes"]
    assert gated["energy_mac_j"] == pytest.approx(0.4 * dense["energy_mac_j"])
    assert gated["energy_j"] < dense["energy_j"]


def test_annotation_mode_gate_on_skipping_hardware_saves_no_cycles():
    g = gemm_graph(2048, 2048, 2048)
    arch = sim.load_arch("os128", SKIPPING)
    dense = run(g, arch, [])
    gated = run(g, arch, [{"name": "sparsity", "mode": "gate", "by_class": {"linear": {"weights": 0.4, "format": "dense"}}}])
    assert gated["compute_cycles"] == dense["compute_cycles"] and gated["energy_j"] < dense["energy_j"]


@pytest.mark.parametrize("passes", [
    [{"name": "sparsity", "by_class": {"linear": {"weights": 1.0}, "conv": {"weights": "4:4"}}}],
    [{"name": "sparsity", "attention_scores": 1.0}],
])
def test_dense_annotations_equal_dense_results(passes):
    g = workloads.build("sd15", resolution=256, steps=2)
    arch = sim.load_arch("os128", SKIPPING)
    a, b = sim.simulate(g, arch).summary(), sim.simulate(g, arch, passes=passes).summary()
    assert a["cycles"] == b["cycles"] and a["dram_bytes"] == b["dram_bytes"] and a["energy_j"] == b["energy_j"]


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "dense"])
@pytest.mark.parametrize("bits", [4, 8, 16])
def test_formats_pay_off_below_their_break_even(fmt, bits):
    code, block = FORMATS.index(fmt), 4
    d0 = break_even(fmt, bits, block)
    assert 0.0 < d0 < 1.0
    for d in (0.01, d0 * 0.5, d0 * 0.99):
        assert format_bits(code, d, float(bits), block) <= bits
    assert format_bits(code, min(1.0, d0 * 1.02 + 1e-6), float(bits), block) >= bits - 1e-9


def test_compressed_weights_move_fewer_dram_bytes_below_break_even():
    g, arch = gemm_graph(64, 4096, 4096), sim.load_arch("os128")
    dense = run(g, arch, [])
    for fmt in ("bitmask", "csr", "rle"):
        d = 0.5 * break_even(fmt, 16)
        sparse = run(g, arch, [{"name": "sparsity", "by_class": {"linear": {"weights": d, "format": fmt}}}])
        assert sparse["dram_read_bytes"] < dense["dram_read_bytes"]


def test_score_sparsity_unit_beats_dense_and_gpu_sparse_kernel_gathers():
    g = workloads.build("sd15_unet", resolution=512)
    keep = [{"name": "sparsity", "attention_scores": 0.3}]
    unit = sim.load_arch("os128", SKIPPING)
    attn = lambda r: r.ops[r.ops["op_class"] == "attention"]["cycles"].sum()  # noqa: E731
    assert attn(sim.simulate(g, unit, passes=keep)) < attn(sim.simulate(g, unit))
    h100 = sim.load_arch("h100")
    dense_unfused = sim.simulate(g, h100, attention="unfused")
    sparse_unfused = sim.simulate(g, h100, attention="unfused", passes=keep)
    fused = sim.simulate(g, h100, passes=keep)  # FlashAttention cannot skip an unstructured pattern
    assert attn(fused) == attn(sim.simulate(g, h100))
    a, b = sparse_unfused.ops, dense_unfused.ops
    assert a[a["op_class"] == "attention"]["l2_read_bytes"].sum() > b[b["op_class"] == "attention"]["l2_read_bytes"].sum()


def test_approximate_vector_units_cut_vector_time_energy_and_norm_passes():
    g = workloads.build("sd15", resolution=512, steps=2)
    arch = sim.load_arch("os128")
    base = sim.simulate(g, arch)
    approx = sim.simulate(g, arch, passes=[{"name": "approx_nonlinear", "softmax": "lut", "activation": "piecewise", "norm": "single_pass"}])
    b, a = base.summary(), approx.summary()
    assert a["latency_s"] < b["latency_s"] and a["dram_bytes"] < b["dram_bytes"]
    assert a["energy_by_component"]["vector"] < b["energy_by_component"]["vector"]
    gemm = ("conv", "linear")
    assert approx.ops[approx.ops["op_class"].isin(gemm)]["cycles"].sum() == base.ops[base.ops["op_class"].isin(gemm)]["cycles"].sum()
    same = sim.load_arch("os128", {"vector": {"approx_cycles_per_element": dict(arch.vector.cycles_per_element)}})
    exact_lut = sim.simulate(g, same, passes=[{"name": "approx_nonlinear", "softmax": "lut", "activation": "piecewise"}])
    assert exact_lut.summary()["cycles"] == sim.simulate(g, same).summary()["cycles"]  # equal costs: no change
    with pytest.raises(workloads.InputError, match="softmax"):
        workloads.apply_passes(g, [{"name": "approx_nonlinear", "softmax": "fast"}])
