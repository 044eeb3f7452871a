"""The GEMM tile model (sim.cost.gpu._gemm_cycles): cuBLAS's tile menu sized to fill the SMs, cuDNN's
fixed tiles, and the per-SM operand feed that slows small tiles (constants derived over the GEMM pool
by experiments/gpu/derive_constants.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_gpu_regimes import _us

import sim
from sim.cost import hardware_record
from sim.cost.gpu import GK_CONV, GK_GEMM, _tile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


def _bare(arch, **fields: float) -> np.void:
    """h200's hardware record with no tile overhead, burst clocks and the fields `fields`."""
    hw = hardware_record(arch).copy()
    hw["gpu_gemm_tile_overhead_k"] = 0.0
    hw["gpu_sustained_tensor_ratio"] = 0.0
    for name, value in fields.items():
        hw[name] = value
    return hw


def test_tile_menus():
    cudnn = [_tile(s, 128, False) for s in range(6)]
    assert cudnn == [(128, 128), (128, 256), (256, 128), (64, 128), (128, 64), (0, 0)]
    cublas = {_tile(s, 128, True) for s in range(256)}
    assert len(cublas) == 256 - 16  # tiles with both edges multiples of 64 appear on both sides
    assert {(64, 72), (72, 64), (192, 192), (256, 8), (8, 256)} <= cublas
    assert all(a % 64 == 0 or b % 64 == 0 for a, b in cublas)
    assert _tile(256, 128, True) == (0, 0)


def test_cublas_tiles_fill_the_sms_where_cudnn_tiles_quantize(h200):
    """512 x 1152 outputs: 128-multiple tiles leave SMs idle or run two waves; cuBLAS's menu has a
    one-wave tiling (72 x 64: 128 tiles), within a few percent of perfect balance."""
    hw = _bare(h200, gpu_gemm_tile_feed_gbs=0.0)
    shape = {"unit": 0, "m": 512, "k": 16384, "n": 1152}  # deep K: compute-bound, split-K not needed
    fixed = h200.gpu.gemm_fixed_us
    cublas = _us(h200, hw, gpu_kind=GK_GEMM, **shape) - fixed
    cudnn = _us(h200, hw, gpu_kind=GK_CONV, **shape) - fixed
    rate = 132 * 2048 * h200.gpu.gemm_efficiency * h200.frequency_mhz  # MACs per us, all SMs
    ideal = 512 * 16384 * 1152 / rate
    assert ideal <= cublas < 1.05 * ideal
    assert cudnn > 1.2 * cublas


def test_operand_feed_bounds_a_tile(h200):
    """132 tiles of 128 x 256 (one wave of cuDNN's largest tile, no room to split K): with a feed far
    below the MMA rate the time is K x (128 + 256) fp16 elements per SM over the feed; with none, the
    MMA time."""
    shape = {"unit": 0, "m": 128 * 12, "k": 8192, "n": 256 * 11, "gpu_kind": GK_CONV}
    fixed = h200.gpu.gemm_fixed_us
    slow = _us(h200, _bare(h200, gpu_gemm_tile_feed_gbs=10.0), **shape) - fixed
    assert slow == pytest.approx(8192 * 384 * 2 / 10e3, rel=1e-9)  # bytes / (GB/s) in us
    free = _us(h200, _bare(h200, gpu_gemm_tile_feed_gbs=0.0), **shape) - fixed
    rate = 2048 * h200.gpu.gemm_efficiency * h200.frequency_mhz  # MACs per us per SM
    assert free == pytest.approx(128 * 256 * 8192 / rate, rel=1e-9)
    preset = _us(h200, _bare(h200), **shape) - fixed
    assert free <= preset < slow


def test_gemm_pool_errors_of_the_preset(h200):
    """The preset's GEMM model over every measured GEMM (gemm.csv, chains.csv linears, convs)."""
    spec = importlib.util.spec_from_file_location("derive", ROOT / "experiments" / "gpu" / "derive_constants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pool = module.gemm_pool(ROOT / "arch_configs" / "calibration" / "h200", 4.82)
    _, measured, source = pool
    assert np.bincount(source).tolist()[1] == 10
    err = np.abs(module.gemm_pool_errors(pool))
    assert np.median(err[source == 0]) < 0.12
    assert np.median(err[source == 1]) < 0.05
    assert np.median(err[source == 2]) < 0.12
