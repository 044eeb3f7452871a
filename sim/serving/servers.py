"""Fleet servers: the queue and the batching policies the engine drives.

- `none`: an instance serves one request at a time: prologue + steps K..N-1 + epilogue at batch 1.
- `static`: a free instance takes up to `max_batch` queued requests (no waiting for a full batch)
  and runs them as one batch at batch size b: prologue(b) + the longest request's remaining
  steps at b + epilogue(b); all leave together.
- `continuous` (step-level, Orca-style): an instance runs denoising steps on its active set;
  requests join at step boundaries (paying their prologue at the joiners' batch size first) and
  leave once their last step is done (paying the epilogue at the leavers' batch size). Requests
  at different steps share a batched step, costed at the active set's batch size (mean loop step).
  A segment runs until the first active request finishes; a request arriving while an instance has
  room cuts the segment at the next step boundary.

Queueing: `fifo`, or `srf` (shortest remaining first: fewest loop steps left, then arrival order).

Heterogeneous fleets: instances come in groups (`EngineConfig.groups`), each with its own step
costs. A request offered while instances are idle (or, with continuous batching, have room) goes
to the one where it would finish first: the smallest batch-1 service time for its K (continuous:
plus the wait for the instance's next step boundary); ties keep the one-group order (the idle
stack's top, the earliest boundary). A freed instance takes the head of the shared queue.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .service import StepCosts

if TYPE_CHECKING:
    from .engine import EngineConfig

Schedule = Callable[[float, int, Any], None]
DONE, FINISH = 1, 2


class Queue:
    """Requests waiting for an instance, FIFO or shortest-remaining-first."""

    def __init__(self, order: str, steps: int, skipped: list[int]) -> None:
        self._srf, self._steps, self._skipped = order == "srf", steps, skipped
        self._fifo: deque[int] = deque()
        self._heap: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._heap) if self._srf else len(self._fifo)

    def push(self, r: int) -> None:
        if self._srf:
            heapq.heappush(self._heap, (self._steps - self._skipped[r], r))
        else:
            self._fifo.append(r)

    def pop(self, most: int) -> list[int]:
        take = min(most, len(self))
        if self._srf:
            return [heapq.heappop(self._heap)[1] for _ in range(take)]
        return [self._fifo.popleft() for _ in range(take)]


class _Servers:
    def __init__(
        self, config: EngineConfig, costs: Sequence[Callable[[int], StepCosts]], queue: Queue, schedule: Schedule,
        skipped: list[int], start: list[float], batch: list[int],
    ) -> None:  # fmt: skip
        self.config, self.queue, self.schedule = config, queue, schedule
        self.skipped, self.start, self.batch = skipped, start, batch
        self.busy_s = [0.0] * config.instances
        self.idle = list(range(config.instances - 1, -1, -1))  # a stack: instance 0 first
        sizes = config.groups or (config.instances,)
        self.group = [g for g, size in enumerate(sizes) for _ in range(size)]  # instance -> group
        self.mixed = len(sizes) > 1
        self._costs = costs
        self._memo: dict[tuple[int, int], tuple[StepCosts, list[float]]] = {}

    def costs(self, inst: int, b: int) -> tuple[StepCosts, list[float]]:
        """Step costs of instance `inst` at batch b and seconds of loop steps k..N-1 for every k."""
        key = (self.group[inst], b)
        if key not in self._memo:
            c = self._costs[key[0]](b)
            self._memo[key] = (c, c.remaining_s().tolist())
        return self._memo[key]

    def service_s(self, inst: int, r: int) -> float:
        """Seconds request r takes alone on instance `inst` (0 in a one-group fleet: no preference)."""
        if not self.mixed:
            return 0.0
        c, remaining = self.costs(inst, 1)
        return c.prologue_s + remaining[self.skipped[r]] + c.epilogue_s

    def take_idle(self, r: int) -> int:
        """The idle instance where request r finishes first (ties: the top of the idle stack)."""
        if not self.mixed:
            return self.idle.pop()
        best = min(range(len(self.idle) - 1, -1, -1), key=lambda i: self.service_s(self.idle[i], r))
        return self.idle.pop(best)


class BatchServers(_Servers):
    """`none` (max batch 1) and `static` batching."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.most = self.config.max_batch if self.config.batching == "static" else 1
        self.running: list[list[int]] = [[] for _ in range(self.config.instances)]

    def offer(self, t: float, r: int) -> None:
        if self.idle:
            self._start(self.take_idle(r), [r], t)
        else:
            self.queue.push(r)

    def _start(self, inst: int, reqs: list[int], t: float) -> None:
        b = len(reqs)
        c, remaining = self.costs(inst, b)
        first = min(self.skipped[r] for r in reqs)
        duration = c.prologue_s + remaining[first] + c.epilogue_s
        for r in reqs:
            self.start[r], self.batch[r] = t, b
        self.running[inst] = reqs
        self.busy_s[inst] += duration
        self.schedule(t + duration, DONE, (inst, 0))

    def on_done(self, t: float, inst: int, version: int) -> None:
        self.schedule(t, FINISH, self.running[inst])
        reqs = self.queue.pop(self.most)
        if reqs:
            self._start(inst, reqs, t)
        else:
            self.running[inst] = []
            self.idle.append(inst)


class ContinuousServers(_Servers):
    """Step-level continuous batching (see the module docstring)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        n = self.config.instances
        self.active: list[list[int]] = [[] for _ in range(n)]
        self.joining: list[list[int]] = [[] for _ in range(n)]
        self.left: dict[int, int] = {}
        self.running = [False] * n
        self.version = [0] * n
        self.begin = [0.0] * n  # when the current segment (with its overhead) began
        self.seg_start = [0.0] * n  # when its first step starts
        self.seg_steps = [0] * n
        self.step_s = [1.0] * n

    def _room(self, inst: int) -> int:
        return self.config.max_batch - len(self.active[inst]) - len(self.joining[inst])

    def offer(self, t: float, r: int) -> None:
        if self.idle:
            inst = self.take_idle(r)
        else:
            # queued requests go first: they join at the next boundaries, in queue order
            candidates = [] if len(self.queue) else [i for i in range(self.config.instances) if self._room(i) > 0]
            if not candidates:
                self.queue.push(r)
                return
            inst = min(candidates, key=lambda i: (self._boundary(i, t) + self.service_s(i, r), -self._room(i), i))
        self.joining[inst].append(r)
        if self.running[inst]:
            self._cut(inst, t)
        else:
            self._segment(inst, t)

    def _segment(self, inst: int, t: float) -> None:
        self.begin[inst] = t
        overhead = 0.0
        joining = self.joining[inst]
        if joining:
            c, _ = self.costs(inst, len(joining))
            overhead = c.prologue_s
            steps = c.steps
            for r in joining:
                self.start[r] = t
                self.left[r] = steps - self.skipped[r]
            self.active[inst].extend(joining)
            self.joining[inst] = []
        active = self.active[inst]
        if not active:
            self.running[inst] = False
            self.idle.append(inst)
            return
        b = len(active)
        for r in active:
            self.batch[r] = max(self.batch[r], b)
        c, _ = self.costs(inst, b)
        self.running[inst] = True
        self.version[inst] += 1
        self.seg_start[inst] = t + overhead
        self.step_s[inst] = c.step_s
        self.seg_steps[inst] = min(self.left[r] for r in active)
        self.schedule(self.seg_start[inst] + self.seg_steps[inst] * c.step_s, DONE, (inst, self.version[inst]))

    def _steps_by(self, inst: int, t: float) -> int:
        """Steps of the running segment done by the first step boundary at or after t."""
        return min(max(0, math.ceil((t - self.seg_start[inst]) / self.step_s[inst] - 1e-9)), self.seg_steps[inst])

    def _boundary(self, inst: int, t: float) -> float:
        """When a request offered at t could join `inst`."""
        return self.seg_start[inst] + self._steps_by(inst, t) * self.step_s[inst]

    def _cut(self, inst: int, t: float) -> None:
        """End the running segment at the first step boundary at or after t."""
        done = self._steps_by(inst, t)
        if done >= self.seg_steps[inst]:
            return
        self.seg_steps[inst] = done
        self.version[inst] += 1
        self.schedule(self.seg_start[inst] + done * self.step_s[inst], DONE, (inst, self.version[inst]))

    def on_done(self, t: float, inst: int, version: int) -> None:
        if version != self.version[inst]:
            return  # a segment that was cut short
        self.busy_s[inst] += t - self.begin[inst]
        n = self.seg_steps[inst]
        left = self.left
        still, leaving = [], []
        for r in self.active[inst]:
            left[r] -= n
            (still if left[r] > 0 else leaving).append(r)
        self.active[inst] = still
        if leaving:  # decode the leavers, then resume at a zero-step boundary (arrivals may join meanwhile)
            for r in leaving:
                del left[r]
            end = t + self.costs(inst, len(leaving))[0].epilogue_s
            self.schedule(end, FINISH, leaving)
            self.begin[inst], self.seg_start[inst], self.seg_steps[inst] = t, end, 0
            self.version[inst] += 1
            self.schedule(end, DONE, (inst, self.version[inst]))
            return
        room = self._room(inst)
        if room > 0:
            self.joining[inst].extend(self.queue.pop(room))
        self._segment(inst, t)


def make_servers(config: EngineConfig, *args: Any) -> BatchServers | ContinuousServers:
    return ContinuousServers(config, *args) if config.batching == "continuous" else BatchServers(config, *args)
