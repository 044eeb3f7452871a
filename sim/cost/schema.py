"""The one declared schema of the cost models: kernel records, metric records, hardware records.

Kernels and metrics are numpy structured arrays, addressed by field name in Python and in the
Numba cost models alike (`k.m`, `out.compute_cycles`). The hardware record is derived from the
typed `Arch` dataclasses themselves: every numeric leaf (`dram.bandwidth_gbs` becomes field
`dram_bandwidth_gbs`), every choice field as its index (`array_dataflow`), every declared-key
mapping as an array field in its keys' order (`vector_cycles_per_element[class index]`,
`array_throughput[dtype index]`). So a
new hardware parameter is its typed field in `sim/arch/config.py` plus the one cost function
that reads it; a changed record layout is a new Numba signature (no stale compiled code).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np

KERNEL_FIELDS = (
    "unit", "m", "k", "n", "count", "a_dram", "b_dram", "c_dram",
    "vclass", "elements", "words_in", "words_out", "multipass", "par", "overlap",
    "a_bits", "b_bits", "c_bits", "mac_dtype",
    # sparsity (sim.lower.sparse): N:M weights, densities in parts per million, mode, formats
    "nm_n", "nm_m", "w_density", "a_density", "sparse_mode", "w_format", "a_format",
    # GPU kernel class (sim.cost.gpu GK_*), set by a runtime model (sim.runtime); 0: from the unit
    "gpu_kind",
    # approximate vector-unit variant (the `approx_nonlinear` pass): 1 = run on the approximate datapath
    "approx",
    # producer -> consumer L2 reuse (sim.runtime.l2): input words produced in the graph, their reuse distance in bytes
    "l2_words", "l2_distance",
)  # fmt: skip
KERNEL = np.dtype([(name, np.int64) for name in KERNEL_FIELDS])

# Per kernel call: cycles, and the action counts energy is computed from.
METRIC_FIELDS = (
    "compute_cycles", "stall_cycles",
    "dram_read_bytes", "dram_write_bytes", "l2_read_bytes", "l2_write_bytes", "sram_read_bytes", "sram_write_bytes",
    "macs", "macs_issued", "vector_cycles", "vector_ops", "cores_used", "folds",
)  # fmt: skip
METRIC = np.dtype([(name, np.float64) for name in METRIC_FIELDS])


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, tuple[str, ...], Any]]:
    """(record field, attribute path, encoder) for every numeric leaf of config class `cls`."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        hint, name, meta = hints[f.name], f"{prefix}{f.name}", f.metadata
        if dataclasses.is_dataclass(hint):
            out += [(n, (f.name, *path), enc) for n, path, enc in _leaves(hint, f"{name}_")]
        elif hint in (int, float, bool):
            out.append((name, (f.name,), float))
        elif hint is str and meta.get("choices"):
            out.append((name, (f.name,), meta["choices"].index))
        elif typing.get_origin(hint) is dict and meta.get("keys"):
            out.append((name, (f.name,), _entries(meta["keys"], meta.get("defaults", {}), meta.get("default_value", 0.0))))
    return out


def _entries(keys: tuple[str, ...], defaults: dict[str, float], default: float):
    """Encoder of a declared-key mapping: its values in `keys` order (an array field)."""
    return lambda mapping: [float(mapping.get(k, defaults.get(k, default))) for k in keys]


@cache
def _layout() -> tuple[np.dtype, tuple]:
    from ..arch import Arch

    leaves = tuple(_leaves(Arch))
    fields = []
    for name, path, encode in leaves:
        keys = _keys(Arch, path)
        fields.append((name, np.float64, (len(keys),)) if keys else (name, np.float64))
    return np.dtype(fields), leaves


def _keys(cls: type, path: tuple[str, ...]) -> tuple[str, ...]:
    """The declared keys of the mapping field at `path` (() for a scalar leaf)."""
    hints = typing.get_type_hints(cls)
    f = cls.__dataclass_fields__[path[0]]
    if len(path) > 1:
        return _keys(hints[path[0]], path[1:])
    return tuple(f.metadata.get("keys", ())) if typing.get_origin(hints[path[0]]) is dict else ()


def hardware_dtype() -> np.dtype:
    """The structured dtype of hardware records (one float64 field per numeric arch leaf)."""
    return _layout()[0]


def hardware_record(arch: Any) -> np.void:
    """`arch` as a hardware record for the cost models."""
    dtype, leaves = _layout()
    rec = np.zeros(1, dtype=dtype)
    for name, path, encode in leaves:
        rec[name] = encode(_get(arch, path))
    return rec[0]


def hardware_records(archs: Sequence[Any], base: Any, changed: Iterable[tuple[str, ...]]) -> np.ndarray:
    """Records of `archs`, each of which differs from `base` at most at the attribute paths
    `changed` (as a sweep's archs differ from its base): `base`'s record repeated, with only the
    leaves on a changed path read from each arch. Equal to `hardware_record` of each."""
    changed = [tuple(c) for c in changed]
    out = np.repeat(np.array([hardware_record(base)]), len(archs))
    for name, path, encode in _layout()[1]:
        if any(path[: len(c)] == c[: len(path)] for c in changed):
            out[name] = [encode(_get(arch, path)) for arch in archs]
    return out


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for attr in path:
        obj = getattr(obj, attr)
    return obj


__all__ = ["KERNEL", "KERNEL_FIELDS", "METRIC", "METRIC_FIELDS", "hardware_dtype", "hardware_record", "hardware_records"]
