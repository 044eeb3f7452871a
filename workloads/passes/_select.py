"""Choosing the ops a pass applies to: by op class, by op-name glob, by stage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from ..errors import InputError, unknown
from ..ir import OP_CLASSES, Op

T = TypeVar("T")


def check_classes(classes: Iterable[str], where: str) -> None:
    """Every name in `classes` is an op class."""
    for c in classes:
        if c not in OP_CLASSES:
            raise unknown("op class", c, OP_CLASSES, where=where)


def matches(op: Op, *, classes: Iterable[str] = (), globs: Iterable[str] = (), stages: Iterable[str] = ()) -> bool:
    """Whether `op` is selected: its class in `classes`, its name matching a glob in `globs`, or
    its stage in `stages` (an empty selector selects nothing)."""
    return op.op_class in classes or op.stage in stages or any(fnmatchcase(op.name, g) for g in globs)


def rule_for(op: Op, by_class: Mapping[str, T], by_name: Mapping[str, T], default: T | None = None) -> T | None:
    """The rule an op gets: the last matching name glob, else its class's, else `default`."""
    rule = by_class.get(op.op_class, default)
    for glob, value in by_name.items():
        if fnmatchcase(op.name, glob):
            rule = value
    return rule


def require(condition: bool, message: str, where: str) -> None:
    """Raise an `InputError` at `where` unless `condition`."""
    if not condition:
        raise InputError(message, where=where)


def fraction(value: Any, where: str, *, low: float = 0.0, closed_low: bool = True) -> float:
    """`value` as a float in [low, 1] (or (low, 1] when not `closed_low`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= float(value) <= 1.0
    if ok and not closed_low:
        ok = float(value) > low
    bracket = "[" if closed_low else "("
    require(ok, f"expected a number in {bracket}{low:g}, 1], got {str(value)[:40]!r}", where)
    return float(value)
