"""The serial schedule: every op occurrence after the previous one, in step-plan order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workloads.ir import PlanStep, StepPlan


@dataclass(frozen=True)
class Schedule:
    """Every op occurrence in execution order: its plan entry, op index, idle gap before it
    (host launch), and start (of the gap) and end times in seconds."""

    entry: np.ndarray
    op: np.ndarray
    idle_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    def per_entry(self, values: np.ndarray, n_entries: int) -> np.ndarray:
        """Sum of a per-op, per-call quantity over each plan entry's occurrences."""
        return np.bincount(self.entry, weights=values[self.op], minlength=n_entries)

    def op_span(self, n_ops: int) -> tuple[np.ndarray, np.ndarray]:
        """(first start, last end) of each op's occurrences (0 for ops that never run)."""
        first = np.full(n_ops, np.inf)
        last = np.zeros(n_ops)
        np.minimum.at(first, self.op, self.start_s)
        np.maximum.at(last, self.op, self.end_s)
        first[np.isinf(first)] = 0.0
        return first, last


def occurrences(plan: Sequence[PlanStep]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entry, op, first occurrence of each entry) of a plan (`StepPlan.occurrences`, cached)."""
    return plan.occurrences if isinstance(plan, StepPlan) else StepPlan(plan).occurrences


def serial(
    plan: Sequence[PlanStep], busy_s: np.ndarray, launch_s: np.ndarray, entry_launch_s: float = 0.0
) -> Schedule:
    """One occurrence per (plan entry, op) in plan order. `busy_s` and `launch_s` are per op
    and per call (launch: the host gap the device waits before the op's kernels);
    `entry_launch_s` is a gap before each plan entry's first op (one captured-graph replay)."""
    entry, op, firsts = occurrences(plan)
    idle = launch_s[op]
    if entry_launch_s and len(op):
        idle = idle.copy()
        idle[firsts] += entry_launch_s
    end = np.cumsum(idle + busy_s[op])
    start = np.concatenate(([0.0], end[:-1]))
    return Schedule(entry, op, idle, start, end)
