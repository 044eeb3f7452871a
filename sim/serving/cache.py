"""The approximate cache of intermediate latents (NIRVANA, NSDI 2024).

A completed request stores its latents after the steps in `k_states` (5 by default) under its
prompt embedding. A new request retrieves the most similar cached prompt; the similarity picks K
from the threshold map (above 0.95 -> 25, 0.90 -> 20, 0.85 -> 15, 0.75 -> 10, 0.65 -> 5, else a
miss) and the request resumes from the largest stored state <= K of that prompt, skipping those
steps. A request that itself skipped K stores the state it started from and its later ones
(steps >= K). An entry is one stored state (prompt, k): capacity is in entries and optionally in
bytes (entries x latent bytes); `policies` picks the victim entry, and a prompt leaves the vector
index with its last state.

The state (embeddings, stored states, uses, eviction heap) is numpy arrays driven by the Numba
kernels in `kernels.py`; `LatentCache` is the thin Python face the engine calls twice per request.
With `index: exact` the search runs inside the lookup kernel (exact top-1 over the packed rows);
with `index: hnsw` hnswlib finds the neighbour and is kept in step with the prompts the kernels
add and drop, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as kn
from .config import CacheSpec
from .index import HnswIndex
from .state import grow, new_state


def k_from_similarity(similarity: float, thresholds: tuple[tuple[float, int], ...]) -> int:
    """Steps to skip for a neighbour at `similarity`: K of the first threshold it exceeds, else 0."""
    sims, ks = zip(*thresholds, strict=True)
    return int(kn.k_of(float(similarity), np.array(sims, dtype=np.float64), np.array(ks, dtype=np.int64)))


def latent_bytes(spec: CacheSpec, resolution: int) -> int:
    """Bytes of one stored latent state of a `resolution`^2 image."""
    side = max(resolution // spec.latent_downsample, 1)
    return spec.latent_channels * side * side * spec.latent_bytes_per_value


def entry_limit(capacity: int, capacity_gb: float, state_bytes: int) -> int:
    """Most entries: `capacity`, and at most as many states as fit in `capacity_gb` (0: no byte limit)."""
    if capacity_gb <= 0:
        return capacity
    byte_limit = capacity_gb * 1e9
    most = int(byte_limit // state_bytes)
    while most * state_bytes > byte_limit:  # exact integer-vs-float comparisons fix the rounding
        most -= 1
    while (most + 1) * state_bytes <= byte_limit:
        most += 1
    return min(capacity, most)


@dataclass
class CacheStats:
    lookups: int = 0
    hits: int = 0
    evictions: int = 0
    inserts: int = 0
    bytes_used: int = 0
    peak_bytes: int = 0
    peak_entries: int = 0


class LatentCache:
    """Prompts (embeddings) and their stored states; one state = one entry."""

    def __init__(self, spec: CacheSpec, dim: int, steps: int, state_bytes: int, seed: int = 0) -> None:
        self.spec, self.state_bytes = spec, state_bytes
        self.enabled = spec.capacity > 0
        limit = entry_limit(spec.capacity, spec.capacity_gb, state_bytes) if self.enabled else 0
        self._buffers = new_state(
            dim, spec.k_states, spec.thresholds, spec.policy, steps, limit,
            misses_only=spec.insert == "misses", never_store=limit == 0,
        )  # fmt: skip
        self._hnsw = HnswIndex(dim, max(spec.capacity, 1), seed=seed) if spec.index == "hnsw" else None

    @property
    def _st(self) -> kn.CacheState:
        return kn.unpack(*self._buffers)

    def __len__(self) -> int:
        return int(self._st.counters[kn.LIVE])

    @property
    def prompts(self) -> int:
        """Prompts in the vector index."""
        return int(self._st.counters[kn.N_ROWS])

    @property
    def states(self) -> dict[int, list[int]]:
        """Prompt key -> its stored steps, ascending."""
        st = self._st
        return {
            int(st.row_key[r]): [int(k) for k, s in zip(st.k_states, st.row_slots[r], strict=True) if s >= 0]
            for r in range(self.prompts)
        }

    @property
    def stats(self) -> CacheStats:
        c, b = self._st.counters, self.state_bytes
        return CacheStats(
            int(c[kn.LOOKUPS]), int(c[kn.HITS]), int(c[kn.EVICTIONS]), int(c[kn.INSERTS]),
            int(c[kn.LIVE]) * b, int(c[kn.PEAK]) * b, int(c[kn.PEAK]),
        )  # fmt: skip

    def lookup(self, embedding: np.ndarray) -> tuple[int, float]:
        """(steps to skip, similarity of the nearest cached prompt); 0 steps is a miss."""
        if self._hnsw is None:
            return kn.lookup(*self._buffers, embedding)
        key, similarity = self._hnsw.nearest(embedding)
        return kn.lookup_key(*self._buffers, key, similarity), similarity

    def insert(self, key: int, embedding: np.ndarray, skipped: int) -> None:
        """Store request `key`'s states (those at steps >= `skipped`), evicting as needed."""
        if not self.enabled:
            return
        if key < 0:
            raise ValueError(f"cache keys are non-negative request ids, got {key}")
        matrix, ints, floats = self._buffers
        dropped = kn.insert(matrix, ints, floats, key, embedding, skipped)
        if dropped == kn.GROW:
            st = self._st
            live, limit = int(st.counters[kn.LIVE]), int(st.counters[kn.LIMIT])
            slots = min(max(2 * len(st.entry), live + len(st.k_states)), limit)
            self._buffers = grow(self._buffers, slots, max(2 * len(st.row_of_key), key + 1))
            dropped = kn.insert(*self._buffers, key, embedding, skipped)
        if self._hnsw is not None and dropped >= 0:  # replay the index changes in order
            self._hnsw.add(key, embedding)
            for gone in self._st.dropped[:dropped]:
                self._hnsw.remove(int(gone))
