"""Eviction policies of the latent cache: which entry goes when the cache is full.

An entry is one stored latent state: (prompt, step k). Every policy sees `add(key, k)` when an
entry is stored, `use(key)` when a request resumes from it, and answers `victim()` (the entry to
evict; `remove` then drops it).

- `fifo`: the oldest stored entry.
- `lru`: the least recently stored or used entry.
- `lfu`: the fewest uses (storing counts as one); ties: least recently used first.
- `lcbfu` (NIRVANA's Least Computationally Beneficial and Frequently Used): the lowest
  frequency x K / N, with frequency = uses + 1 and K the steps the state lets a request skip
  (the artifact's rule); ties: least recently used first.

LFU and LCBFU keep a heap with lazy deletion: each change pushes a fresh (score, tick, key)
record and stale records are skipped at eviction, so every operation is O(log n).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol

Key = Hashable


class Policy(Protocol):
    def add(self, key: Key, k: int) -> None: ...
    def use(self, key: Key) -> None: ...
    def victim(self) -> Key: ...
    def remove(self, key: Key) -> None: ...


class FifoPolicy:
    def __init__(self) -> None:
        self._order: OrderedDict[Key, None] = OrderedDict()

    def add(self, key: Key, k: int) -> None:
        self._order[key] = None

    def use(self, key: Key) -> None:
        pass

    def victim(self) -> Key:
        return next(iter(self._order))

    def remove(self, key: Key) -> None:
        del self._order[key]


class LruPolicy(FifoPolicy):
    def use(self, key: Key) -> None:
        self._order.move_to_end(key)


class _ScoredPolicy:
    """Evicts the lowest score, the least recently touched first among equals."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Key]] = []
        self._tick: dict[Key, int] = {}  # key -> tick of its live heap record
        self._clock = 0
        self._uses: dict[Key, int] = {}
        self._k: dict[Key, int] = {}

    def score(self, key: Key) -> float:
        raise NotImplementedError

    def _push(self, key: Key) -> None:
        self._clock += 1
        self._tick[key] = self._clock
        heapq.heappush(self._heap, (self.score(key), self._clock, key))
        if len(self._heap) > 4 * len(self._tick) + 64:  # drop stale records now and then
            self._heap = [r for r in self._heap if self._tick.get(r[2]) == r[1]]
            heapq.heapify(self._heap)

    def add(self, key: Key, k: int) -> None:
        self._uses[key], self._k[key] = 0, k
        self._push(key)

    def use(self, key: Key) -> None:
        self._uses[key] += 1
        self._push(key)

    def victim(self) -> Key:
        while True:
            _, tick, key = self._heap[0]
            if self._tick.get(key) == tick:
                return key
            heapq.heappop(self._heap)

    def remove(self, key: Key) -> None:
        del self._tick[key], self._uses[key], self._k[key]


class LfuPolicy(_ScoredPolicy):
    def score(self, key: Key) -> float:
        return float(self._uses[key] + 1)


class LcbfuPolicy(_ScoredPolicy):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self._steps = steps

    def score(self, key: Key) -> float:
        return (self._uses[key] + 1) * self._k[key] / self._steps


def make_policy(name: str, steps: int) -> Policy:
    if name == "lcbfu":
        return LcbfuPolicy(steps)
    return {"fifo": FifoPolicy, "lru": LruPolicy, "lfu": LfuPolicy}[name]()
