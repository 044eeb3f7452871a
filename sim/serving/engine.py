"""The discrete-event serving engine: a heapq event loop (SimPy measured slower, see benchmark).

Time advances from event to event. Arrivals come from the sorted stream through a cursor (not the
heap); the heap holds `READY` (retrieval done), `DONE` (an instance's batch or segment ends) and
`FINISH` (requests leave) events, ordered by (time, sequence number), so runs are deterministic.
At equal times heap events go before arrivals.

Per request: at arrival the cache is searched (the lookup and, on a hit, the latent transfer
delay the request: `ready = arrival + lookup_s + state bytes / link`); when ready it joins the
fleet's queue; when it finishes, its latents are stored. Servers (`servers.py`) implement the
batching policies. The engine integrates the number of requests in the system over time itself
(a counter, not the per-request records), which the Little's-law test checks against lambda x W.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .cache import LatentCache
from .servers import Queue, make_servers
from .service import StepCosts
from .stream import Stream

READY, DONE, FINISH = 0, 1, 2


@dataclass
class Outcome:
    """Per-request records (arrays of length n) and per-instance busy seconds."""

    arrival_s: np.ndarray
    ready_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    skipped: np.ndarray
    similarity: np.ndarray
    batch: np.ndarray
    busy_s: np.ndarray
    steps: int
    window: tuple[float, float] = (0.0, 0.0)
    in_system_area: float = 0.0  # integral of requests in system over `window` (request-seconds)
    events: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def latency_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s


@dataclass
class EngineConfig:
    instances: int
    batching: str
    max_batch: int
    scheduling: str
    lookup_s: float
    transfer_s: float  # one latent state over the storage link
    warmup: int  # requests (by arrival) before the measurement window
    groups: tuple[int, ...] = ()  # instances per group of a heterogeneous fleet (empty: one group)


def run(
    stream: Stream,
    cache: LatentCache | None,
    costs: Callable[[int], StepCosts] | Sequence[Callable[[int], StepCosts]],
    config: EngineConfig,
) -> Outcome:
    """Simulate the stream through the cache and the fleet; every request finishes. `costs` gives
    the step costs at a batch size, one function per group of `config.groups` (or one for all)."""
    n = len(stream)
    per_group = list(costs) if isinstance(costs, Sequence) else [costs]
    if len(per_group) != max(len(config.groups), 1) or sum(config.groups or (config.instances,)) != config.instances:
        raise ValueError("one step-cost function per group, and groups adding up to the instances")
    steps = per_group[0](1).steps
    if any(c(1).steps != steps for c in per_group):
        raise ValueError("every group must run the same number of denoising steps")
    arrival = stream.arrival_s.tolist()
    embeddings = stream.embeddings
    skipped = [0] * n
    similarity = [-1.0] * n
    ready = list(arrival)
    start = [0.0] * n
    finish = [0.0] * n
    batch = [0] * n
    heap: list[tuple[float, int, int, object]] = []
    seq = 0

    def schedule(t: float, kind: int, payload: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, payload))

    queue = Queue(config.scheduling, steps, skipped)
    servers = make_servers(config, per_group, queue, schedule, skipped, start, batch)
    use_cache = cache is not None and cache.enabled
    w0 = arrival[min(config.warmup, n - 1)]
    w1 = arrival[-1]
    in_system, last_t, area = 0, w0, 0.0
    cursor, events = 0, 0
    while True:
        t_next = arrival[cursor] if cursor < n else float("inf")
        if heap and heap[0][0] <= t_next:
            t, _, kind, payload = heapq.heappop(heap)
            if kind == READY:
                servers.offer(t, payload)
            elif kind == DONE:
                servers.on_done(t, *payload)
            else:
                if w0 < t:  # integrate occupancy over [w0, w1]
                    area += in_system * (min(t, w1) - max(last_t, w0)) if last_t < w1 else 0.0
                    last_t = t
                for r in payload:
                    finish[r] = t
                    in_system -= 1
                    if use_cache:
                        cache.insert(r, embeddings[r], skipped[r])
        elif cursor < n:
            t, r = t_next, cursor
            cursor += 1
            if w0 < t:
                area += in_system * (min(t, w1) - max(last_t, w0)) if last_t < w1 else 0.0
                last_t = t
            in_system += 1
            if use_cache:
                k, s = cache.lookup(embeddings[r])
                skipped[r], similarity[r] = k, s
                ready[r] = t + config.lookup_s + (config.transfer_s if k else 0.0)
                schedule(ready[r], READY, r)
            else:
                servers.offer(t, r)
        else:
            break
        events += 1
    return Outcome(
        np.asarray(stream.arrival_s, dtype=float), np.array(ready), np.array(start), np.array(finish),
        np.array(skipped, dtype=np.int64), np.array(similarity), np.array(batch, dtype=np.int64),
        np.array(servers.busy_s), steps, (w0, w1), area, events,
    )  # fmt: skip
