"""The launch-queue schedule: a host issues ops one after another, the device runs them in order.

Eager frameworks launch kernels asynchronously: the host spends `host_s` per op (dispatch and
launches) and runs ahead while the device is busy, so the device idles only when the host falls
behind (Lee et al. 2024: autoregressive decode). An op starts on the device once the previous op
ended and the host issued its first kernel (`first_s` into its dispatch); it ends no earlier
than the host finishes issuing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workloads.ir import PlanStep

from .serial import Schedule, occurrences


def queued(
    plan: Sequence[PlanStep], busy_s: np.ndarray, host_s: np.ndarray, first_s: np.ndarray, extra_s: np.ndarray
) -> Schedule:
    """One occurrence per (plan entry, op) in plan order; per-op, per-call arrays. `extra_s` is
    device idle a pass attaches to an op (a cache lookup) before it starts."""
    entry, op, _ = occurrences(plan)
    idle = np.zeros(len(op))
    end = np.zeros(len(op))
    host = device = 0.0
    for j, o in enumerate(op.tolist()):
        issued = host + first_s[o]
        host += host_s[o]
        start = max(device, issued) + extra_s[o]
        finish = max(start + busy_s[o], host)
        idle[j] = finish - device - busy_s[o]
        end[j] = device = finish
    start_s = np.concatenate(([0.0], end[:-1])) if len(op) else end
    return Schedule(entry, op, idle, start_s, end)
