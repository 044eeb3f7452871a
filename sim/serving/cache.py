"""The approximate cache of intermediate latents (NIRVANA, NSDI 2024).

A completed request stores its latents after the steps in `k_states` (5 by default) under its
prompt embedding. A new request retrieves the most similar cached prompt; the similarity picks K
from the threshold map (above 0.95 -> 25, 0.90 -> 20, 0.85 -> 15, 0.75 -> 10, 0.65 -> 5, else a
miss) and the request resumes from the largest stored state <= K of that prompt, skipping those
steps. A request that itself skipped K stores the state it started from and its later ones
(steps >= K). An entry is one stored state (prompt, k): capacity is in entries and optionally in
bytes (entries x latent bytes); `policies` picks the victim entry, and a prompt leaves the vector
index with its last state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import CacheSpec
from .index import make_index
from .policies import make_policy


def k_from_similarity(similarity: float, thresholds: tuple[tuple[float, int], ...]) -> int:
    """Steps to skip for a neighbour at `similarity`: K of the first threshold it exceeds, else 0."""
    for threshold, k in thresholds:  # sorted by threshold, highest first
        if similarity > threshold:
            return k
    return 0


def latent_bytes(spec: CacheSpec, resolution: int) -> int:
    """Bytes of one stored latent state of a `resolution`^2 image."""
    side = max(resolution // spec.latent_downsample, 1)
    return spec.latent_channels * side * side * spec.latent_bytes_per_value


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
    """Prompts (embeddings in the vector index) and their stored states; one state = one entry."""

    def __init__(self, spec: CacheSpec, dim: int, steps: int, state_bytes: int, seed: int = 0) -> None:
        self.spec, self.state_bytes = spec, state_bytes
        self.enabled = spec.capacity > 0
        self.byte_limit = spec.capacity_gb * 1e9 if spec.capacity_gb > 0 else float("inf")
        self.index = make_index(spec.index, dim, spec.capacity, seed)
        self.policy = make_policy(spec.policy, steps)
        self.states: dict[int, list[int]] = {}  # prompt key -> stored steps, ascending
        self.entries = 0
        self._inserting = -1  # the prompt being stored: it stays indexed while its states go in
        self.stats = CacheStats()

    def __len__(self) -> int:
        return self.entries

    def lookup(self, embedding: np.ndarray) -> tuple[int, float]:
        """(steps to skip, similarity of the nearest cached prompt); 0 steps is a miss."""
        self.stats.lookups += 1
        key, similarity = self.index.nearest(embedding)
        if key < 0:
            return 0, similarity
        limit = k_from_similarity(similarity, self.spec.thresholds)
        k = max((s for s in self.states[key] if s <= limit), default=0)
        if k:
            self.stats.hits += 1
            self.policy.use((key, k))
        return k, similarity

    def insert(self, key: int, embedding: np.ndarray, skipped: int) -> None:
        """Store request `key`'s states (those at steps >= `skipped`), evicting as needed."""
        if not self.enabled or (skipped and self.spec.insert == "misses"):
            return
        steps = [s for s in self.spec.k_states if s >= skipped]
        if not steps or self.state_bytes > self.byte_limit:
            return
        self.index.add(key, embedding)
        stored = self.states[key] = []
        stats = self.stats
        self._inserting = key
        for k in steps:
            while self.entries >= self.spec.capacity or stats.bytes_used + self.state_bytes > self.byte_limit:
                self._evict(self.policy.victim())
            stored.append(k)
            self.policy.add((key, k), k)
            self.entries += 1
            stats.bytes_used += self.state_bytes
        stats.inserts += 1
        stats.peak_bytes = max(stats.peak_bytes, stats.bytes_used)
        stats.peak_entries = max(stats.peak_entries, self.entries)
        self._inserting = -1
        if not stored:  # its own states were the victims
            self._drop(key)

    def _evict(self, item: tuple[int, int]) -> None:
        key, k = item
        self.policy.remove(item)
        stored = self.states[key]
        stored.remove(k)
        self.entries -= 1
        self.stats.bytes_used -= self.state_bytes
        self.stats.evictions += 1
        if not stored and key != self._inserting:
            self._drop(key)

    def _drop(self, key: int) -> None:
        del self.states[key]
        self.index.remove(key)
