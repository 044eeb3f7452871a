"""`sim.systolic`: SCALE-Sim 3.0 compatible compute cycles (lives in `sim.cost.systolic`)."""

from .cost.systolic import (
    DATAFLOWS,
    IS,
    OS,
    STORAGE_FORMATS,
    WS,
    FilterStorage,
    condensed_k,
    dataflow_code,
    fold_cycles,
    fold_geometry,
    gemm_cycles,
    gemm_cycles_batch,
    nm_ratio,
    sparse_filter_storage,
)

__all__ = [
    "DATAFLOWS", "IS", "OS", "STORAGE_FORMATS", "WS", "FilterStorage", "condensed_k", "dataflow_code",
    "fold_cycles", "fold_geometry", "gemm_cycles", "gemm_cycles_batch", "nm_ratio", "sparse_filter_storage",
]  # fmt: skip
