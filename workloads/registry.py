"""The model registry: every buildable model, its options and their defaults.

Each module in `workloads.zoo` exports `MODELS`, a tuple of `ModelSpec`; the registry is
discovered from that package, so adding a model is adding one module.
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
from .errors import InputError, suggest, unknown
from .ir import OpGraph


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
    return MappingProxyType(dict(sorted(specs.items())))


def resolve_options(spec: ModelSpec, options: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
    """Defaults overridden by `options`, each checked against the default's type and range."""
    resolved = dict(spec.options)
    for key, value in options.items():
        if key not in spec.options:
            raise InputError(
                f"model '{spec.name}' has no option '{key}'{suggest(key, spec.options)}; "
                f"options: {', '.join(spec.options)}",
                where=where,
            )
        resolved[key] = _coerce(spec, key, value, where)
    return resolved


def _coerce(spec: ModelSpec, key: str, value: Any, where: str | None) -> Any:
    default = spec.options[key]
    if key in spec.choices and value not in spec.choices[key]:
        raise unknown(f"value for option '{key}'", value, spec.choices[key], where=where)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"option '{key}' expects true or false, got {value!r}", where=where)
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"option '{key}' expects an integer, got {value!r}", where=where)
        if value <= 0:
            raise InputError(f"option '{key}' must be positive, got {value}", where=where)
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"option '{key}' expects a number, got {value!r}", where=where)
        return float(value)
    return value


def build(name: str, *, where: str | None = None, **options: Any) -> OpGraph:
    """Build model `name` with `options` (see `ttvsim models`) into an OpGraph."""
    specs = registry()
    if name not in specs:
        raise unknown("model", name, specs, where=where)
    spec = specs[name]
    return spec.fn(**resolve_options(spec, options, where))
