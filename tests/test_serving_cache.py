"""The Numba latent cache against a naive reference model of the same rules (seeded random traces).

The reference keeps prompts in a list (packed like the index: a removal moves the last prompt into
the hole, so equal similarities resolve to the same prompt), entries in a dict, and finds each
victim by a full scan for the smallest (score, last touch); it is the semantics the kernels'
heap, slot arrays and packed buffers must reproduce exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.serving.cache import LatentCache, entry_limit, k_from_similarity
from sim.serving.config import DEFAULT_THRESHOLDS, CacheSpec

STEPS = 50


class Reference:
    def __init__(self, spec: CacheSpec, limit: int) -> None:
        self.spec, self.limit = spec, limit
        self.rows: list[tuple[int, np.ndarray]] = []  # (key, vector) in index order
        self.stored: dict[int, list[int]] = {}
        self.entries: dict[tuple[int, int], list[int]] = {}  # (key, k) -> [uses, last touch]
        self.clock, self.inserting, self.evictions, self.hits = 0, -1, 0, 0

    def _touch(self, item: tuple[int, int]) -> None:
        self.clock += 1
        self.entries[item][1] = self.clock

    def _score(self, item: tuple[int, int]) -> tuple[float, int]:
        uses, tick = self.entries[item]
        policy = self.spec.policy
        score = {"lfu": uses + 1, "lcbfu": (uses + 1) * item[1] / STEPS}.get(policy, 0.0)
        return float(score), tick

    def lookup(self, v: np.ndarray) -> int:
        if not self.rows:
            return 0
        sims = [float(np.dot(row, v)) for _, row in self.rows]
        key = self.rows[int(np.argmax(sims))][0]
        limit = k_from_similarity(max(sims), self.spec.thresholds)
        k = max((s for s in self.stored[key] if s <= limit), default=0)
        if k:
            self.hits += 1
            self.entries[(key, k)][0] += 1
            if self.spec.policy != "fifo":
                self._touch((key, k))
        return k

    def _drop(self, key: int) -> None:
        del self.stored[key]
        i = next(i for i, (k, _) in enumerate(self.rows) if k == key)
        self.rows[i] = self.rows[-1]
        self.rows.pop()

    def insert(self, key: int, v: np.ndarray, skipped: int) -> None:
        steps = [s for s in self.spec.k_states if s >= skipped]
        if (skipped and self.spec.insert == "misses") or not steps or self.limit == 0:
            return
        self.rows.append((key, v))
        self.stored[key], self.inserting = [], key
        for k in steps:
            while len(self.entries) >= self.limit:
                victim = min(self.entries, key=self._score)
                del self.entries[victim]
                self.stored[victim[0]].remove(victim[1])
                self.evictions += 1
                if not self.stored[victim[0]] and victim[0] != key:
                    self._drop(victim[0])
            self.stored[key].append(k)
            self.entries[(key, k)] = [0, 0]
            self._touch((key, k))
        self.inserting = -1
        if not self.stored[key]:
            self._drop(key)


def trace(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors with near and exact repeats of earlier ones, and the K each request skipped."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, 16))
    for i in range(1, n):
        if rng.random() < 0.6:
            s, parent = rng.choice([1.0, 0.97, 0.92, 0.87, 0.8, 0.7]), rng.integers(i)
            v[i] = s * v[parent] / np.linalg.norm(v[parent]) + np.sqrt(1 - s * s) * v[i] / 4
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return v, rng.choice([0, 0, 5, 10, 20, 25, 30], size=n)


@pytest.mark.parametrize("policy", ["lcbfu", "lru", "lfu", "fifo"])
@pytest.mark.parametrize(
    "capacity, capacity_gb, insert, seed",
    [(7, 0, "all", 0), (40, 0, "all", 1), (40, 0, "misses", 2), (1000, 3e-6, "all", 3), (1000, 0, "all", 4)],
)
def test_cache_matches_the_reference_model(policy, capacity, capacity_gb, insert, seed):
    spec = CacheSpec(
        policy=policy, capacity=capacity, capacity_gb=capacity_gb, insert=insert,
        k_states=(5, 10, 15, 20, 25), thresholds=DEFAULT_THRESHOLDS,
    )  # fmt: skip
    state_bytes = 100
    cache = LatentCache(spec, 16, STEPS, state_bytes)
    ref = Reference(spec, entry_limit(capacity, capacity_gb, state_bytes))
    vectors, skipped = trace(seed)
    for key, (v, s) in enumerate(zip(vectors, skipped, strict=True)):
        assert cache.lookup(v)[0] == ref.lookup(v), key
        cache.insert(key, v, int(s))
        ref.insert(key, v, int(s))
        assert cache.states == ref.stored, key
    stats = cache.stats
    assert (stats.hits, stats.evictions, len(cache)) == (ref.hits, ref.evictions, len(ref.entries))
    assert stats.hits > 5 and (capacity > 100 or stats.evictions > 100)  # the trace exercises both


def test_entry_limit_is_exact_at_the_byte_boundary():
    assert entry_limit(100, 1e-6, 100) == 10  # 1,000 bytes hold exactly 10 states of 100 bytes
    assert entry_limit(100, 0.999e-6, 100) == 9
    assert entry_limit(5, 1e-6, 100) == 5 and entry_limit(5, 0, 100) == 5


def test_cache_grows_past_its_first_allocation_and_keeps_order():
    spec = CacheSpec(policy="lru", capacity=5000, thresholds=DEFAULT_THRESHOLDS)
    cache = LatentCache(spec, 8, STEPS, 1)
    eye = np.eye(8, dtype=np.float32)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((900, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for key, v in enumerate(vectors):
        cache.insert(key, v, 0)
    assert len(cache) == 4500 and cache.prompts == 900
    cache.insert(10_000_000, eye[0], 0)  # a large key grows the key map
    assert cache.lookup(eye[0]) == (25, pytest.approx(1.0)) and len(cache) == 4505
