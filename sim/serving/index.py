"""Vector search over cached prompt embeddings: exact cosine search (Numba), or hnswlib.

Exact search keeps the unit embeddings in one float32 matrix, packed (a removal moves the last
row into the hole), so a lookup is one pass of dot products over the live rows (`kernels.top1`:
single-threaded, where a BLAS matrix-vector product spawns threads that cost more than the work
at these sizes on a busy machine). The latent cache runs it inside its own lookup kernel on its
own rows; `ExactIndex` is the same search behind the `VectorIndex` interface, for the benchmark.
`experiments/serving/benchmark.py` measures it against hnswlib: exact search is faster up to the cache sizes simulated here (see the README numbers), and it is exact, so the
similarity -> K map sees true top-1 neighbours. `HnswIndex` (pip install hnswlib) is for caches of
hundreds of thousands of entries.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from workloads.errors import InputError

from .kernels import top1


class VectorIndex(Protocol):
    def add(self, key: int, vector: np.ndarray) -> None: ...
    def remove(self, key: int) -> None: ...
    def nearest(self, vector: np.ndarray) -> tuple[int, float]: ...
    def __len__(self) -> int: ...


class ExactIndex:
    """Exact top-1 cosine search over at most `capacity` unit vectors."""

    def __init__(self, dim: int, capacity: int) -> None:
        self._matrix = np.zeros((max(capacity, 1), dim), dtype=np.float32)
        self._keys = np.full(max(capacity, 1), -1, dtype=np.int64)
        self._row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row)

    def add(self, key: int, vector: np.ndarray) -> None:
        n = len(self._row)
        if n == len(self._matrix):  # grow (a byte-limited cache has no fixed entry count)
            self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
            self._keys = np.concatenate([self._keys, np.full(len(self._keys), -1, dtype=np.int64)])
        self._matrix[n] = vector
        self._keys[n] = key
        self._row[key] = n

    def remove(self, key: int) -> None:
        row = self._row.pop(key)
        last = len(self._row)
        if row != last:
            self._matrix[row] = self._matrix[last]
            self._keys[row] = self._keys[last]
            self._row[int(self._keys[row])] = row
        self._keys[last] = -1

    def nearest(self, vector: np.ndarray) -> tuple[int, float]:
        n = len(self._row)
        if not n:
            return -1, -1.0
        row, similarity = top1(self._matrix, n, vector)
        return int(self._keys[row]), float(similarity)


class HnswIndex:
    """Approximate top-1 cosine search with hnswlib (deleted slots are reused)."""

    def __init__(self, dim: int, capacity: int, ef: int = 64, m: int = 16, seed: int = 0) -> None:
        try:
            import hnswlib
        except ImportError:
            raise InputError("cache.index: hnsw needs hnswlib (pip install -e '.[serving]')") from None
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._capacity = max(capacity, 1)
        self._index.init_index(
            max_elements=self._capacity, ef_construction=100, M=m, random_seed=seed, allow_replace_deleted=True
        )
        self._index.set_ef(ef)
        self._index.set_num_threads(1)
        self._live: set[int] = set()

    def __len__(self) -> int:
        return len(self._live)

    def add(self, key: int, vector: np.ndarray) -> None:
        if len(self._live) >= self._capacity:
            self._capacity *= 2
            self._index.resize_index(self._capacity)
        self._index.add_items(vector[None, :], np.array([key]), replace_deleted=True)
        self._live.add(key)

    def remove(self, key: int) -> None:
        self._index.mark_deleted(key)
        self._live.discard(key)

    def nearest(self, vector: np.ndarray) -> tuple[int, float]:
        if not self._live:
            return -1, -1.0
        labels, distances = self._index.knn_query(vector[None, :], k=1)
        return int(labels[0, 0]), 1.0 - float(distances[0, 0])  # hnswlib 'ip' distance is 1 - dot
