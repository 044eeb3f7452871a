"""Typed-config loading: nested frozen dataclasses from YAML mappings, with clear errors.

Each field documents itself through `doc(...)` metadata (help text, unit, range). Loading
checks unknown keys (suggesting the closest), missing required keys, types and ranges, and
every error names the file and the dotted key path.

Ranges. A number must be finite and within the field's `min`/`max` when it gives them;
otherwise within the generic range: at most `NUMBER_MAX` (1e9), and for a positive field at
least 1 (int) or `POSITIVE_FLOAT_MIN` (1e-6, float), for a non-negative one at least 0. Booleans
are not numbers. Strings are at most `STRING_MAX` characters and hold no NUL.

YAML holds JSON-like values only (`!!binary`, `!!set`, `!!omap`, `!!pairs` are refused; a
date stays the string it was written as). YAML files are read with bounds (`FILE_MAX_BYTES`, `DEPTH_MAX`, `NODES_MAX`): UTF-8 text only,
no NUL bytes, nesting at most `DEPTH_MAX` deep, and at most `NODES_MAX` nodes once every alias
is expanded ("billion laughs" documents are refused before they are built); recursive aliases
are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from workloads.errors import InputError, short_repr, short_str, suggest
from workloads.inputs import read_text

T = TypeVar("T")

NUMBER_MAX = 1e9  # generic upper bound of a config number when its field gives none
POSITIVE_FLOAT_MIN = 1e-6  # generic lower bound of a positive float (1e-300 MHz would give inf times)
STRING_MAX = 10_000  # characters of a config string
DEPTH_MAX = 64  # nesting levels of a YAML document
NODES_MAX = 100_000  # YAML nodes of a document with every alias expanded


def doc(
    help: str,
    unit: str = "",
    *,
    positive: bool = True,
    choices: tuple[str, ...] = (),
    min: float | None = None,
    max: float | None = None,
) -> dict[str, Any]:
    """Field metadata: what the field means, its unit, and its constraints.

    `positive` (the default) requires a number > 0, else >= 0; `min`/`max` (inclusive) replace
    the generic range of the module docstring.
    """
    return {"help": help, "unit": unit, "positive": positive, "choices": choices, "min": min, "max": max}


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses deep nesting and documents that expand to too many nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > DEPTH_MAX:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {DEPTH_MAX} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node)
        return node


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return loader.construct_scalar(node)  # a date is kept as written: configs hold no dates


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(None, None, f"unsupported YAML tag {node.tag}", node.start_mark)


# Configs hold JSON-like values only: strings, numbers, booleans, null, lists and mappings.
_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _BoundedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def _check_expanded_size(root: yaml.Node) -> None:
    """Count nodes as if every alias were copied; refuse recursive aliases and huge expansions."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise yaml.composer.ComposerError(None, None, "recursive alias (a node that contains itself)", node.start_mark)
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child_node in children:
            total += size(child_node)
            if total > NODES_MAX:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {NODES_MAX:,} values once aliases are expanded", node.start_mark
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML `text` with the bounds above; errors name `where` (and the line)."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML: {line}{short_str(problem, 200)}", where=where) from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. an integer literal of 5,000 digits
        raise InputError(f"malformed YAML: {short_str(str(exc), 200)}", where=where) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; errors name the file (and line)."""
    data = parse_yaml(read_text(path, "file"), str(path))
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", where=str(path))
    return data


def child(where: str, key: object) -> str:
    """The location of `key` under `where` ('file.yaml:' + 'a' -> 'file.yaml: a'; 'x' -> 'x.a')."""
    key = short_str(key)
    if not where:
        return key
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


@functools.cache
def _fields(cls: type) -> tuple[dict[str, dataclasses.Field], dict[str, Any]]:
    """The init fields and resolved type hints of a config class (resolved once: slow)."""
    return {f.name: f for f in dataclasses.fields(cls) if f.init}, typing.get_type_hints(cls)


def replace_checked(obj: T, changes: Mapping[str, Any], where: str) -> T:
    """`obj` (an already validated config) with nested `changes` applied, converting and checking
    only the changed values -- as `from_mapping` would, mappings merged into mapping fields;
    an unknown key is an `InputError` at `where`."""
    fields, hints = _fields(type(obj))
    values = {}
    for key, value in changes.items():
        if key not in fields:
            raise InputError(
                f"unknown key '{short_str(key)}'{suggest(key, fields)}; expected one of: {', '.join(fields)}", where=where
            )
        at = f"{where} {key}" if where.endswith(":") else f"{where}.{key}" if where else key
        hint, old = hints[key], getattr(obj, key)
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            values[key] = replace_checked(old, value, at)
        else:
            if typing.get_origin(hint) in (dict, Mapping) and isinstance(value, Mapping) and isinstance(old, Mapping):
                value = {**old, **value}
            values[key] = _convert(hint, value, fields[key].metadata, at)
    return dataclasses.replace(obj, **values)  # type: ignore[type-var]


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from `data`, validating keys, types and ranges."""
    if not isinstance(data, Mapping):
        raise InputError(f"expected a mapping, got {type(data).__name__} {short_repr(data)}", where=where)
    fields, hints = _fields(cls)
    for key in data:
        if key not in fields:
            raise InputError(
                f"unknown key '{short_str(key)}'{suggest(key, fields)}; expected one of: {', '.join(fields)}",
                where=where,
            )
    values = {}
    for name, f in fields.items():
        key_where = f"{where} {name}" if where.endswith(":") else f"{where}.{name}" if where else name
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
        return _convert_dict(hint, value, meta, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"expected true or false, got {short_repr(value)}", where=where)
        return value
    if hint in (int, float):
        return _convert_number(hint, value, meta, where)
    if hint is str:
        return _convert_str(value, meta, where)
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _convert_dict(hint: Any, value: Any, meta: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"expected a mapping, got {short_repr(value)}", where=where)
    _, vtype = typing.get_args(hint)
    for key in value:
        if not isinstance(key, str):
            raise InputError(f"keys must be names (strings), got {short_repr(key)}", where=where)
    return {k: _convert(vtype, v, meta, child(where, k)) for k, v in value.items()}


def number_range(hint: type, meta: Mapping[str, Any]) -> tuple[float, float]:
    """The inclusive (min, max) of a numeric field (see the module docstring)."""
    positive = meta.get("positive", True)
    low = meta.get("min")
    if low is None:
        low = (1 if hint is int else POSITIVE_FLOAT_MIN) if positive else 0
    high = meta.get("max")
    return low, NUMBER_MAX if high is None else high


def _convert_number(hint: type, value: Any, meta: Mapping[str, Any], where: str) -> int | float:
    expected = "an integer" if hint is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected {expected}, got {short_repr(value)}", where=where)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value}", where=where)
    low, high = number_range(hint, meta)
    if value < low:  # exact comparisons: no int -> float overflow
        raise InputError(f"{_below(low, meta)}, got {short_repr(value)}", where=where)
    if value > high:
        raise InputError(f"must be at most {high:g}, got {short_repr(value)}", where=where)
    if hint is int and isinstance(value, float) and not value.is_integer():
        raise InputError(f"expected {expected}, got {short_repr(value)}", where=where)
    return hint(value)


def _below(low: float, meta: Mapping[str, Any]) -> str:
    if meta.get("min") is None and low <= 1:
        return "must be positive" if meta.get("positive", True) else "must not be negative"
    return f"must be at least {low:g}"


def _convert_str(value: Any, meta: Mapping[str, Any], where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {short_repr(value)}", where=where)
    if len(value) > STRING_MAX:
        raise InputError(f"string longer than {STRING_MAX:,} characters ({short_repr(value)})", where=where)
    if "\0" in value:
        raise InputError(f"string contains a NUL character ({short_repr(value)})", where=where)
    choices = meta.get("choices", ())
    if choices and value.lower() not in choices:
        raise InputError(
            f"unknown value '{short_str(value)}'{suggest(value.lower(), choices)}; expected one of: {', '.join(choices)}",
            where=where,
        )
    return value.lower() if choices else value


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
