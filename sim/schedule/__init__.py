"""Scheduling: per-op costs and the step plan -> start/end times of every op occurrence.

`serial` runs one op at a time in plan order (the only policy today); a policy is a function
`(plan, busy_s, idle_s) -> Schedule`, so overlapping policies (vector work under the next
GEMM, multi-stream GPUs) can be added beside it.
"""

from .queued import queued
from .serial import Schedule, serial

__all__ = ["Schedule", "queued", "serial"]
