"""Cost models, one per unit: cycles and action counts of arrays of kernels (Numba)."""

from .models import IS, METRICS, OS, WS, Hardware, evaluate, gemm_traffic

__all__ = ["IS", "METRICS", "OS", "WS", "Hardware", "evaluate", "gemm_traffic"]
