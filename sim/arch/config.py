"""Hardware description: a typed, validated accelerator configuration.

An `Arch` is `cores` identical cores, each with `array.count` systolic arrays sharing the
core's per-operand SRAMs, a vector unit per core, and one DRAM (HBM) channel shared by all.
Load presets by name (`load_arch("tpu_v1")`), YAML files, or dicts; override any key with
`overrides={"array": {"rows": 64}}`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from workloads.errors import InputError, unknown
from workloads.ir import COMPUTE_DTYPES

from ..checks import CHECKED, check_load_arch
from ..energy import EnergyTable, load_table
from .gpu import GpuConfig
from .schema import child, doc, from_mapping, read_yaml, replace_checked
from .sparsity import SparsityConfig

VECTOR_CLASSES = ("norm", "softmax", "activation", "elementwise", "resample", "embedding")


@dataclass(frozen=True)
class ArrayConfig:
    rows: int = field(metadata=doc("PE rows R of one systolic array", max=65536))
    cols: int = field(metadata=doc("PE columns C of one systolic array", max=65536))
    dataflow: str = field(metadata=doc("output/weight/input stationary", choices=("os", "ws", "is")))
    count: int = field(default=1, metadata=doc("systolic arrays per core", max=1024))
    overlap_folds: bool = field(
        default=False,
        metadata=doc("overlap a fold's drain with the next fold's fill (faster; not SCALE-Sim compatible)"),
    )
    throughput: dict[str, float] = field(
        default_factory=dict,
        metadata={
            **doc(f"MACs per PE per cycle by compute dtype ({', '.join(COMPUTE_DTYPES)}), relative to the native "
                  "type; unlisted: 1.0 (runs at native speed)", "x", max=64),
            "keys": COMPUTE_DTYPES, "default_value": 1.0,
        },
    )


@dataclass(frozen=True)
class SramConfig:
    ifmap_kb: float = field(metadata=doc("input-operand SRAM per core (double-buffered)", "KiB"))
    filter_kb: float = field(metadata=doc("weight-operand SRAM per core (double-buffered)", "KiB"))
    ofmap_kb: float = field(metadata=doc("output SRAM per core (double-buffered)", "KiB"))


@dataclass(frozen=True)
class GlobalBufferConfig:
    size_kb: float = field(default=0.0, metadata=doc("shared on-chip buffer / L2 (0: none)", "KiB", positive=False))
    bandwidth_gbs: float = field(
        default=0.0, metadata=doc("bandwidth from the global buffer to all cores (0: unlimited)", "GB/s", positive=False)
    )


@dataclass(frozen=True)
class DramConfig:
    bandwidth_gbs: float = field(metadata=doc("off-chip bandwidth shared by all cores", "GB/s (1e9 B/s)"))


def _default_approx_cost() -> dict[str, float]:
    # Assumptions, not measurements: a LUT exp folds the exponential into one lookup (softmax
    # 4 -> 3 cycles), a piecewise-linear GELU/SiLU is one compare + multiply-add (2 -> 1); a
    # single-pass norm does the same ALU work (3) but reads its input once (see the pass).
    return {"norm": 3.0, "softmax": 3.0, "activation": 1.0, "elementwise": 1.0, "resample": 1.0, "embedding": 1.0}


def _default_vector_cost() -> dict[str, float]:
    # cycles per element per lane: a norm makes statistics and normalizes (3 passes of ALU
    # work), softmax needs max, exp, sum and divide, activations a transcendental.
    return {"norm": 3.0, "softmax": 4.0, "activation": 2.0, "elementwise": 1.0, "resample": 1.0, "embedding": 1.0}


@dataclass(frozen=True)
class VectorConfig:
    lanes: int = field(metadata=doc("elements processed per cycle per core at 1 cycle/element"))
    cycles_per_element: dict[str, float] = field(
        default_factory=_default_vector_cost,
        metadata={
            **doc(f"ALU cycles per element per lane, by op class ({', '.join(VECTOR_CLASSES)})", "cycles"),
            "keys": VECTOR_CLASSES, "defaults": _default_vector_cost(),
        },
    )
    core_bandwidth_gbs: float = field(
        default=0.0,
        metadata=doc("memory bandwidth one core's vector unit can draw (0: its share is unlimited)", "GB/s", positive=False),
    )
    norm_passes: int = field(
        default=2,
        metadata=doc("DRAM read passes of a norm whose tensor does not fit on chip (statistics, then normalize)", max=100),
    )
    approx_cycles_per_element: dict[str, float] = field(
        default_factory=_default_approx_cost,
        metadata={
            **doc("ALU cycles per element per lane of the approximate datapath (`approx_nonlinear` pass: LUT "
                  "exp, piecewise activations, single-pass norms), by op class; energy per element scales "
                  "with these cycles", "cycles"),
            "keys": VECTOR_CLASSES, "defaults": _default_approx_cost(),
        },
    )

    def cost(self, op_class: str) -> float:
        """Cycles per element per lane for `op_class` (preset value, else the default)."""
        return self.cycles_per_element.get(op_class, _default_vector_cost()[op_class])


@dataclass(frozen=True)
class AttentionTileConfig:
    tile_q: int = field(default=1, metadata=doc("query rows per fused-attention tile; shorter sequences are padded", max=2**20))
    tile_kv: int = field(default=1, metadata=doc("key/value rows per fused-attention tile; padded likewise", max=2**20))


@dataclass(frozen=True)
class HostConfig:
    launch_overhead_us: float = field(
        default=0.0, metadata=doc("host launch latency added per kernel", "us", positive=False)
    )
    graph_capture: bool = field(default=False, metadata=doc("replay captured graphs: one launch per stage"))


@dataclass(frozen=True)
class EnergyConfig:
    table: str = field(
        default="os128_16nm",
        metadata=doc("energy table: a name in arch_configs/energy/ or a YAML path (every entry cited there)"),
    )
    overrides: dict[str, Any] = field(
        default_factory=dict, metadata=doc("table entries replaced, e.g. {dram_read_pj_per_byte: 25}")
    )
    # Shorthands kept from the first hardware format; each replaces a group of table entries.
    mac_pj: float | None = field(default=None, metadata=doc("energy per MAC, every dtype", "pJ", positive=False))
    sram_pj_per_byte: float | None = field(
        default=None, metadata=doc("energy per SRAM and L2 byte read or written", "pJ", positive=False)
    )
    dram_pj_per_byte: float | None = field(
        default=None, metadata=doc("energy per DRAM byte read or written", "pJ", positive=False)
    )
    vector_op_pj: float | None = field(
        default=None, metadata=doc("energy per vector element operation, every class", "pJ", positive=False)
    )

    def resolved_overrides(self) -> dict[str, Any]:
        """`overrides` plus the shorthands expanded into the table entries they replace."""
        out: dict[str, Any] = {}
        if self.mac_pj is not None:
            out["mac_pj"] = dict.fromkeys(COMPUTE_DTYPES, self.mac_pj)
        if self.sram_pj_per_byte is not None:
            for level in ("sram", "l2"):
                out |= {f"{level}_{rw}_pj_per_byte": self.sram_pj_per_byte for rw in ("read", "write")}
        if self.dram_pj_per_byte is not None:
            out |= {f"dram_{rw}_pj_per_byte": self.dram_pj_per_byte for rw in ("read", "write")}
        if self.vector_op_pj is not None:
            out["vector_pj_per_op"] = dict.fromkeys(VECTOR_CLASSES, self.vector_op_pj)
        return {**out, **self.overrides}


@dataclass(frozen=True)
class Arch:
    """A validated accelerator description (see `arch_configs/*.yaml` for documented presets)."""

    name: str = field(metadata=doc("preset name"))
    frequency_mhz: float = field(metadata=doc("clock of arrays, vector units and SRAMs", "MHz", max=1e5))
    word_bytes: int = field(metadata=doc("bytes per operand word (1 int8, 2 fp16/bf16, 4 fp32)", "B", max=8))
    array: ArrayConfig = field(metadata=doc("systolic array"))
    sram: SramConfig = field(metadata=doc("per-core operand SRAMs"))
    dram: DramConfig = field(metadata=doc("off-chip memory"))
    vector: VectorConfig = field(metadata=doc("vector unit for norms, softmax, activations, elementwise"))
    cores: int = field(default=1, metadata=doc("identical cores; GEMMs are partitioned across them", max=65536))
    global_buffer: GlobalBufferConfig = field(
        default_factory=GlobalBufferConfig, metadata=doc("shared global buffer / L2 between cores and DRAM")
    )
    attention: AttentionTileConfig = field(
        default_factory=AttentionTileConfig, metadata=doc("tiling of fused attention kernels (FlashAttention block sizes)")
    )
    host: HostConfig = field(default_factory=HostConfig, metadata=doc("host launch overhead"))
    energy: EnergyConfig = field(default_factory=EnergyConfig, metadata=doc("energy per action"))
    gpu: GpuConfig = field(default_factory=GpuConfig, metadata=doc("GPU kernel costs for runtime models (sim.arch.gpu)"))
    sparsity: SparsityConfig = field(
        default_factory=SparsityConfig, metadata=doc("sparse work the arrays can skip or gate")
    )
    description: str = field(default="", metadata=doc("what the preset models"))
    source: str = field(default="", metadata=doc("where the preset's numbers come from"))

    @property
    def native_dtype(self) -> str:
        """The array's native operand type (from `word_bytes`): ops no precision pass set run in it."""
        return {1: "int8", 2: "fp16", 4: "fp32"}.get(self.word_bytes, "fp16")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without what is cached on the instance (the energy table, the hardware
        record): rebuilt where it is unpickled, so equal tables stay one object per process."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_energy_table", "_hardware_record")}

    def energy_table(self) -> EnergyTable:
        """The energy table of `energy.table` with its overrides applied (validated at load;
        kept on the instance, which is immutable)."""
        table = self.__dict__.get("_energy_table")
        if table is None:
            table = _energy_table(self.energy.table, json.dumps(self.energy.resolved_overrides(), sort_keys=True))
            object.__setattr__(self, "_energy_table", table)
        return table

    @property
    def bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per core clock cycle (whole chip)."""
        return self.dram.bandwidth_gbs * 1e9 / (self.frequency_mhz * 1e6)

    @property
    def arrays(self) -> int:
        return self.cores * self.array.count

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.arrays * self.array.rows * self.array.cols

    def replace(self, **changes: Any) -> Arch:
        """A copy with top-level fields replaced (use `load_arch(..., overrides=)` for nested keys)."""
        return dataclasses.replace(self, **changes)


_ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(Arch))


@cache
def _energy_table(table: str, overrides: str) -> EnergyTable:
    return load_table(table, json.loads(overrides) or None)


def presets() -> dict[str, Path]:
    """Preset name -> YAML path, from the installed `arch_configs` package."""
    root = resources.files("arch_configs")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def load_arch(
    source: str | Path | Mapping[str, Any] | Arch,
    overrides: Mapping[str, Any] | None = None,
    *,
    base_dir: Path | None = None,
    where: str = "arch",
    overrides_where: str | None = None,
) -> Arch:
    """Load and validate an Arch from a preset name, a YAML path, or a mapping.

    `overrides` is a nested mapping merged over the loaded keys (sweeps use it); a bad
    override is reported at `overrides_where` (default `where`), not in the preset's file.
    Relative paths resolve against `base_dir` (the experiment file's folder) first.
    """
    check_load_arch(source, overrides)
    if overrides and not isinstance(source, Arch):
        source = load_arch(source, base_dir=base_dir, where=where)
    if isinstance(source, Arch):
        if not overrides:
            return source
        if getattr(source, CHECKED, False):  # convert and check only what changes
            return with_overrides(source, overrides, overrides_where or where)
        source = _as_dict(source)
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path, found = _find(source, base_dir, where)
        where = f"{found}:"
        data = read_yaml(path)
        data.setdefault("name", path.stem)
    if overrides:
        data = merge(data, overrides)
    return _checked(from_mapping(Arch, data, where), where)


def with_overrides(
    arch: Arch, overrides: Mapping[str, Any], where: str = "arch", parts: dict[Any, Any] | None = None
) -> Arch:
    """Checked `arch` with nested `overrides` applied: only the overridden values are converted
    and checked, then the checks that span fields (a sweep builds its points' archs so).
    `parts`, a dict kept by the caller for this `arch` only, remembers each top-level field's
    converted value per override, so points sharing values convert them once."""
    if parts is None:
        return _checked(replace_checked(arch, overrides, where), where)
    values = {}
    for key, value in overrides.items():
        memo = (key, orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr))
        if memo not in parts:  # JSON keeps 1, 1.0, true and "1" apart
            parts[memo] = getattr(replace_checked(arch, {key: value}, where), key)
        values[key] = parts[memo]
    return _checked(_replaced(arch, values), where)


def _replaced(arch: Arch, values: Mapping[str, Any]) -> Arch:
    """`dataclasses.replace(arch, **values)` for values already converted and checked: Arch has
    no __post_init__, so its fields are copied without calling __init__ (several times faster),
    and nothing cached on `arch` (hardware record, checked mark) is carried over."""
    new = object.__new__(Arch)
    new.__dict__.update({name: getattr(arch, name) for name in _ARCH_FIELDS}, **values)
    return new


def _checked(arch: Arch, where: str) -> Arch:
    """`arch` after the checks that span fields (tiles fit, energy table loads), marked checked."""
    _check_tiles(arch, where)
    try:
        arch.energy_table()
    except InputError as exc:
        raise InputError(str(exc), where=child(where, "energy")) from None
    object.__setattr__(arch, CHECKED, True)
    return arch


def _find(source: str | Path, base_dir: Path | None, where: str) -> tuple[Path, str]:
    text = str(source)
    if text in presets():
        return presets()[text], str(presets()[text])
    candidates = [Path(text)] if Path(text).is_absolute() else [*([base_dir / text] if base_dir else []), Path(text)]
    for path in candidates:
        if path.is_file():
            return path, str(path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        raise InputError(f"arch file '{text}' not found", where=where)
    raise unknown("arch preset", text, presets(), where=where)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`, recursively for nested mappings."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _as_dict(arch: Arch) -> dict[str, Any]:
    return dataclasses.asdict(arch)


def _check_tiles(arch: Arch, where: str) -> None:
    """The stationary tile (R x C words) and one streamed vector must fit, double-buffered."""
    a, w = arch.array, arch.word_bytes
    stationary = {"os": "ofmap_kb", "ws": "filter_kb", "is": "ifmap_kb"}[a.dataflow]
    per_array = {k: getattr(arch.sram, k) * 1024 / a.count for k in ("ifmap_kb", "filter_kb", "ofmap_kb")}
    need = 2 * a.rows * a.cols * w
    if per_array[stationary] < need:
        raise InputError(
            f"{per_array[stationary] / 1024:g} KiB per array cannot hold a double-buffered "
            f"{a.rows}x{a.cols} {a.dataflow.upper()} stationary tile of {w}-byte words "
            f"({need / 1024:g} KiB needed); enlarge it or shrink the array",
            where=child(where, f"sram.{stationary}"),
        )
    edge = 2 * max(a.rows, a.cols) * w
    for key, size in per_array.items():
        if size < edge:
            raise InputError(
                f"{size:g} B per array cannot double-buffer one {max(a.rows, a.cols)}-word "
                f"array edge ({edge} B needed)",
                where=child(where, f"sram.{key}"),
            )
    for dtype in set(arch.array.throughput) - set(COMPUTE_DTYPES):
        raise unknown("compute dtype", dtype, COMPUTE_DTYPES, where=child(where, "array.throughput"))
    unknown_classes = set(arch.vector.cycles_per_element) - set(VECTOR_CLASSES)
    if unknown_classes:
        name = min(unknown_classes)
        raise unknown("vector op class", name, VECTOR_CLASSES, where=child(where, "vector.cycles_per_element"))
