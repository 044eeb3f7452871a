"""Core v2: the step plan and per-step results, passes, energy from action counts."""

from __future__ import annotations

import numpy as np
import pytest

import sim
import workloads
from sim.energy import COMPONENTS, energy_by_action
from workloads import InputError


@pytest.fixture(scope="module")
def sd15():
    return workloads.build("sd15", resolution=256, steps=50, cfg=True)


@pytest.fixture(scope="module")
def sd15_result(sd15):
    return sim.simulate(sd15, sim.load_arch("os128"))


def test_by_step_lists_every_denoising_step_in_order(sd15_result):
    by_step = sd15_result.summary()["by_step"]
    labels = list(by_step)
    assert labels[0] == "text_encoder" and labels[-1] == "vae_decoder"
    assert labels[1:-1] == [f"unet:step{i}" for i in range(50)]
    assert sum(by_step.values()) == pytest.approx(sd15_result.latency_s, rel=1e-12)
    steps = sd15_result.steps
    assert (steps["start_s"].iloc[1:].to_numpy() >= steps["end_s"].iloc[:-1].to_numpy() - 1e-15).all()
    assert steps["energy_j"].sum() == pytest.approx(sd15_result.summary()["energy_j"], rel=1e-9)


def test_identical_steps_cost_the_same(sd15_result):
    unet = sd15_result.steps[sd15_result.steps["stage"] == "unet"]
    assert np.allclose(unet["time_s"], unet["time_s"].iloc[0], rtol=1e-12)


def test_step_varying_plan_gives_step_varying_results(sd15):
    """Every second step of the loop drops its attention ops (a hand-made step variant)."""
    changed = {}
    for op in sd15.ops():
        if op.stage == "unet" and op.op_class == "attention":
            changed[op.name] = op.in_steps(range(0, 50, 2))
    varied = sd15.with_ops(changed)
    r = sim.simulate(varied, sim.load_arch("os128"))
    t = r.steps.set_index("step")["time_s"]
    assert t["unet:step0"] > t["unet:step1"] and t["unet:step2"] == pytest.approx(t["unet:step0"])
    assert r.latency_s == pytest.approx(r.steps["time_s"].sum(), rel=1e-12)
    attn = r.ops[r.ops["op_class"] == "attention"]
    assert (attn[attn["stage"] == "unet"]["repeat"] == 25).all()


def test_decode_buckets_are_labelled_by_decode_step():
    g = workloads.build("llama2_7b", gen_tokens=9, kv_buckets=3)
    labels = [p.label for p in g.step_plan()]
    assert labels == ["prefill", *(f"decode:step{i}" for i in range(8))]


def test_energy_is_actions_times_table_plus_leakage(sd15):
    arch = sim.load_arch("h100", {"energy": {"overrides": {"leakage_w": 50.0}}})
    r = sim.simulate(sd15, arch)
    o = r.ops
    table = arch.energy_table()
    assert table.leakage_w == 50.0
    parts = sum(o[f"energy_{c}_j"] for c in COMPONENTS)
    assert np.allclose(parts, o["energy_j"], rtol=1e-12)
    leak = (o["cycles"] / (arch.frequency_mhz * 1e6)) * 50.0
    assert np.allclose(o["energy_leakage_j"], leak, rtol=1e-9)
    dram = (o["dram_read_bytes"] * table.dram_read_pj_per_byte + o["dram_write_bytes"] * table.dram_write_pj_per_byte) * 1e-12
    assert np.allclose(o["energy_dram_j"], dram, rtol=1e-9)
    mac = o["macs_issued"] * table.mac_pj["fp16"] * 1e-12
    assert np.allclose(o["energy_mac_j"], mac, rtol=1e-9)


def test_energy_by_action_prices_each_action():
    table = sim.load_arch("os128").energy_table()
    actions = {"mac_fp16": np.array([10.0, 0.0]), "dram_read_bytes": np.array([0.0, 4.0]), "launches": np.array([1.0, 1.0])}
    out = energy_by_action(actions, np.array([1.0, 2.0]), table)
    want = np.array([10 * table.mac_pj["fp16"], 4 * table.dram_read_pj_per_byte]) * 1e-12
    assert np.allclose(out["total"], want + table.launch_pj * 1e-12 + np.array([1.0, 2.0]) * table.leakage_w)


def test_int8_arch_prices_native_macs_as_int8(sd15):
    arch = sim.load_arch("tpu_v1")
    o = sim.simulate(sd15, arch).ops
    assert np.allclose(o["energy_mac_j"], o["macs_issued"] * arch.energy_table().mac_pj["int8"] * 1e-12, rtol=1e-9)
    assert (o["macs_issued"] >= o["macs"]).all()  # dense: every MAC issued, padding included


def test_unknown_pass_and_bad_option_are_input_errors(sd15):
    with pytest.raises(InputError, match="did you mean 'precision'"):
        workloads.apply_passes(sd15, [{"name": "precison"}])
    with pytest.raises(InputError, match="by_class"):
        workloads.apply_passes(sd15, [{"name": "precision", "by_class": {"lineer": "fp8"}}])
    with pytest.raises(InputError, match="unknown dtype"):
        workloads.apply_passes(sd15, [{"name": "precision", "by_class": {"linear": "fp7"}}])


def test_passes_do_not_modify_their_input(sd15):
    before = [op.precision for op in sd15.ops()]
    out = workloads.apply_passes(sd15, [{"name": "precision", "default": "int8"}, {"name": "fuse_elementwise"}])
    assert [op.precision for op in sd15.ops()] == before
    assert all(op.precision is not None for op in out.ops())


def test_fuse_elementwise_pass_equals_the_legacy_flag(sd15):
    arch = sim.load_arch("os128")
    a = sim.simulate(sd15, arch, fuse_elementwise=True).summary()
    b = sim.simulate(sd15, arch, passes=[{"name": "fuse_elementwise"}]).summary()
    assert a["cycles"] == b["cycles"] and a["dram_bytes"] == b["dram_bytes"]
    assert a["cycles"] < sim.simulate(sd15, arch).summary()["cycles"]


def gemm_graph(m: int = 8192, k: int = 8192, n: int = 8192):
    b = workloads.GraphBuilder("gemm", "denoiser")
    b.linear("fc", b.input((m, k)), n, bias=False)
    return b.build()


@pytest.mark.parametrize("size", [2048, 8192])
def test_fp8_gemm_on_h100_halves_compute_and_operand_bytes(size):
    g, h100 = gemm_graph(size, size, size), sim.load_arch("h100")
    fp16 = sim.simulate(g, h100, passes=[{"name": "precision", "by_class": {"linear": "fp16"}}]).ops.iloc[0]
    fp8 = sim.simulate(g, h100, passes=[{"name": "precision", "by_class": {"linear": "fp8"}}]).ops.iloc[0]
    assert fp16["compute_cycles"] > fp16["stall_cycles"]  # compute-bound
    assert fp8["compute_cycles"] == pytest.approx(fp16["compute_cycles"] / 2, rel=1e-9)
    assert fp8["dram_write_bytes"] == pytest.approx(fp16["dram_write_bytes"] / 2, rel=1e-9)
    if size == 2048:  # operands fit the L2: both read each operand once
        assert fp8["dram_read_bytes"] == pytest.approx(fp16["dram_read_bytes"] / 2, rel=1e-9) == 2 * size * size
    else:  # twice the elements fit on chip: fewer re-reads on top of half the width
        assert fp8["dram_read_bytes"] <= fp16["dram_read_bytes"] / 2
    native = sim.simulate(g, h100).ops.iloc[0]
    assert native["cycles"] == pytest.approx(fp16["cycles"], rel=1e-12)  # h100's native type is fp16


def test_weight_only_int8_halves_weight_bytes_only():
    m, k, n = 16, 8192, 8192  # decode-like: weight traffic dominates, activations are tiny
    g, h100 = gemm_graph(m, k, n), sim.load_arch("h100")
    base = sim.simulate(g, h100).ops.iloc[0]
    w8 = sim.simulate(g, h100, passes=[{"name": "precision", "by_class": {"linear": {"weights": "int8"}}}]).ops.iloc[0]
    assert w8["compute_cycles"] == base["compute_cycles"]  # MACs still run in fp16
    assert w8["dram_write_bytes"] == base["dram_write_bytes"]
    weights, acts = k * n * 2, m * k * 2
    assert base["dram_read_bytes"] == pytest.approx(weights + acts, rel=1e-9)
    assert w8["dram_read_bytes"] == pytest.approx(weights / 2 + acts, rel=1e-9)


def test_attention_score_upcast_moves_more_bytes_unfused(sd15):
    arch = sim.load_arch("os128")
    base = sim.simulate(sd15, arch, attention="unfused").summary()["dram_bytes"]
    up = sim.simulate(sd15, arch, attention="unfused", passes=[{"name": "precision", "by_class": {"attention": {"scores": "fp32"}}}])
    assert up.summary()["dram_bytes"] > base


def test_precision_energy_uses_compute_dtype():
    g, h100 = gemm_graph(1024, 1024, 1024), sim.load_arch("h100")
    fp8 = sim.simulate(g, h100, passes=[{"name": "precision", "default": "fp8"}]).ops.iloc[0]
    assert fp8["energy_mac_j"] == pytest.approx(fp8["macs_issued"] * h100.energy_table().mac_pj["fp8"] * 1e-12, rel=1e-9)
