"""Numba kernels of the latent cache: exact top-1 search, the eviction heap, lookup and insert.

The whole cache state lives in numpy arrays (`CacheState`), so a lookup or an insert is one
compiled call with no Python object per stored state (the engine makes two such calls per
request). All kernels are in this one file on purpose: Numba's on-disk cache is invalidated when
a function's own file changes, not when a function it calls from another file does.

Layout. A *row* is a cached prompt: its unit embedding (`matrix`, rows packed: removing a row
moves the last one into the hole, so the search scans `n_rows` contiguous rows), its key (the
request id) and its stored states (`row_slots[row, j]`: the entry slot of the state at step
`k_states[j]`, or -1). An *entry* (slot) is one stored state: `entry[slot] = (row, j, k, uses,
tick)`, tick -1 when the slot is free.

Policies (`policies.py` documents them) are one min-heap of (score, tick, slot) records with lazy
deletion: every add, and every use that changes the order, stamps the entry with a fresh tick
and pushes a record; a record whose tick is not its entry's current one is stale and skipped at
eviction. Scores: fifo and lru 0 (order by tick: insertion for fifo, which ignores uses; last
touch for lru), lfu uses + 1, lcbfu (uses + 1) x k / steps. Ticks are unique, so the victim is
fully determined, as with the ordered-dict and tuple-heap policies this replaces.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

FIFO, LRU, LFU, LCBFU = 0, 1, 2, 3
POLICY_CODES = {"fifo": FIFO, "lru": LRU, "lfu": LFU, "lcbfu": LCBFU}
# entry columns
E_ROW, E_J, E_K, E_USES, E_TICK = 0, 1, 2, 3, 4
# counters
(N_ROWS, LIVE, CLOCK, HEAP, FREE, LOOKUPS, HITS, EVICTIONS, INSERTS, PEAK, LIMIT, POLICY, STEPS, N_DROPPED,
 INSERTING, MISSES_ONLY, NEVER_STORE, N_COUNTERS) = range(18)  # fmt: skip
ADD, USE, VICTIM, REMOVE = range(4)  # `policy` operations
GROW = -2  # insert's answer when the arrays must grow first (nothing was changed)
INTS = ("row_key", "row_slots", "row_of_key", "entry", "free", "heap_rec", "counters", "thr_k", "k_states", "dropped")
FLOATS = ("heap_score", "thr_sim")


class CacheState(NamedTuple):
    """The cache arrays (see the module docstring); `state.pack` packs them for the kernels."""

    matrix: np.ndarray  # float32 [rows, dim]
    row_key: np.ndarray  # int64 [rows]
    row_slots: np.ndarray  # int64 [rows, S]
    row_of_key: np.ndarray  # int64 [keys]: row of a cached key, else -1
    entry: np.ndarray  # int64 [slots, 5]
    free: np.ndarray  # int64 [slots]: stack of free slots (counters[FREE] of them)
    heap_score: np.ndarray  # float64 [heap]
    heap_rec: np.ndarray  # int64 [heap, 2]: (tick, slot)
    counters: np.ndarray  # int64 [N_COUNTERS]
    thr_sim: np.ndarray  # float64 [T], descending
    thr_k: np.ndarray  # int64 [T]
    k_states: np.ndarray  # int64 [S], ascending
    dropped: np.ndarray  # int64 [rows]: keys of the prompts the last insert removed, in order


@njit(cache=True)
def _vec(buffer: np.ndarray, ints: np.ndarray, field: int) -> np.ndarray:
    offset = ints[3 * field]
    return buffer[offset : offset + ints[3 * field + 1]]


@njit(cache=True)
def _mat(ints: np.ndarray, field: int) -> np.ndarray:
    offset, rows, cols = ints[3 * field], ints[3 * field + 1], ints[3 * field + 2]
    return ints[offset : offset + rows * cols].reshape((rows, cols))


@njit(cache=True)
def unpack(matrix: np.ndarray, ints: np.ndarray, floats: np.ndarray) -> CacheState:
    """Views of the packed buffers as a `CacheState` (no copies)."""
    n = len(INTS)
    return CacheState(
        matrix, _vec(ints, ints, 0), _mat(ints, 1), _vec(ints, ints, 2), _mat(ints, 3), _vec(ints, ints, 4),
        _vec(floats, ints, n), _mat(ints, 5), _vec(ints, ints, 6), _vec(floats, ints, n + 1),
        _vec(ints, ints, 7), _vec(ints, ints, 8), _vec(ints, ints, 9),
    )  # fmt: skip


# ------------------------------------------------------------------------------------- search


@njit(cache=True, fastmath=True, nogil=True)
def top1(matrix: np.ndarray, n: int, vector: np.ndarray) -> tuple[int, float]:
    """Row of the largest dot product among the first n rows (single-threaded, no BLAS)."""
    best, best_row = -np.inf, -1
    for i in range(n):
        acc = np.float32(0.0)
        for j in range(matrix.shape[1]):
            acc += matrix[i, j] * vector[j]
        if acc > best:
            best, best_row = acc, i
    return best_row, best


@njit(cache=True)
def k_of(similarity: float, thr_sim: np.ndarray, thr_k: np.ndarray) -> int:
    """K of the first threshold (highest first) that `similarity` exceeds, else 0."""
    for t in range(len(thr_sim)):
        if similarity > thr_sim[t]:
            return thr_k[t]
    return 0


# --------------------------------------------------------------------------------------- heap


@njit(cache=True)
def _before(score: np.ndarray, rec: np.ndarray, a: int, b: int) -> bool:
    return score[a] < score[b] or (score[a] == score[b] and rec[a, 0] < rec[b, 0])


@njit(cache=True)
def _swap(score: np.ndarray, rec: np.ndarray, a: int, b: int) -> None:
    score[a], score[b] = score[b], score[a]
    t0, s0 = rec[a, 0], rec[a, 1]
    rec[a, 0], rec[a, 1] = rec[b, 0], rec[b, 1]
    rec[b, 0], rec[b, 1] = t0, s0


@njit(cache=True)
def _sift_down(score: np.ndarray, rec: np.ndarray, size: int, i: int) -> None:
    while True:
        smallest, left = i, 2 * i + 1
        if left < size and _before(score, rec, left, smallest):
            smallest = left
        if left + 1 < size and _before(score, rec, left + 1, smallest):
            smallest = left + 1
        if smallest == i:
            return
        _swap(score, rec, i, smallest)
        i = smallest


@njit(cache=True)
def _push(st: CacheState, value: float, tick: int, slot: int) -> None:
    score, rec, c = st.heap_score, st.heap_rec, st.counters
    i = c[HEAP]
    c[HEAP] += 1
    score[i], rec[i, 0], rec[i, 1] = value, tick, slot
    while i > 0:
        parent = (i - 1) // 2
        if not _before(score, rec, i, parent):
            return
        _swap(score, rec, i, parent)
        i = parent


@njit(cache=True)
def _compact(st: CacheState) -> None:
    """Drop stale records and re-heapify (the victim order does not change)."""
    score, rec, entry, c = st.heap_score, st.heap_rec, st.entry, st.counters
    size = 0
    for i in range(c[HEAP]):
        if entry[rec[i, 1], E_TICK] == rec[i, 0]:
            score[size], rec[size, 0], rec[size, 1] = score[i], rec[i, 0], rec[i, 1]
            size += 1
    c[HEAP] = size
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(score, rec, size, i)


# ------------------------------------------------------------------------------------ policies


@njit(cache=True)
def _touch(st: CacheState, slot: int) -> None:
    """Stamp the entry with a fresh tick and push its record at its current score."""
    c, e = st.counters, st.entry
    c[CLOCK] += 1
    e[slot, E_TICK] = c[CLOCK]
    policy = c[POLICY]
    if policy == LFU:
        value = float(e[slot, E_USES] + 1)
    elif policy == LCBFU:
        value = (e[slot, E_USES] + 1) * e[slot, E_K] / c[STEPS]
    else:
        value = 0.0
    _push(st, value, c[CLOCK], slot)
    if c[HEAP] > 4 * c[LIVE] + 64:
        _compact(st)


@njit(cache=True)
def _policy_add(st: CacheState, row: int, j: int, k: int) -> int:
    """Take a free slot for a new entry (prompt row, state j at step k); its slot."""
    c, e = st.counters, st.entry
    c[FREE] -= 1
    slot = st.free[c[FREE]]
    e[slot, E_ROW], e[slot, E_J], e[slot, E_K], e[slot, E_USES] = row, j, k, 0
    c[LIVE] += 1
    _touch(st, slot)
    return slot


@njit(cache=True)
def _policy_use(st: CacheState, slot: int) -> None:
    st.entry[slot, E_USES] += 1
    if st.counters[POLICY] != FIFO:
        _touch(st, slot)


@njit(cache=True)
def _policy_victim(st: CacheState) -> int:
    """The slot to evict (stale records on top of the heap are dropped on the way)."""
    score, rec, c = st.heap_score, st.heap_rec, st.counters
    while st.entry[rec[0, 1], E_TICK] != rec[0, 0]:
        c[HEAP] -= 1
        last = c[HEAP]
        score[0], rec[0, 0], rec[0, 1] = score[last], rec[last, 0], rec[last, 1]
        _sift_down(score, rec, last, 0)
    return rec[0, 1]


@njit(cache=True)
def _policy_remove(st: CacheState, slot: int) -> None:
    c = st.counters
    st.entry[slot, E_TICK] = -1
    st.free[c[FREE]] = slot
    c[FREE] += 1
    c[LIVE] -= 1


# ------------------------------------------------------------------------------------- cache


@njit(cache=True)
def _drop(st: CacheState, row: int) -> None:
    """Remove prompt `row` from the index: the last row moves into its place."""
    c = st.counters
    key = st.row_key[row]
    st.row_of_key[key] = -1
    st.dropped[c[N_DROPPED]] = key
    c[N_DROPPED] += 1
    last = c[N_ROWS] - 1
    if row != last:
        st.matrix[row] = st.matrix[last]
        st.row_key[row] = st.row_key[last]
        st.row_slots[row] = st.row_slots[last]
        st.row_of_key[st.row_key[row]] = row
        for j in range(st.row_slots.shape[1]):
            if st.row_slots[row, j] >= 0:
                st.entry[st.row_slots[row, j], E_ROW] = row
    c[N_ROWS] = last


@njit(cache=True)
def _evict(st: CacheState, slot: int) -> None:
    row, j = st.entry[slot, E_ROW], st.entry[slot, E_J]
    _policy_remove(st, slot)
    st.row_slots[row, j] = -1
    st.counters[EVICTIONS] += 1
    if st.row_key[row] != st.counters[INSERTING] and st.row_slots[row].max() < 0:
        _drop(st, row)


@njit(cache=True)
def _lookup_row(st: CacheState, row: int, similarity: float) -> int:
    """Steps to skip from prompt `row` at `similarity`: its largest stored state <= K (0: a miss)."""
    limit = k_of(similarity, st.thr_sim, st.thr_k)
    k, slot = 0, -1
    for j in range(len(st.k_states)):
        if st.row_slots[row, j] >= 0 and st.k_states[j] <= limit:
            k, slot = st.k_states[j], st.row_slots[row, j]
    if k:
        st.counters[HITS] += 1
        _policy_use(st, slot)
    return k


@njit(cache=True)
def _lookup(st: CacheState, vector: np.ndarray) -> tuple[int, float]:
    """Exact search: (steps to skip, similarity of the nearest cached prompt; -1 if none)."""
    st.counters[LOOKUPS] += 1
    if st.counters[N_ROWS] == 0:
        return 0, -1.0
    row, similarity = top1(st.matrix, st.counters[N_ROWS], vector)
    return _lookup_row(st, row, similarity), similarity


@njit(cache=True)
def _lookup_key(st: CacheState, key: int, similarity: float) -> int:
    """Steps to skip from a neighbour an external index found (key -1: none)."""
    st.counters[LOOKUPS] += 1
    return _lookup_row(st, st.row_of_key[key], similarity) if key >= 0 else 0


@njit(cache=True)
def _insert(st: CacheState, key: int, vector: np.ndarray, skipped: int) -> int:
    """Store prompt `key`'s states at steps >= `skipped`, evicting as needed. Returns how many
    prompts left the index (their keys: `st.dropped`), -1 when nothing was stored, or GROW."""
    c, k_states = st.counters, st.k_states
    if c[NEVER_STORE] or (skipped and c[MISSES_ONLY]) or k_states[-1] < skipped:
        return -1
    if key >= len(st.row_of_key) or min(c[LIVE] + len(k_states), c[LIMIT]) > len(st.entry):
        return GROW
    c[N_DROPPED] = 0
    row = c[N_ROWS]
    c[N_ROWS] += 1
    st.matrix[row] = vector
    st.row_key[row] = key
    st.row_slots[row] = -1
    st.row_of_key[key] = row
    c[INSERTING] = key
    for j in range(len(k_states)):
        if k_states[j] < skipped:
            continue
        while c[LIVE] >= c[LIMIT]:
            _evict(st, _policy_victim(st))
        row = st.row_of_key[key]
        st.row_slots[row, j] = _policy_add(st, row, j, k_states[j])
    c[INSERTS] += 1
    c[PEAK] = max(c[PEAK], c[LIVE])
    c[INSERTING] = -1
    row = st.row_of_key[key]
    if st.row_slots[row].max() < 0:  # its own states were the victims
        _drop(st, row)
    return c[N_DROPPED]


# ------------------------------------------------------------- entry points (packed buffers)


@njit(cache=True)
def lookup(matrix: np.ndarray, ints: np.ndarray, floats: np.ndarray, vector: np.ndarray) -> tuple[int, float]:
    return _lookup(unpack(matrix, ints, floats), vector)


@njit(cache=True)
def lookup_key(matrix: np.ndarray, ints: np.ndarray, floats: np.ndarray, key: int, similarity: float) -> int:
    return _lookup_key(unpack(matrix, ints, floats), key, similarity)


@njit(cache=True)
def insert(matrix: np.ndarray, ints: np.ndarray, floats: np.ndarray, key: int, vector: np.ndarray, skipped: int) -> int:
    return _insert(unpack(matrix, ints, floats), key, vector, skipped)


@njit(cache=True)
def policy(matrix: np.ndarray, ints: np.ndarray, floats: np.ndarray, op: int, slot: int, k: int) -> int:
    """One policy operation on entry `slot` (for `policies.Policy`): ADD (returns the new slot;
    `slot` unused), USE, VICTIM (returns the slot) or REMOVE."""
    st = unpack(matrix, ints, floats)
    if op == ADD:
        return _policy_add(st, -1, -1, k)
    if op == USE:
        _policy_use(st, slot)
    elif op == VICTIM:
        return _policy_victim(st)
    else:
        _policy_remove(st, slot)
    return slot
