"""`sim.systolic`: SCALE-Sim 3.0 compatible compute cycles (lives in `sim.cost.systolic`)."""

from .cost.systolic import (
    DATAFLOWS,
    IS,
    OS,
    WS,
    dataflow_code,
    fold_cycles,
    fold_geometry,
    gemm_cycles,
    gemm_cycles_batch,
)

__all__ = ["DATAFLOWS", "IS", "OS", "WS", "dataflow_code", "fold_cycles", "fold_geometry", "gemm_cycles", "gemm_cycles_batch"]
