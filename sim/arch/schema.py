"""Typed-config loading: nested frozen dataclasses from YAML mappings, with clear errors.

Each field documents itself through `doc(...)` metadata (help text, unit). Loading checks
unknown keys (suggesting the closest), missing required keys, types, and positivity, and
every error names the file and the dotted key path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from workloads.errors import InputError, suggest

T = TypeVar("T")


def doc(help: str, unit: str = "", *, positive: bool = True, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """Field metadata: what the field means, its unit, and its constraints."""
    return {"help": help, "unit": unit, "positive": positive, "choices": choices}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; errors name the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", where=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML: {line}{problem}", where=str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", where=str(path))
    return data


def child(where: str, key: object) -> str:
    """The location of `key` under `where` ('file.yaml:' + 'a' -> 'file.yaml: a'; 'x' -> 'x.a')."""
    if not where:
        return str(key)
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from `data`, validating keys, types and ranges."""
    if not isinstance(data, Mapping):
        raise InputError(f"expected a mapping, got {type(data).__name__} {data!r}", where=where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise InputError(
                f"unknown key '{key}'{suggest(key, fields)}; expected one of: {', '.join(fields)}", where=where
            )
    values = {}
    for name, f in fields.items():
        key_where = child(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InputError(f"missing required key ({f.metadata.get('help', '')})", where=key_where)
            continue
        values[name] = _convert(hints[name], data[name], f.metadata, key_where)
    return cls(**values)


def _convert(hint: Any, value: Any, meta: Mapping[str, Any], where: str) -> Any:
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(args[0], value, meta, where)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise InputError(f"expected a mapping, got {value!r}", where=where)
        _, vtype = typing.get_args(hint)
        return {str(k): _convert(vtype, v, meta, child(where, k)) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"expected true or false, got {value!r}", where=where)
        return value
    if hint in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or (hint is int and not float(value).is_integer()):
            raise InputError(f"expected {'an integer' if hint is int else 'a number'}, got {value!r}", where=where)
        value = hint(value)
        if meta.get("positive", True) and value <= 0:
            raise InputError(f"must be positive, got {value}", where=where)
        if value < 0:
            raise InputError(f"must not be negative, got {value}", where=where)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"expected a string, got {value!r}", where=where)
        choices = meta.get("choices", ())
        if choices and value.lower() not in choices:
            raise InputError(
                f"unknown value '{value}'{suggest(value.lower(), choices)}; expected one of: {', '.join(choices)}",
                where=where,
            )
        return value.lower() if choices else value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(dotted key, unit, help) for every field of a config dataclass, for documentation."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows += [(f"{f.name}.{k}", u, h) for k, u, h in describe(hints[f.name])]
        else:
            rows.append((f.name, f.metadata.get("unit", ""), f.metadata.get("help", "")))
    return rows
