"""GPU mechanisms calibrated by `sim/calibrate/scaling.py`: softmax rate by row length, GEMM read
and write streaming, head split/merge copies, per-head LayerNorm copies."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.arch.gpu import SOFTMAX_ROW_LENGTHS
from sim.calibrate import scaling
from sim.cost import KERNEL, evaluate, hardware_record
from sim.cost.gpu import GK_GEMM, GK_HEAD_COPY, GK_LAYERNORM, GK_SOFTMAX
from sim.runtime import RuntimeConfig, expand
from workloads.builder import GraphBuilder


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


def _time_us(arch, **fields) -> float:
    rec = np.zeros(1, dtype=KERNEL)
    for name, value in {"unit": 1, "a_bits": 16, "b_bits": 16, "c_bits": 16, "mac_dtype": -1, **fields}.items():
        rec[name] = value
    out = evaluate(rec, hardware_record(arch))
    return float(out["compute_cycles"][0] + out["stall_cycles"][0]) / arch.frequency_mhz


def _softmax_us(arch, rows: int, width: int) -> float:
    words = rows * width
    return _time_us(arch, words_in=words, words_out=words, elements=words, par=rows, gpu_kind=GK_SOFTMAX)


@pytest.mark.parametrize("width", [16, 1024, 1025, 4096, 17776, 100000])
def test_softmax_runs_at_the_rate_of_its_row_length(h200, width):
    rows = (1 << 28) // width
    listed = [n for n in SOFTMAX_ROW_LENGTHS if n <= width][-1]
    gbs = h200.gpu.softmax_row_gbs[str(listed)]
    expected = h200.gpu.kernel_floor_us + 4 * rows * width / gbs / 1e3
    assert _softmax_us(h200, rows, width) == pytest.approx(expected, rel=1e-9)


def test_softmax_kernel_regimes_differ(h200):
    # a warp per row up to 1024 elements, then slower kernels: the same bytes cost more at 1025
    assert _softmax_us(h200, 1 << 18, 1025) > 1.5 * _softmax_us(h200, 1 << 18, 1024)
    # the shared-memory kernel of long rows (CogVideoX's 17776 keys) beats the register kernel of 4096
    assert _softmax_us(h200, 1 << 14, 17776) < 0.7 * _softmax_us(h200, (1 << 14) * 17776 // 4096, 4096)


def test_gemm_writes_stream_slower_than_reads(h200):
    assert h200.gpu.gemm_write_gbs < h200.gpu.gemm_read_gbs
    base = {"count": 1, "a_dram": 1, "b_dram": 1, "c_dram": 1, "unit": 0, "gpu_kind": GK_GEMM}
    # the same bytes: a score-writing batched GEMM (small K, big output) vs reading it (big K, small output)
    write = _time_us(h200, m=4096, k=64, n=4096, **{**base, "count": 16})
    read = _time_us(h200, m=4096, k=4096, n=64, **{**base, "count": 16})
    assert write > 1.1 * read
    # memory-bound: fixed + latency + bytes at the streaming rates
    bytes_w = 16 * 2 * (4096 * 4096 + 2 * 4096 * 64)
    assert write > h200.gpu.gemm_mem_latency_us + bytes_w / h200.gpu.gemm_read_gbs / 1e3


def _graph(build):
    b = GraphBuilder("t", stage="unet")
    build(b)
    return b.graph


def test_unfused_attention_head_copies_and_softmax_rows():
    def build(b):
        x = b.input((2, 256, 320))
        b.attention("attn", x, x, x, heads=8)

    graph = _graph(build)
    default = [{"unit": 0, "role": "qk"}, {"unit": 1}, {"unit": 0, "role": "pv"}]  # the unfused lowering
    out = expand(graph["attn"], default, graph, RuntimeConfig())
    assert [k["gpu_kind"] for k in out].count(GK_HEAD_COPY) == 4
    softmax = next(k for k in out if k["gpu_kind"] == GK_SOFTMAX)
    assert softmax["par"] == 2 * 8 * 256 and softmax["words_in"] == 2 * 8 * 256 * 256


@pytest.mark.parametrize(("shape", "copies"), [((2, 256, 8, 64), 1), ((2, 256, 512), 0)])
def test_per_head_layer_norm_copies_its_transposed_view(shape, copies):
    def build(b):
        b.layer_norm("ln", b.input(shape))

    graph = _graph(build)
    out = expand(graph["ln"], [{"unit": 1}], graph, RuntimeConfig())
    kinds = [k["gpu_kind"] for k in out]
    assert kinds.count(GK_HEAD_COPY) == copies and kinds[-1] == GK_LAYERNORM


def test_calibration_measures_every_listed_softmax_row_length():
    from sim.arch.gpu import SOFTMAX_FP32_ROW_LENGTHS, SOFTMAX_UNALIGNED_ROW_LENGTHS
    from sim.calibrate import dispatch

    fp16 = set(dispatch.UNALIGNED) | set(dispatch.ALIGNED_GAPS)
    assert set(SOFTMAX_ROW_LENGTHS) <= set(scaling.SOFTMAX_WIDTHS) | fp16
    assert set(SOFTMAX_UNALIGNED_ROW_LENGTHS) <= set(dispatch.UNALIGNED)
    assert all(w * 2 % 16 for w in SOFTMAX_UNALIGNED_ROW_LENGTHS)
    assert set(SOFTMAX_FP32_ROW_LENGTHS) <= set(dispatch.FP32_ROWS)
