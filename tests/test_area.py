"""Area model: monotone in capacity and array size, scaling rule, presets, sweep metrics."""

from __future__ import annotations

import pytest

import sim
from sim.area import area, design_metrics, node_scale, run_metrics
from sim.area.model import constants, sram_mm2


def _arch(**over):
    return sim.load_arch("os128", over)


def test_sram_area_grows_with_capacity_and_ports():
    c = constants()
    sizes = [1, 8, 64, 100, 512, 3000, 32768, 100000]
    for node in (28, 16, 7, 4):
        one = [sram_mm2(kb, 1, node, c) for kb in sizes]
        assert all(a < b for a, b in zip(one, one[1:]))
        assert all(sram_mm2(kb, 2, node, c) > sram_mm2(kb, 1, node, c) for kb in sizes)
    assert sram_mm2(0, 1, 28, c) == 0.0
    assert sram_mm2(8192, 1, 28, c) == pytest.approx(constants("sram_cacti_28nm")["mm2"][1][8192])  # the CACTI point


def test_area_is_monotone_in_arrays_and_sram():
    base = area(_arch()).total_mm2
    for over in ({"array": {"rows": 256}}, {"array": {"cols": 256}}, {"array": {"count": 2}}, {"cores": 2},
                 {"sram": {"ifmap_kb": 8192}}, {"sram": {"ofmap_kb": 4096}}, {"global_buffer": {"size_kb": 1024}},
                 {"vector": {"lanes": 256}}):  # fmt: skip
        assert area(_arch(**over)).total_mm2 > base, over
    assert area(_arch(array={"rows": 64})).total_mm2 < base
    a = area(_arch(array={"rows": 64, "cols": 64}))
    b = area(_arch(array={"rows": 128, "cols": 128}))
    assert b.arrays_mm2 == pytest.approx(4 * a.arrays_mm2)  # PEs scale with rows x cols


def test_precision_and_sparsity_support_cost_area():
    arch = _arch()
    plain = area(arch).arrays_mm2
    assert area(arch, dtypes={"fp8"}).arrays_mm2 > plain
    assert area(arch, sparse=True).arrays_mm2 > plain
    fast = _arch(array={"throughput": {"fp8": 2.0}})
    assert area(fast).arrays_mm2 > area(arch, dtypes={"fp8"}).arrays_mm2  # twice the fp8 multipliers
    assert area(arch, dtypes={"fp16"}).arrays_mm2 == plain  # the native type is already there


def test_node_scaling_rule():
    assert node_scale(45, 45) == 1.0
    assert node_scale(45, 28) == pytest.approx(0.127 / 0.346)
    assert node_scale(28, 7) < node_scale(28, 16) < 1.0
    assert node_scale(5, 4) == 1.0  # clamped at the newest tabulated node
    assert area(_arch(energy={"table": "tpu_v1_28nm"})).total_mm2 > area(_arch(energy={"table": "h100_4nm"})).total_mm2


def test_presets_have_plausible_areas():
    tpu = area(sim.load_arch("tpu_v1"))
    assert tpu.node_nm == 28 and 30 < tpu.total_mm2 < 331  # under the published die: see the README
    for name in sim.presets():
        a = area(sim.load_arch(name))
        assert a.total_mm2 > 0 and a.other_mm2 == pytest.approx(0.12 * a.total_mm2)


def test_design_and_run_metrics():
    arch = _arch(global_buffer={"size_kb": 1024})
    d = design_metrics(arch, [{"name": "sparsity", "by_class": {"linear": "2:4"}}])
    assert d["sram_total_mb"] == pytest.approx((4096 + 4096 + 2048 + 1024) / 1024)
    assert d["peak_tops"] == pytest.approx(2 * 128 * 128 * 1e9 / 1e12)
    assert d["area_mm2"] > design_metrics(arch)["area_mm2"]
    r = run_metrics({"latency_s": 2.0, "energy_j": 10.0}, 50.0)
    assert r == pytest.approx({"power_w": 5.0, "edp_js": 20.0, "throughput_per_w": 0.1, "throughput_per_mm2": 0.01})
