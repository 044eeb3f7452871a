"""Results: the per-op/per-kernel tables and summaries, text reports, traces and the sweep store."""

from .export import load
from .result import Result

__all__ = ["Result", "load"]
