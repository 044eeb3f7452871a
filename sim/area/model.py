"""Die area of an `Arch` by unit, and the design metrics sweeps report (area, power, SRAM).

The constants and rules are in `arch_configs/area/area.yaml` (cited there); SRAM macro areas in
the CACTI table it names (`experiments/area_tables.py` generates it). In short:

- **Arrays**: PE = native MAC (Horowitz ISSCC 2014 multiplier + accumulator adder, 45 nm)
  + one multiplier per extra compute dtype the design runs (x its throughput) + pipeline
  registers (NanGate 45 nm flip-flops) + N:M sparsity muxes when the design runs a sparsity
  pass, over the standard-cell placement utilization; x rows x cols x arrays.
- **SRAMs**: each operand SRAM double-buffered (two macros of half the capacity, ports by
  operand), the global buffer one macro; CACTI areas interpolated log-log in capacity.
- **Vector units**: an fp32 multiply-add lane with registers per lane per core.
- **Other**: interconnect, control and I/O as a fixed share of the die (TPU v1 floor plan).
- **Node**: the arch's energy table's `technology_nm`; logic and SRAM areas scale from their
  reference node by the ratio of published high-density SRAM bitcell areas.

Off-chip interfaces (DRAM PHYs) are not modelled: DRAM bandwidth costs no area here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from workloads.ir import COMPUTE_DTYPES

from ..arch import Arch
from ..arch.schema import parse_yaml

MANTISSA_BITS = {"fp32": 24, "fp16": 11, "bf16": 8, "fp8": 4}  # significand incl. the hidden bit
INT_BITS = {"int8": 8, "int4": 4}
DTYPE_BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4}
_NATIVE = {1: "int8", 2: "fp16", 4: "fp32"}


@cache
def constants(name: str = "area") -> Mapping[str, Any]:
    """A table of `arch_configs/area/` (read once per process; read-only)."""
    path = resources.files("arch_configs") / "area" / f"{name}.yaml"
    return parse_yaml(path.read_text(encoding="utf-8"), str(path))


def node_scale(from_nm: float, to_nm: float, c: Mapping[str, Any] | None = None) -> float:
    """Area factor from `from_nm` to `to_nm`: ratio of the bitcell areas, log-log interpolated."""
    c = c or constants()
    return _bitcell(to_nm, c) / _bitcell(from_nm, c)


def _bitcell(node_nm: float, c: Mapping[str, Any]) -> float:
    table = sorted((float(n), float(a)) for n, a in c["bitcell_um2"].items())
    node = min(max(float(node_nm), table[0][0]), table[-1][0])
    return _loglog(node, table)


def _loglog(x: float, table: Sequence[tuple[float, float]]) -> float:
    """Piecewise log-log interpolation through sorted (x, y) points; linear (y ~ x) outside."""
    if x <= table[0][0]:
        return table[0][1] * x / table[0][0]
    if x >= table[-1][0]:
        return table[-1][1] * x / table[-1][0]
    for (x0, y0), (x1, y1) in zip(table, table[1:]):
        if x0 <= x <= x1:
            w = math.log(x / x0) / math.log(x1 / x0)
            return math.exp(math.log(y0) + w * math.log(y1 / y0))
    raise AssertionError("unreachable")


def multiplier_um2(dtype: str, c: Mapping[str, Any]) -> float:
    """Multiplier area at the reference node (45 nm): Horowitz, narrower types by the square rule."""
    h = c["horowitz_um2"]
    if dtype in INT_BITS:
        return h["int8_mult"] * (INT_BITS[dtype] / 8) ** 2
    return h["fp16_mult"] * (MANTISSA_BITS[dtype] / MANTISSA_BITS["fp16"]) ** 2 if dtype != "fp32" else h["fp32_mult"]


def pe_um2(native: str, dataflow: str, extra: Mapping[str, float], sparse: bool, c: Mapping[str, Any]) -> float:
    """One processing element at the reference node, placement utilization included."""
    h, cell = c["horowitz_um2"], c["nangate45_um2"]
    adder = h["int32_add"] if native in INT_BITS else h["fp32_add"]
    logic = multiplier_um2(native, c) + adder + sum(rate * multiplier_um2(d, c) for d, rate in extra.items())
    word = max(DTYPE_BITS[native], *(DTYPE_BITS[d] for d in extra)) if extra else DTYPE_BITS[native]
    words = 2 if dataflow == "os" else 3  # OS: two operands pass through; WS/IS: + the double-buffered stationary one
    registers = (words * word + c["accumulator_bits"]) * cell["dff"]
    if sparse:  # a k:1 mux per bit of the streamed operand, built of (k - 1) 2:1 muxes, + index bits
        k = c["sparsity_mux_inputs"]
        registers += word * (k - 1) * cell["mux2"] + math.ceil(math.log2(k)) * cell["dff"]
    return (logic + registers) / c["placement_utilization"]


def vector_lane_um2(c: Mapping[str, Any]) -> float:
    h, cell = c["horowitz_um2"], c["nangate45_um2"]
    return (h["fp32_mult"] + h["fp32_add"] + 3 * 32 * cell["dff"]) / c["placement_utilization"]


def sram_mm2(kb: float, ports: int, node_nm: float, c: Mapping[str, Any]) -> float:
    """One SRAM macro of `kb` KiB with `ports` read/write ports at `node_nm` (CACTI table, scaled)."""
    if kb <= 0:
        return 0.0
    table = constants(c["sram_table"])
    by_ports = table["mm2"]
    key = min(by_ports, key=lambda p: (abs(int(p) - ports), int(p)))
    points = sorted((float(k), float(a)) for k, a in by_ports[key].items())
    return _loglog(kb, points) * node_scale(table["technology_nm"], node_nm, c)


@dataclass(frozen=True)
class Area:
    """Die area by unit, mm^2, at `node_nm`."""

    node_nm: float
    arrays_mm2: float
    sram_mm2: float
    global_buffer_mm2: float
    vector_mm2: float
    other_mm2: float

    @property
    def total_mm2(self) -> float:
        return self.arrays_mm2 + self.sram_mm2 + self.global_buffer_mm2 + self.vector_mm2 + self.other_mm2

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total_mm2": self.total_mm2}


def extra_dtypes(arch: Arch, used: Iterable[str] = ()) -> dict[str, float]:
    """Compute dtypes beyond the native one the array must support, with their MACs per PE per
    cycle: those the arch lists a throughput for, and those the design's passes compute in."""
    native = _NATIVE.get(arch.word_bytes, "fp16")
    rates = {d: float(r) for d, r in arch.array.throughput.items() if r > 0}
    wanted = set(rates) | set(used)
    return {d: rates.get(d, 1.0) for d in sorted(wanted) if d != native and d in COMPUTE_DTYPES}


def area(arch: Arch, *, dtypes: Iterable[str] = (), sparse: bool = False) -> Area:
    """The die area of `arch` (see the module docstring); `dtypes` and `sparse` say which
    precisions and whether N:M sparsity the design's passes need from the arrays."""
    a, s = arch.array, arch.sram
    return _area(
        float(arch.energy_table().technology_nm), _NATIVE.get(arch.word_bytes, "fp16"), a.dataflow,
        tuple(extra_dtypes(arch, dtypes).items()), sparse, arch.peak_macs_per_cycle, arch.cores,
        (s.ifmap_kb, s.filter_kb, s.ofmap_kb), arch.global_buffer.size_kb, arch.vector.lanes,
    )  # fmt: skip


@lru_cache(maxsize=4096)  # a sweep's archs share a few areas: computed once each
def _area(
    node: float, native: str, dataflow: str, extra: tuple[tuple[str, float], ...], sparse: bool, peak: int,
    cores: int, srams: tuple[float, float, float], glb_kb: float, lanes: int,
) -> Area:
    c = constants()
    scale = node_scale(c["reference_nm"], node, c)
    pe = pe_um2(native, dataflow, dict(extra), sparse, c)
    arrays = pe * peak * scale * 1e-6
    ports, banks = c["sram_ports"], c["sram_banks"]
    per_core = sum(
        banks * sram_mm2(kb / banks, ports[name], node, c) for name, kb in zip(("ifmap", "filter", "ofmap"), srams)
    )
    glb = sram_mm2(glb_kb, ports["global_buffer"], node, c)
    vector = vector_lane_um2(c) * lanes * cores * scale * 1e-6
    rest = arrays + per_core * cores + glb + vector
    other = rest * c["other_fraction"] / (1 - c["other_fraction"])
    return Area(node, arrays, per_core * cores, glb, vector, other)


def pass_features(passes: Sequence[Mapping[str, Any]] | None) -> tuple[set[str], bool]:
    """(compute dtypes named by `precision` passes, whether any `sparsity` pass is applied)."""
    dtypes: set[str] = set()
    sparse = False
    for entry in passes or ():
        if entry.get("name") == "precision":
            dtypes |= {v for v in _strings(entry) if v in COMPUTE_DTYPES}
        elif entry.get("name") == "sparsity":
            sparse = True
    return dtypes, sparse


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, v in value.items():
            if key not in ("scores", "accum", "name"):
                yield from _strings(v)


def design_metrics(arch: Arch, passes: Sequence[Mapping[str, Any]] | None = None) -> dict[str, float]:
    """What a design costs before it runs: area (total and by unit), on-chip SRAM, peak TOPS."""
    dtypes, sparse = pass_features(passes)
    a = area(arch, dtypes=dtypes, sparse=sparse)
    sram_kb = (arch.sram.ifmap_kb + arch.sram.filter_kb + arch.sram.ofmap_kb) * arch.cores + arch.global_buffer.size_kb
    return {
        "area_mm2": a.total_mm2,
        "area_arrays_mm2": a.arrays_mm2,
        "area_sram_mm2": a.sram_mm2 + a.global_buffer_mm2,
        "area_vector_mm2": a.vector_mm2,
        "sram_total_mb": sram_kb / 1024,
        "peak_tops": 2 * arch.peak_macs_per_cycle * arch.frequency_mhz * 1e6 / 1e12,
    }


def run_metrics(summary: Mapping[str, Any], area_mm2: float) -> dict[str, float]:
    """What a run costs: average power (energy / latency; leakage is in the energy when the
    table has it), energy-delay product, throughput per watt and per mm^2 (runs per second)."""
    latency, energy = float(summary.get("latency_s", 0.0)), float(summary.get("energy_j", 0.0))
    power = energy / latency if latency > 0 else 0.0
    return {
        "power_w": power,
        "edp_js": energy * latency,
        "throughput_per_w": 1.0 / energy if energy > 0 else 0.0,
        "throughput_per_mm2": 1.0 / (latency * area_mm2) if latency > 0 and area_mm2 > 0 else 0.0,
    }
