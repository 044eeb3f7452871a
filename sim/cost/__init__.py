"""Cost models, one module per unit (`array`: systolic arrays, `vector`: vector unit and move
engine), over kernel records and a hardware record (`schema`); `tiling` holds the GEMM traffic
model and `systolic` SCALE-Sim's compute cycles. `evaluate` runs every kernel through its unit,
`evaluate_batch` on many hardware records in one call; `reduce` sums metrics per op or class.
"""

from __future__ import annotations

from ._jit_cache import configure

configure()  # before any @njit(cache=True) below is defined

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from .array import gemm  # noqa: E402
from .gpu import gpu_kernel  # noqa: E402
from .reduce import group_max, group_sum, weighted_sum  # noqa: E402
from .schema import KERNEL, KERNEL_FIELDS, METRIC, METRIC_FIELDS, hardware_dtype, hardware_record, hardware_records  # noqa: E402
from .systolic import IS, OS, WS  # noqa: E402
from .tiling import gemm_traffic  # noqa: E402
from .vector import GEMM, MOVE, VECTOR, vector  # noqa: E402


@njit(cache=True)
def _evaluate(kernels, hw, out):
    for i in range(kernels.shape[0]):
        if kernels[i].gpu_kind > 0:  # a runtime model's GPU kernel (sim.runtime, sim.cost.gpu)
            gpu_kernel(out[i], kernels[i], hw)
        elif kernels[i].unit == GEMM:
            gemm(out[i], kernels[i], hw)
        else:
            vector(out[i], kernels[i], hw)


@njit(cache=True)
def _evaluate_batch(kernels, hws, out):
    for b in range(hws.shape[0]):
        _evaluate(kernels, hws[b], out[b])


def evaluate_batch(kernels: np.ndarray, hws: np.ndarray) -> np.ndarray:
    """Metric records (configs x kernels) of kernel records on each of the hardware records
    `hws` (a `hardware_dtype` array), in one call: the same numbers as `evaluate` per record."""
    out = np.zeros((hws.shape[0], kernels.shape[0]), dtype=METRIC)
    if kernels.shape[0] and hws.shape[0]:
        _evaluate_batch(kernels, hws, out)
    return out


def evaluate(kernels: np.ndarray, hw: np.void) -> np.ndarray:
    """Metric records (`METRIC`) of kernel records (`KERNEL`) on hardware record `hw`."""
    out = np.zeros(kernels.shape[0], dtype=METRIC)
    if kernels.shape[0]:
        _evaluate(kernels, hw, out)
    return out


__all__ = [
    "GEMM", "IS", "KERNEL", "KERNEL_FIELDS", "METRIC", "METRIC_FIELDS", "MOVE", "OS", "VECTOR", "WS",
    "evaluate", "evaluate_batch", "gemm_traffic", "group_max", "group_sum", "hardware_dtype", "hardware_record", "hardware_records", "weighted_sum",
]  # fmt: skip
