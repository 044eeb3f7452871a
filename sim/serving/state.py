"""The latent cache's state as numpy buffers: creating, packing and growing it (plain Python).

`kernels.CacheState` names the arrays; the kernels take them packed into three buffers (matrix,
ints, floats), since Numba types a named-tuple argument field by field in Python (~4 us a call,
where three arrays cost under 1 us), and unpack them into views (`kernels.unpack`) inside.
"""

from __future__ import annotations

import numpy as np

from .kernels import (
    FLOATS,
    FREE,
    INSERTING,
    INTS,
    LIMIT,
    MISSES_ONLY,
    N_COUNTERS,
    NEVER_STORE,
    POLICY,
    POLICY_CODES,
    STEPS,
    CacheState,
    unpack,
)  # fmt: skip

Packed = tuple[np.ndarray, np.ndarray, np.ndarray]  # (matrix, ints, floats): what the kernels take


def pack(st: CacheState) -> Packed:
    """The state as three buffers; `ints` opens with a header of (offset, rows, columns) per array
    of `INTS`, then of `FLOATS` (offsets into `floats`)."""
    header = 3 * (len(INTS) + len(FLOATS))
    head, offset, parts = [], header, []
    for names, start in ((INTS, header), (FLOATS, 0)):
        offset = start
        for name in names:
            a = getattr(st, name)
            head += [offset, a.shape[0], a.shape[1] if a.ndim == 2 else 0]
            offset += a.size
            parts.append(a.ravel())
    ints = np.concatenate([np.array(head, dtype=np.int64), *parts[: len(INTS)]])
    return np.ascontiguousarray(st.matrix), ints, np.concatenate(parts[len(INTS) :]).astype(np.float64)


def new_state(
    dim: int, k_states: tuple[int, ...], thresholds: tuple[tuple[float, int], ...], policy: str, steps: int,
    limit: int, misses_only: bool = False, never_store: bool = False, slots: int = 256,
) -> Packed:  # fmt: skip
    """An empty cache of at most `limit` entries (arrays sized for `slots`; `grow` adds more)."""
    counters = np.zeros(N_COUNTERS, dtype=np.int64)
    counters[[LIMIT, POLICY, STEPS, INSERTING, MISSES_ONLY, NEVER_STORE]] = (
        limit, POLICY_CODES[policy], steps, -1, misses_only, never_store,
    )  # fmt: skip
    sims, ks = zip(*thresholds, strict=True) if thresholds else ((), ())
    empty = CacheState(
        np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros((0, len(k_states)), np.int64),
        np.zeros(0, np.int64), np.zeros((0, 5), np.int64), np.zeros(0, np.int64), np.zeros(0),
        np.zeros((0, 2), np.int64), counters, np.array(sims, dtype=np.float64), np.array(ks, dtype=np.int64),
        np.array(k_states, dtype=np.int64), np.zeros(0, np.int64),
    )  # fmt: skip
    return grow(pack(empty), max(1, min(slots, limit)), 1)


def _extend(a: np.ndarray, rows: int, fill: float) -> np.ndarray:
    out = np.full((rows, *a.shape[1:]), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def grow(packed: Packed, slots: int, keys: int) -> Packed:
    """New buffers with room for at least `slots` entries and keys below `keys` (same contents)."""
    st = unpack(*packed)
    old = len(st.entry)
    if slots > old:
        rows, heap = slots + 2, 4 * slots + 66  # the heap is compacted above 4 x live + 64 records
        counters, free = st.counters.copy(), _extend(st.free, slots, -1)
        f = counters[FREE]
        free[f : f + slots - old] = np.arange(slots - 1, old - 1, -1)
        counters[FREE] = f + slots - old
        st = st._replace(
            matrix=_extend(st.matrix, rows, 0), row_key=_extend(st.row_key, rows, -1),
            row_slots=_extend(st.row_slots, rows, -1), entry=_extend(st.entry, slots, -1), free=free,
            heap_score=_extend(st.heap_score, heap, 0), heap_rec=_extend(st.heap_rec, heap, -1),
            dropped=_extend(st.dropped, rows, -1), counters=counters,
        )  # fmt: skip
    if keys > len(st.row_of_key):
        st = st._replace(row_of_key=_extend(st.row_of_key, keys, -1))
    return pack(st)
