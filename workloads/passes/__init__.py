"""Graph passes: named, typed transforms OpGraph -> OpGraph, listed in experiments.

    passes:
      - {name: precision, by_class: {linear: fp8, conv: {weights: int8}}}
      - {name: fuse_elementwise}

Each module of this package defines `PASS`, a `Pass` (its name, a frozen dataclass of typed
options and the function); the registry discovers them, so a new pass is one module.
`apply_passes(graph, passes)` validates every entry (unknown pass or option: an `InputError`
naming it) and applies them in order. Passes never modify their input graph.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from ..errors import InputError, unknown
from ..ir import OpGraph


@dataclass(frozen=True)
class Pass:
    """A graph transform: `fn(graph, options) -> graph`, with `options` an instance of `options`."""

    name: str
    options: type
    fn: Callable[[OpGraph, Any], OpGraph]
    summary: str


@cache
def registry() -> Mapping[str, Pass]:
    """All passes by name, discovered from this package's modules."""
    found: dict[str, Pass] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        p = importlib.import_module(f"{__name__}.{info.name}").PASS
        found[p.name] = p
    return MappingProxyType(found)


def parse(passes: Any, where: str = "passes") -> list[tuple[Pass, Any]]:
    """Validate a `passes` list (of `{"name": ..., **options}`) into (pass, options) pairs."""
    from sim.arch.schema import from_mapping  # the typed-config loader shared with the arch

    if passes is None:
        return []
    if not isinstance(passes, Sequence) or isinstance(passes, (str, bytes)):
        raise InputError(f"expected a list of passes ({{name: ..., options}}), got {type(passes).__name__}", where=where)
    out = []
    for i, entry in enumerate(passes):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise InputError("expected a mapping with a 'name' (e.g. {name: precision, ...})", where=at)
        p = registry().get(entry["name"])
        if p is None:
            raise unknown("pass", entry["name"], registry(), where=at)
        options = {k: v for k, v in entry.items() if k != "name"}
        out.append((p, from_mapping(p.options, options, f"{at} ({p.name})")))
    return out


def apply_passes(graph: OpGraph, passes: Sequence[Mapping[str, Any]] | None, *, where: str = "passes") -> OpGraph:
    """`graph` transformed by each pass of `passes` in order (the input graph is unchanged)."""
    for p, options in parse(passes, where):
        graph = p.fn(graph, options)
    return graph


__all__ = ["Pass", "apply_passes", "parse", "registry"]
