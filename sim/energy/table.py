"""`EnergyTable`: per-action energies of one chip, loaded from `arch_configs/energy/<name>.yaml`.

A table prices every action the cost models count (see `sim.energy.ACTIONS`): MACs per compute
dtype, bytes read/written per memory level, vector element operations per class, kernel launches,
plus static power. Every entry carries a citation in `sources`; the rules that produced the
shipped numbers are in `sim.energy.derive`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import InputError, unknown
from workloads.inputs import is_file

DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
VECTOR_CLASSES = ("norm", "softmax", "activation", "elementwise", "resample", "embedding")
PER_BYTE_FIELDS = (
    "sram_read_pj_per_byte", "sram_write_pj_per_byte",
    "l2_read_pj_per_byte", "l2_write_pj_per_byte",
    "dram_read_pj_per_byte", "dram_write_pj_per_byte",
)
SCALAR_FIELDS = (*PER_BYTE_FIELDS, "launch_pj", "leakage_w", "technology_nm")
PRICED_FIELDS = ("mac_pj", *PER_BYTE_FIELDS, "vector_pj_per_op", "launch_pj", "leakage_w")


@dataclasses.dataclass(frozen=True)
class EnergyTable:
    """Energy per action in pJ (per MAC, per byte, per element op, per launch); static power in W."""

    name: str
    technology_nm: float
    mac_pj: Mapping[str, float]
    sram_read_pj_per_byte: float
    sram_write_pj_per_byte: float
    l2_read_pj_per_byte: float
    l2_write_pj_per_byte: float
    dram_read_pj_per_byte: float
    dram_write_pj_per_byte: float
    vector_pj_per_op: Mapping[str, float]
    launch_pj: float
    leakage_w: float
    sources: Mapping[str, str]
    description: str = ""


FIELDS = tuple(f.name for f in dataclasses.fields(EnergyTable))
REQUIRED = tuple(f for f in FIELDS if f not in ("name", "description"))


def tables() -> dict[str, Path]:
    """Table name -> YAML path, from the installed `arch_configs/energy` folder."""
    root = resources.files("arch_configs").joinpath("energy")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def load_table(source: str | Path, overrides: Mapping[str, Any] | None = None) -> EnergyTable:
    """Load and validate a table by name (`h100_4nm`) or YAML path; `overrides` replace keys.

    A mapping-valued override (`mac_pj`, `vector_pj_per_op`, `sources`) merges into the table's.
    Errors are `InputError`s naming the file and key.
    """
    path = _find(source)
    where = f"{path}:"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {str(exc).splitlines()[0]}", where=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping at the top level", where=str(path))
    data.setdefault("name", path.stem)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), Mapping):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_mapping(data, where)


def from_mapping(data: Mapping[str, Any], where: str = "energy table:") -> EnergyTable:
    """Validate `data` (keys, finiteness, sign, dtype and class names, sources) into a table."""
    for key in data:
        if key not in FIELDS:
            raise unknown("energy table key", key, FIELDS, where=where)
    for key in REQUIRED:
        if key not in data:
            raise InputError(f"missing key '{key}'", where=where)
    values = dict(data)
    for key in SCALAR_FIELDS:
        values[key] = _number(data[key], f"{where} {key}")
    values["mac_pj"] = _numbers(data["mac_pj"], DTYPES, f"{where} mac_pj", "MAC dtype")
    values["vector_pj_per_op"] = _numbers(
        data["vector_pj_per_op"], VECTOR_CLASSES, f"{where} vector_pj_per_op", "vector class"
    )
    values["sources"] = _sources(data["sources"], f"{where} sources")
    values["name"] = str(data.get("name", ""))
    values["description"] = str(data.get("description", ""))
    return EnergyTable(**values)


def _find(source: str | Path) -> Path:
    text = str(source)
    known = tables()
    if text in known:
        return known[text]
    path = Path(text)
    if is_file(path):
        return path
    if text.endswith((".yaml", ".yml")) or "/" in text:
        raise InputError(f"energy table file '{text}' not found", where="energy.table")
    raise unknown("energy table", text, known, where="energy.table")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number, got {value!r}", where=where)
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"expected a finite non-negative number, got {value!r}", where=where)
    return value


def _numbers(value: Any, allowed: tuple[str, ...], where: str, what: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise InputError(f"expected a non-empty mapping of {what} -> pJ, got {value!r}", where=where)
    out = {}
    for key, item in value.items():
        if key not in allowed:
            raise unknown(what, key, allowed, where=where)
        out[key] = _number(item, f"{where}.{key}")
    return out


def _sources(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InputError(f"expected a mapping of entry -> citation, got {value!r}", where=where)
    for key in value:
        if key not in PRICED_FIELDS:
            raise unknown("sources entry", key, PRICED_FIELDS, where=where)
    for key in PRICED_FIELDS:
        if not str(value.get(key, "")).strip():
            raise InputError(f"missing citation for '{key}'", where=where)
    return {str(k): str(v) for k, v in value.items()}
