"""The model registry: every buildable model, its options and their defaults.

Each module in `workloads.zoo` exports `MODELS`, a tuple of `ModelSpec`; the registry is
discovered from that package, so adding a model is adding one module.

Option bounds: an integer option is at least 1 and at most `OPTION_MAX[name]` (batch 4096,
resolution 16384, steps 10000, ...) or `INT_OPTION_MAX` for other names; a number option is
finite with magnitude at most 1e9; a string option is at most `STRING_OPTION_MAX` characters
without NUL or control characters. Combinations within these bounds can still describe an
absurd workload, so every built graph is checked with `check_counts`: no op's MACs, vector
work, elements or parameters, times its repeat, may exceed `COUNT_MAX` (2**62, int64 with
margin), nor may their graph totals; a larger workload is an `InputError` ("workload too large").
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from . import zoo
from .errors import InputError, short_repr, short_str, suggest, unknown
from .inputs import check_path_text
from .ir import OpGraph, numel

OPTION_MAX: Mapping[str, int] = MappingProxyType({
    "batch": 4096, "resolution": 16384, "frames": 4096, "steps": 10_000, "sr_steps": 10_000,
    "prompt_len": 65_536, "kv_len": 1 << 20, "gen_tokens": 1 << 20, "kv_buckets": 1024,
})  # fmt: skip
INT_OPTION_MAX = 1 << 20  # integer options not listed in OPTION_MAX
FLOAT_OPTION_MAX = 1e9  # magnitude of a number option
STRING_OPTION_MAX = 4096  # characters of a string option (paths included)
PATH_OPTIONS = ("path", "config")  # string options naming files
COUNT_MAX = 2**62  # per-op and total MACs, vector work, elements, params (repeats included)


@dataclass(frozen=True)
class ModelSpec:
    """A buildable model: `fn(**options)` returns its OpGraph; `options` holds the defaults."""

    name: str
    fn: Callable[..., OpGraph]
    options: Mapping[str, Any]
    summary: str
    family: str  # diffusion-tti, transformer-tti, ttv, llm
    reference: str = ""  # implementation or paper the builder follows
    component: bool = False  # a part of a pipeline (UNet, decoder) rather than a whole pipeline
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


@cache
def registry() -> Mapping[str, ModelSpec]:
    """All models by name, discovered from the modules of `workloads.zoo`."""
    specs: dict[str, ModelSpec] = {}
    for info in sorted(pkgutil.iter_modules(zoo.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:  # blocks/: shared building blocks
            continue
        module = importlib.import_module(f"{zoo.__name__}.{info.name}")
        for spec in getattr(module, "MODELS", ()):
            if spec.name in specs:
                raise RuntimeError(f"model {spec.name!r} registered twice")
            specs[spec.name] = spec
    return _Names(dict(sorted(specs.items())))


class _Names(Mapping[str, ModelSpec]):
    """A read-only name -> spec mapping where any user value may be looked up: `[1] in registry()`
    is False and `registry()[{}]` a KeyError, never a TypeError."""

    def __init__(self, specs: dict[str, ModelSpec]) -> None:
        self._specs = specs

    def __getitem__(self, name: object) -> ModelSpec:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._specs

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def resolve_options(spec: ModelSpec, options: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
    """Defaults overridden by `options`, each checked against the default's type and range."""
    if not isinstance(options, Mapping):
        raise InputError(f"model options must be a mapping, got {short_repr(options)}", where=where)
    resolved = dict(spec.options)
    for key, value in options.items():
        if key not in spec.options:
            raise InputError(
                f"model '{spec.name}' has no option '{short_str(key)}'{suggest(key, spec.options)}; "
                f"options: {', '.join(spec.options)}",
                where=where,
            )
        resolved[key] = _coerce(spec, key, value, where)
    return resolved


def _coerce(spec: ModelSpec, key: str, value: Any, where: str | None) -> Any:
    default = spec.options[key]
    if key in spec.choices and not _is_choice(value, spec.choices[key]):
        raise unknown(f"value for option '{key}'", value, spec.choices[key], where=where)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"option '{key}' expects true or false, got {short_repr(value)}", where=where)
        return value
    if isinstance(default, int):
        return _check_int(key, value, where)
    if isinstance(default, float):
        return _check_float(key, value, where)
    if isinstance(default, str):
        text = check_text(value, f"option '{key}'", where)
        return check_path_text(text, f"option '{key}'", where) if key in PATH_OPTIONS else text
    return value


def _is_choice(value: Any, choices: tuple[Any, ...]) -> bool:
    try:
        return value in choices
    except TypeError:  # an unhashable or incomparable value is no choice
        return False


def _check_int(key: str, value: Any, where: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"option '{key}' expects an integer, got {short_repr(value)}", where=where)
    if value <= 0:
        raise InputError(f"option '{key}' must be positive, got {short_repr(value)}", where=where)
    high = OPTION_MAX.get(key, INT_OPTION_MAX)
    if value > high:
        raise InputError(f"option '{key}' must be at most {high}, got {short_repr(value)}", where=where)
    return value


def _check_float(key: str, value: Any, where: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"option '{key}' expects a number, got {short_repr(value)}", where=where)
    if not -FLOAT_OPTION_MAX <= value <= FLOAT_OPTION_MAX or value != value:  # NaN fails both
        raise InputError(f"option '{key}' must be a finite number of magnitude at most 1e9, got {value}", where=where)
    return float(value)


def check_text(value: Any, what: str, where: str | None = None) -> str:
    """`value` if it is a string of at most `STRING_OPTION_MAX` characters without control characters."""
    if not isinstance(value, str):
        raise InputError(f"{what} expects a string, got {short_repr(value)}", where=where)
    if len(value) > STRING_OPTION_MAX:
        raise InputError(f"{what} is longer than {STRING_OPTION_MAX} characters: {short_repr(value)}", where=where)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(f"{what} contains a control character: {short_repr(value)}", where=where)
    return value


def check_counts(graph: OpGraph, where: str | None = None) -> OpGraph:
    """`graph` if no op's counts (repeats included) nor their totals exceed `COUNT_MAX`."""
    totals = {"MACs": 0, "vector operations": 0, "elements": 0, "parameters": 0}
    for op in graph.ops():
        counts = {
            "MACs": op.macs * op.repeat,
            "vector operations": op.vector_ops * op.repeat,
            "elements": (numel(op.output) + sum(numel(s) for s in op.inputs)) * op.repeat,
            "parameters": op.params,
        }
        for what, count in counts.items():
            totals[what] += count
            if count > COUNT_MAX or totals[what] > COUNT_MAX:
                scope = f"op '{short_str(op.name)}' (repeats included)" if count > COUNT_MAX else "the whole graph"
                raise InputError(
                    f"workload too large: the {what} of {scope} exceed 2**62; reduce batch, resolution, frames or steps",
                    where=where,
                )
    return graph


def build(name: str, *, where: str | None = None, **options: Any) -> OpGraph:
    """Build model `name` with `options` (see `ttvsim models`) into an OpGraph."""
    specs = registry()
    if not isinstance(name, str) or name not in specs:
        raise unknown("model", name, specs, where=where)
    spec = specs[name]
    return check_counts(spec.fn(**resolve_options(spec, options, where)), where)
