"""Argument checks of the Python API: wrong types are `InputError`s, never AttributeError.

`sim.load_arch` calls `check_load_arch` and `sim.simulate` calls `check_simulate` first, so
`sim.load_arch('h100', overrides='dram')` or `sim.simulate(graph, 'os128')` fail with a clear
message. `check_arch` also re-validates an `Arch` built by hand (`Arch(...)`,
`dataclasses.replace`), so the ranges of the config schema cannot be bypassed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workloads.errors import InputError, short_repr, short_str, unknown
from workloads.inputs import check_path_text

__all__ = ["check_arch", "check_graph", "check_load_arch", "check_overrides", "check_simulate"]


def _kind(obj: Any) -> str:
    return f"{type(obj).__name__} {short_repr(obj)}"


def check_graph(graph: Any) -> Any:
    """`graph` if it is an OpGraph whose counts fit int64 (see `workloads.registry.check_counts`)."""
    from workloads import OpGraph
    from workloads.registry import check_counts

    if not isinstance(graph, OpGraph):
        raise InputError(f"graph must be an OpGraph from workloads.build(...), got {_kind(graph)}")
    return graph.memo(check_counts, lambda: check_counts(graph, where=f"graph '{graph.name}'"))


CHECKED = "_checked"  # set on an Arch instance once its values passed the schema


def check_arch(arch: Any) -> Any:
    """`arch` if it is an Arch whose every value passes the schema (re-checked: it may be hand-built)."""
    from .arch.config import Arch
    from .arch.schema import from_mapping

    if not isinstance(arch, Arch):
        raise InputError(f"arch must be an Arch from sim.load_arch(...), got {_kind(arch)}")
    if not getattr(arch, CHECKED, False):  # load_arch's archs are checked; a replace()d one is not
        from_mapping(Arch, _plain(arch), f"arch '{short_str(arch.name)}':")
        object.__setattr__(arch, CHECKED, True)
    return arch


def _plain(value: Any) -> Any:
    """Nested dataclasses as dicts (shallow per level, unlike asdict, which deep-copies values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    return value


def check_overrides(overrides: Any, where: str = "overrides") -> Mapping[str, Any] | None:
    """`overrides` if it is None or a nested mapping with string keys and YAML-like values."""
    if overrides is None:
        return None
    if not isinstance(overrides, Mapping):
        raise InputError(
            f"must be a nested mapping such as {{'dram': {{'bandwidth_gbs': 512}}}}, got {_kind(overrides)}",
            where=where,
        )
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise InputError(f"keys must be strings, got {_kind(key)}", where=where)
        if isinstance(value, Mapping):
            check_overrides(value, f"{where}.{key}")
        else:
            _check_plain(value, f"{where}.{key}")
    return overrides


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Override values are what a YAML or JSON file can hold: scalars, lists and mappings."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif isinstance(value, Mapping):
        check_overrides(value, where)
    elif not isinstance(value, _PLAIN):
        raise InputError(f"expected a number, string, boolean, list or mapping, got {_kind(value)}", where=where)


def check_load_arch(source: Any, overrides: Any = None) -> None:
    """The arguments of `sim.load_arch`: a preset name, a path, a mapping or an Arch; overrides a mapping."""
    from .arch.config import Arch

    if isinstance(source, (bool, bytes)) or not isinstance(source, (str, Path, Mapping, Arch)):
        raise InputError(f"arch source must be a preset name, a YAML path, a mapping or an Arch, got {_kind(source)}")
    if isinstance(source, (str, Path)):
        text = str(source)
        if not text or "\0" in text or len(text) > 4096:
            raise InputError(f"arch source must be a preset name or a YAML path, got {short_repr(text)}")
        check_path_text(text, f"arch file '{short_str(text)}'")
    check_overrides(overrides)


def check_simulate(graph: Any, arch: Any, attention: Any = "fused", fuse_elementwise: Any = False) -> None:
    """The arguments of `sim.simulate`: an OpGraph, an Arch, an attention mode and a flag."""
    from .lower import ATTENTION_MODES

    check_graph(graph)
    check_arch(arch)
    if not isinstance(attention, str):
        raise InputError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {_kind(attention)}")
    if attention not in ATTENTION_MODES:
        raise unknown("attention lowering", attention, ATTENTION_MODES)
    if not isinstance(fuse_elementwise, bool):
        raise InputError(f"fuse_elementwise must be true or false, got {_kind(fuse_elementwise)}")
