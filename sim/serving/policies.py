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

The policies run inside the cache's Numba kernels (`kernels.py`: one min-heap of (score, tick)
records with lazy deletion, O(log n) per operation). `Policy` drives the same kernels for any
hashable keys, outside a cache: the unit tests check each policy's eviction order through it.
"""

from __future__ import annotations

from collections.abc import Hashable

from . import kernels as kn
from .state import grow, new_state

Key = Hashable


class Policy:
    """One eviction policy over arbitrary keys (the cache kernels' heap, keys mapped to slots)."""

    name = "lru"

    def __init__(self, steps: int = 50) -> None:
        self._buffers = new_state(1, (1,), (), self.name, steps, limit=1 << 62, slots=8)
        self._slot: dict[Key, int] = {}
        self._key: dict[int, Key] = {}

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, key: Key, k: int) -> None:
        if key in self._slot:
            raise KeyError(f"{key!r} is already stored")
        if len(self._slot) == len(kn.unpack(*self._buffers).entry):
            self._buffers = grow(self._buffers, 2 * len(self._slot), 1)
        slot = kn.policy(*self._buffers, kn.ADD, -1, k)
        self._slot[key], self._key[slot] = slot, key

    def use(self, key: Key) -> None:
        kn.policy(*self._buffers, kn.USE, self._slot[key], 0)

    def victim(self) -> Key:
        if not self._slot:
            raise LookupError("no entries")
        return self._key[kn.policy(*self._buffers, kn.VICTIM, -1, 0)]

    def remove(self, key: Key) -> None:
        slot = self._slot.pop(key)
        del self._key[slot]
        kn.policy(*self._buffers, kn.REMOVE, slot, 0)


class FifoPolicy(Policy):
    name = "fifo"


class LruPolicy(Policy):
    name = "lru"


class LfuPolicy(Policy):
    name = "lfu"


class LcbfuPolicy(Policy):
    name = "lcbfu"


def make_policy(name: str, steps: int) -> Policy:
    """The policy called `name` (fifo, lru, lfu, lcbfu) for a loop of `steps` steps."""
    return {"fifo": FifoPolicy, "lru": LruPolicy, "lfu": LfuPolicy, "lcbfu": LcbfuPolicy}[name](steps)
