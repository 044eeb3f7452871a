"""Resolving sweep points: a point's settings split by kind (arch, workload, simulation),
design bundles expanded, its store key (`Resolver.keyed`: without building its arch) and what
simulating it needs (`Resolver.resolve`). Each distinct workload and simulation setting set is
resolved once; a point's arch is the base arch with its arch keys applied."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from workloads.errors import InputError, short_repr, unknown
from workloads.passes import parse as parse_passes
from workloads.registry import registry, resolve_options

from .. import version
from ..arch import Arch, merge, with_overrides
from ..arch.schema import from_mapping, replace_checked
from ..results.store import digest
from .experiment import FILE_OPTIONS, Experiment, SimulationSpec

CACHE = 4096  # distinct arch / workload / simulation setting sets remembered during a sweep


def _kind(key: str) -> str:
    """arch, simulation or workload (model, options, passes and design bundles: they set a graph)."""
    return "arch" if key.startswith("arch.") else "simulation" if key.startswith("simulation.") else "workload"


def expand(exp: Experiment, point: Mapping[str, Any]) -> dict[str, Any]:
    """`point` with its design bundles' labels replaced by their settings; `passes` lists (of the
    `passes` axis and of bundles, in key order) are concatenated."""
    out: dict[str, Any] = {}
    passes: list[Any] = []
    for key, value in point.items():
        settings = exp.sweep[key][value] if key.startswith("design.") else {key: value}
        for k, v in settings.items():
            if k == "passes":
                passes += v if isinstance(v, list) else [v]
            else:
                out[k] = v
    if passes or "passes" in point:
        out["passes"] = passes
    return out


def variant(exp: Experiment, point: Mapping[str, Any]) -> Experiment:
    """`exp` with one point's settings applied."""
    arch_over = merge(exp.arch_overrides, _arch_overrides(point))
    options = dict(exp.workload.options)
    model = exp.workload.model
    passes = list(exp.passes or [])
    sim_changes: dict[str, Any] = {}
    for key, value in point.items():
        if key.startswith("arch."):
            continue
        if key == "passes":
            passes += value if isinstance(value, list) else [value]
        elif key.startswith("workload.options."):
            options[key.removeprefix("workload.options.")] = value
        elif key == "workload.model":
            model = value
        else:
            sim_changes[key.removeprefix("simulation.")] = value
    workload = replace(exp.workload, model=model, options=options)
    simulation = from_mapping(SimulationSpec, {**asdict(exp.simulation), **sim_changes}, "simulation")
    new = replace(exp, workload=workload, arch_overrides=arch_over, simulation=simulation, sweep={}, passes=passes)
    object.__setattr__(new, "base_dir", exp.base_dir)
    return new


@dataclass(frozen=True)
class Resolved:
    """What a point's settings resolve to: its store key and what simulating it needs."""

    key: str
    arch: Arch
    workload: Experiment  # the experiment with the point's workload settings
    workload_key: str
    simulation: SimulationSpec


@dataclass(frozen=True)
class Keyed:
    """A point's store key and its parts, without building its arch: `overrides` (nested arch
    keys) applied to the resolver's base arch give it."""

    key: str
    overrides: dict[str, Any]
    workload: Experiment
    workload_key: str
    simulation: SimulationSpec


class _Memo:
    """A bounded memo of `fn(settings)`, keyed by the settings' canonical text."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], Any], size: int = CACHE) -> None:
        self.fn, self.size, self.data = fn, size, {}

    def __call__(self, settings: Mapping[str, Any]) -> Any:
        text = _hashable(settings)
        if text not in self.data:
            if len(self.data) >= self.size:
                del self.data[next(iter(self.data))]
            self.data[text] = self.fn(settings)
        return self.data[text]


class Resolver:
    """Keys and resolves points: the base arch once, each distinct workload / simulation setting
    set once; a point's arch is the base with its arch keys applied (`with_overrides`).

    A point's key is a digest of the code, the base arch (every field), the point's arch keys,
    its workload (model, resolved options, file contents, passes, runtime) and simulation
    options: the same key means the same inputs, so the same numbers."""

    def __init__(self, exp: Experiment, source: str = "") -> None:
        self.exp, self.source = exp, source
        self.base = exp.load_arch(source)
        self.base_key = arch_digest(self.base)
        self._workload = _Memo(self._workload_of)
        self._simulation = _Memo(self._sim_of)
        self._values = _Memo(self._arch_value_of)

    def keyed(self, point: Mapping[str, Any]) -> Keyed:
        """The point's key and parts; `InputError` naming the point for bad workload settings."""
        parts = _split(expand(self.exp, point))
        try:
            workload, workload_key = self._workload(parts["workload"])
            simulation, simulation_key = self._simulation(parts["simulation"])
        except InputError as exc:
            raise InputError(str(exc), where=f"{self.source}: sweep point {short_repr(dict(point))}") from None
        overrides = _arch_overrides(parts["arch"])
        key = digest({
            "code": version.code_digest(), "arch": [self.base_key, overrides], "workload": workload_key,
            "simulation": simulation_key,
        })  # fmt: skip
        return Keyed(key, overrides, workload, workload_key, simulation)

    def check(self, point: Mapping[str, Any]) -> None:
        """Check a point's settings: workload and simulation sets whole, each arch key's value
        on its own (whether the arch's values fit together -- tiles in SRAMs -- is known when
        the point runs: a point whose do not is stored as infeasible)."""
        parts = _split(expand(self.exp, point))
        try:
            for key, value in parts["arch"].items():
                self._values({key: value})
        except InputError as exc:
            raise InputError(str(exc), where=f"{self.source}: sweep point {short_repr(dict(point))}") from None
        self.keyed(point)

    def resolve(self, point: Mapping[str, Any]) -> Resolved:
        """The point's key, arch, workload and simulation options; `InputError` naming the point
        (an arch whose values do not fit together included)."""
        k = self.keyed(point)
        try:
            arch = with_overrides(self.base, k.overrides, self._arch_where) if k.overrides else self.base
        except InputError as exc:
            raise InputError(str(exc), where=f"{self.source}: sweep point {short_repr(dict(point))}") from None
        return Resolved(k.key, arch, k.workload, k.workload_key, k.simulation)

    @property
    def arch_paths(self) -> tuple[tuple[str, ...], ...]:
        """Attribute paths of the arch keys the sweep sets (its axes and its bundles' settings)."""
        keys = set()
        for key, values in self.exp.sweep.items():
            inner = [k for bundle in values.values() for k in bundle] if key.startswith("design.") else [key]
            keys |= {k for k in inner if k.startswith("arch.")}
        return tuple(sorted(tuple(k.removeprefix("arch.").split(".")) for k in keys))

    @property
    def _arch_where(self) -> str:
        return f"{self.source}: sweep arch" if self.source else "sweep arch"

    def _arch_value_of(self, settings: Mapping[str, Any]) -> None:
        replace_checked(self.base, _arch_overrides(settings), self._arch_where)

    def _workload_of(self, settings: Mapping[str, Any]) -> tuple[Experiment, str]:
        exp = variant(self.exp, settings)
        model = exp.workload.model
        if model not in registry():
            raise unknown("model", model, registry())
        options = resolve_options(registry()[model], exp.workload.options)
        files = {k: _file_digest(exp.base_dir, v) for k, v in options.items() if k in FILE_OPTIONS}
        parse_passes(exp.passes, where="passes")
        extra = {"passes": exp.passes} if exp.passes else {}
        if exp.runtime is not None:
            extra["runtime"] = exp.runtime
        return exp, digest({"model": model, "options": options, "files": files, **extra})

    def _sim_of(self, settings: Mapping[str, Any]) -> tuple[SimulationSpec, dict[str, Any]]:
        simulation = variant(self.exp, settings).simulation
        return simulation, asdict(simulation)


def arch_digest(arch: Arch) -> str:
    """A digest of every value of a resolved arch: its dataclass repr (exact floats, every
    nested field), far cheaper than hashing `asdict` (which deep-copies)."""
    return hashlib.sha256(repr(arch).encode()).hexdigest()[:32]


def _split(point: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = {"arch": {}, "workload": {}, "simulation": {}}
    for key, value in point.items():
        parts[_kind(key)][key] = value
    return parts


def _hashable(settings: Mapping[str, Any]) -> Any:
    """A memo key of settings: their items with value types (1, 1.0, True and '1' differ), or
    their canonical text when a value is not hashable."""
    try:
        key = tuple((k, type(v), v) for k, v in settings.items())
        hash(key)
        return key
    except TypeError:
        return _text(settings)


def _text(settings: Mapping[str, Any]) -> str:
    """Canonical text of settings (types kept apart: 1, 1.0, True and '1' differ)."""
    return json.dumps(list(settings.items()), default=lambda o: f"{type(o).__name__}:{o!r}")


def _file_digest(base_dir: Path, value: Any) -> str | None:
    """sha256 of the file a file option names (as `Experiment.build` resolves it), if it is one."""
    if not isinstance(value, str) or not value:
        return None
    for path in (base_dir / value, Path(value).expanduser()):
        if path.is_file():
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
    return None


def _arch_overrides(point: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in point.items():
        if key.startswith("arch."):
            _set(tree, key.removeprefix("arch.").split("."), value)
    return tree


def _set(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


__all__ = ["Keyed", "Resolved", "Resolver", "arch_digest", "expand", "variant"]
