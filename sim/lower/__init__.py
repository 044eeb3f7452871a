"""Lowering: op kinds -> kernels on the array, vector and move units (one entry per kind)."""

from .kernels import ATTENTION_MODES, COLUMNS, Kernels, Unit, lower, lower_op

__all__ = ["ATTENTION_MODES", "COLUMNS", "Kernels", "Unit", "lower", "lower_op"]
