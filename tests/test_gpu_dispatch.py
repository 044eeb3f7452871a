"""Kernel choices by alignment and dtype (dispatch/dispatch.csv): softmax tables for unaligned and fp32
rows, diffusers' upcast attention (fp32 CUDA-core score GEMM), cuDNN attention plans rebuilt for
every new key length of a grown decode cache; and the held-out cases' naming."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gpu_regimes import _us

import sim
import workloads
from sim.cost.gpu import GK_SGEMM, GK_SOFTMAX, GK_STRIDED
from sim.lower import lower_op
from sim.runtime import RuntimeConfig, expand

ROOT = Path(__file__).resolve().parents[1]
DISPATCH = ROOT / "arch_configs" / "calibration" / "h200" / "dispatch" / "dispatch.csv"
sys.path.insert(0, str(ROOT / "experiments" / "gpu"))


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


def _softmax_us(arch, rows: int, width: int, bits: int = 16) -> float:
    n = rows * width
    return _us(arch, unit=1, words_in=n, words_out=n, elements=n, par=rows, a_bits=bits, c_bits=bits,
               gpu_kind=GK_SOFTMAX)  # fmt: skip


def test_softmax_rows_follow_the_measured_kernel_choice(h200):
    """Every softmax row of dispatch.csv (fp16 aligned / unaligned, fp32) within 6% of the model: the
    tables' own rows, so this checks the lookup picks the table the kernel choice implies."""
    d = pd.read_csv(DISPATCH)
    d = d[d.benchmark.isin(["softmax", "softmax_fp32"])]
    errors = []
    for r in d.itertuples():
        rows, width = map(int, r.shape.split("x"))
        model = _softmax_us(h200, rows, width, 32 if r.dtype == "float32" else 16)
        errors.append(model / r.kernel_us - 1)
    errors = np.abs(errors)
    assert np.median(errors) < 0.03 and np.max(errors) < 0.15, np.max(errors)


def test_unaligned_rows_past_the_register_kernel_run_the_generic_kernel(h200):
    # 9672 (a multiple of 8 fp16) runs the shared-memory kernel, 9676 the slower generic one
    aligned, unaligned = _softmax_us(h200, 1000, 9672), _softmax_us(h200, 1000, 9676)
    assert unaligned > 1.1 * aligned
    # below 9.2k alignment does not matter (register kernel): rows 4 apart cost about the same
    assert _softmax_us(h200, 1000, 4356) == pytest.approx(_softmax_us(h200, 1000, 4352), rel=0.03)


def test_fp32_softmax_uses_its_own_table(h200):
    gbs = h200.gpu.softmax_fp32_row_gbs["4096"]
    us = _softmax_us(h200, 4096, 4096, 32)
    nbytes = 2 * 4096 * 4096 * 4
    assert us == pytest.approx(h200.gpu.kernel_floor_us + nbytes / gbs / 1e3, rel=1e-6)


def test_fp32_gemm_runs_on_cuda_cores_then_writes(h200):
    """dispatch.csv's large fp32 score GEMMs (tf32 off) within 10% of compute + write time."""
    d = pd.read_csv(DISPATCH)
    d = d[(d.benchmark == "bgemm_fp32") & (d.flops > 1e10)]
    assert len(d) >= 3
    for r in d.itertuples():
        bh, lq, lk, dh = map(int, r.shape.split("x"))
        model = _us(h200, unit=0, m=lq, k=dh, n=lk, count=bh, a_bits=32, b_bits=32, c_bits=32, gpu_kind=GK_SGEMM)
        assert model == pytest.approx(r.kernel_us, rel=0.1), r.shape


def _attention_kernels(result: sim.Result) -> pd.DataFrame:
    k = result.kernels
    return k[k.op.str.endswith("attn1")].reset_index(drop=True)


def test_upcast_attention_unfused_launches_the_fp32_path(h200):
    graph = workloads.build("sd21_unet", resolution=256)
    unfused = _attention_kernels(sim.simulate(graph, h200, attention="unfused", runtime="cuda_graph"))
    first = unfused[unfused.op == unfused.op.iloc[0]]
    # head copies q, k, v; casts of q and k; fp32 QK; fp32 softmax; cast back; PV; merge
    assert list(first.unit) == ["move"] * 5 + ["gemm", "vector", "move", "gemm", "move"]
    op = next(o for o in graph.ops() if o.name == first.op.iloc[0])
    scores = op.attrs["batch"] * op.attrs["heads"] * op.attrs["lq"] * op.attrs["lk"]
    assert first.iloc[5].dram_write_bytes == 4 * scores  # the QK GEMM writes fp32 scores
    assert first.iloc[6].dram_write_bytes == 4 * scores  # the softmax too, in fp32
    plain = workloads.build("sd15_unet", resolution=256)
    k15 = _attention_kernels(sim.simulate(plain, h200, attention="unfused", runtime="cuda_graph"))
    assert list(k15[k15.op == k15.op.iloc[0]].unit) == ["move"] * 3 + ["gemm", "vector", "gemm", "move"]
    # the fused path ignores upcast_attention (SDPA in fp16), as diffusers' AttnProcessor2_0 does
    fused = _attention_kernels(sim.simulate(graph, h200, attention="fused", runtime="cuda_graph"))
    assert list(fused[fused.op == fused.op.iloc[0]].unit) == ["gemm"]


def test_upcast_attribute_comes_from_the_config():
    for model, upcast in (("sd21_unet", True), ("sd15_unet", False), ("sdxl_unet", False)):
        attn = [op for op in workloads.build(model, resolution=256).ops() if op.kind.name == "ATTENTION"]
        assert attn and all(bool(op.attrs.get("upcast")) is upcast for op in attn), model


def test_expand_marks_the_casts_and_the_sgemm():
    graph = workloads.build("sd21_unet", resolution=256)
    op = next(op for op in graph.ops() if op.kind.name == "ATTENTION")
    kernels = expand(op, lower_op(op, "unfused"), graph, RuntimeConfig.parse("cuda_graph"))
    kinds = [k["gpu_kind"] for k in kernels]
    assert kinds.count(GK_STRIDED) == 2 and kinds.count(GK_SGEMM) == 1


def test_decode_over_a_grown_cache_rebuilds_cudnn_plans(h200):
    """Eager decode with a dynamic (grown) cache pays one plan build per layer's attention on the
    host; a static cache (fixed shapes) and graph replay do not."""
    plan = h200.gpu.cudnn_plan_us
    assert plan > 100
    no_plan = dataclasses.replace(h200, gpu=dataclasses.replace(h200.gpu, cudnn_plan_us=0.0))
    grown = workloads.build("llama2_7b_decode", kv_len=512, kv_cache="dynamic")
    layers = sum(op.kind.name == "ATTENTION" for op in grown.ops())
    with_plans = sim.simulate(grown, h200, runtime="eager").latency_s
    without = sim.simulate(grown, no_plan, runtime="eager").latency_s
    assert with_plans - without == pytest.approx(layers * plan * 1e-6, rel=0.05)
    static = workloads.build("llama2_7b_decode", kv_len=512, kv_cache="static")
    assert sim.simulate(static, h200, runtime="eager").latency_s == pytest.approx(
        sim.simulate(static, no_plan, runtime="eager").latency_s)
    assert sim.simulate(grown, h200, runtime="cuda_graph").latency_s == pytest.approx(
        sim.simulate(grown, no_plan, runtime="cuda_graph").latency_s)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(["sd15_unet", "sd21_unet", "sdxl_unet", "modelscope_unet", "latte", "cogvideox_2b",
                        "dit_xl2", "pixart_alpha", "sd15_vae_decoder", "llama2_7b_decode"]),
       st.dictionaries(st.sampled_from(["res", "batch", "frames", "kv"]), st.integers(1, 5000), max_size=3))  # fmt: skip
def test_case_labels_round_trip(name, sizes):
    from forward_models import DEFAULTS, Case, parse_case

    sizes = {k: v for k, v in sizes.items() if k in DEFAULTS[name]}
    case = Case(name, **{**DEFAULTS[name], **sizes})
    assert parse_case(case.label) == case
    assert ("@" in case.label) == any(sizes[k] != DEFAULTS[name][k] for k in sizes)


@pytest.mark.parametrize("bad", ["sd15_unet@f8", "sd15_unet@0px", "nope", "latte@512", "llama2_7b_decode@kv"])
def test_bad_case_names_say_what_is_wrong(bad):
    from forward_models import parse_case

    with pytest.raises(ValueError, match=bad.split("@")[-1] if "@" in bad else "unknown model"):
        parse_case(bad)


def test_holdout_validation_reproduces_its_committed_report(tmp_path):
    """experiments/gpu/validate_holdout.py on the committed measurements gives the committed table, and
    every held-out forward row is within 10% of the measurement."""
    from validate_holdout import main

    assert main(["--out", str(tmp_path)]) == 0
    fresh = (tmp_path / "gpu_holdout.md").read_text()
    assert fresh == (ROOT / "experiments" / "results" / "gpu_holdout.md").read_text()
    rows = pd.read_csv(tmp_path / "gpu_holdout.csv")
    fwd = rows[rows.kind == "forward_ms"]
    assert len(fwd) >= 30 and fwd.error_pct.abs().max() <= 10
