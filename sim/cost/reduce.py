"""Group reductions of per-kernel metrics over many hardware configurations at once (Numba).

Every reduction adds in a fixed order (`group_sum` in row order, as `np.bincount` does), so a
configuration's totals are the same bits whether it is reduced alone or in a batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def group_sum(values, source, group, groups):
    """out[f, b, g] = sum, in row order, over rows i with group[i] == g of values[f, b, source[i]];
    rows with a negative group are skipped. values: (fields, configs, sources)."""
    fields, configs = values.shape[0], values.shape[1]
    out = np.zeros((fields, configs, groups))
    for f in range(fields):
        for b in range(configs):
            for i in range(source.shape[0]):
                g = group[i]
                if g >= 0:
                    out[f, b, g] += values[f, b, source[i]]
    return out


@njit(cache=True)
def group_max(values, source, group, groups):
    """out[b, g] = max(0, max over rows i with group[i] == g of values[b, source[i]])."""
    configs = values.shape[0]
    out = np.zeros((configs, groups))
    for b in range(configs):
        for i in range(source.shape[0]):
            g = group[i]
            if g >= 0 and values[b, source[i]] > out[b, g]:
                out[b, g] = values[b, source[i]]
    return out


@njit(cache=True)
def weighted_sum(values, weights):
    """out[b, w] = sum over sources s, in order, of weights[w, s] * values[b, s]."""
    configs, sources = values.shape
    out = np.zeros((configs, weights.shape[0]))
    for b in range(configs):
        for w in range(weights.shape[0]):
            acc = 0.0
            for s in range(sources):
                if weights[w, s] != 0.0:
                    acc += weights[w, s] * values[b, s]
            out[b, w] = acc
    return out


__all__ = ["group_max", "group_sum", "weighted_sum"]
