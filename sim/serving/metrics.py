"""Serving metrics of one run, and savings against the same run without the cache.

Latency metrics leave out the first `warmup_fraction` of requests (by arrival): the cache starts
empty and the queues idle. Cost per 1,000 images is given two ways: `busy` charges only the
accelerator-seconds spent computing (an autoscaled fleet; NIRVANA's "cost" is compute spent),
`provisioned` charges every instance for the whole run; each instance at its own price per hour
(a heterogeneous fleet's groups may differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .cache import LatentCache
from .engine import Outcome


def summarize(
    outcome: Outcome, cache: LatentCache | None, prices: Sequence[float], slo_s: float, warmup: int
) -> dict[str, Any]:
    """Metrics of one run; `prices`: each instance's price per accelerator-hour."""
    instances = len(prices)
    n = len(outcome.arrival_s)
    measured = slice(min(warmup, n - 1), n)
    latency = outcome.latency_s[measured]
    skipped = outcome.skipped
    makespan = float(outcome.finish_s.max() - outcome.arrival_s[0])
    busy = float(outcome.busy_s.sum())
    w0, w1 = outcome.window
    ks, counts = np.unique(skipped, return_counts=True)
    stats = cache.stats if cache is not None else None
    return {
        "requests": n,
        "hit_rate": float(np.mean(skipped > 0)),
        "mean_k": float(skipped.mean()),
        "k_share": {int(k): float(c / n) for k, c in zip(ks, counts, strict=True)},
        "steps_saved": float(skipped.sum() / (outcome.steps * n)),
        "latency_mean_s": float(latency.mean()),
        "latency_p50_s": float(np.percentile(latency, 50)),
        "latency_p95_s": float(np.percentile(latency, 95)),
        "latency_p99_s": float(np.percentile(latency, 99)),
        "queue_wait_mean_s": float((outcome.start_s - outcome.ready_s)[measured].mean()),
        "slo_attainment": float(np.mean(latency <= slo_s)),
        "throughput_rps": float(n / makespan) if makespan > 0 else 0.0,
        "offered_rps": float((n - 1) / (outcome.arrival_s[-1] - outcome.arrival_s[0])) if n > 1 else 0.0,
        "mean_batch": float(outcome.batch.mean()),
        "busy_s": busy,
        "utilization": busy / (instances * makespan) if makespan > 0 else 0.0,
        "cost_per_1k_busy": float(outcome.busy_s @ np.asarray(prices)) / 3600 / n * 1000,
        "cost_per_1k_provisioned": sum(prices) * makespan / 3600 / n * 1000,
        "in_system_mean": outcome.in_system_area / (w1 - w0) if w1 > w0 else 0.0,
        "cache_peak_gb": (stats.peak_bytes / 1e9) if stats else 0.0,
        "cache_peak_entries": stats.peak_entries if stats else 0,
        "cache_evictions": stats.evictions if stats else 0,
        "events": outcome.events,
    }


def savings(with_cache: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """Relative reductions against the no-cache run (positive = better with the cache)."""

    def cut(key: str) -> float:
        return 1.0 - with_cache[key] / baseline[key] if baseline[key] else 0.0

    return {
        "compute_saved": cut("busy_s"),
        "latency_reduction": cut("latency_mean_s"),
        "latency_p95_reduction": cut("latency_p95_s"),
        "cost_saved": cut("cost_per_1k_busy"),
    }
