"""The documented rules behind `arch_configs/energy/*.yaml`: cited 45 nm figures, scaled.

Every number in a shipped table is `derive(...)` of the constants below, rounded to four
significant digits; `tests/test_energy.py` checks that, so a table cannot drift from its rule.

Sources
- HOROWITZ: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
  45 nm, 0.9 V: int8 add 0.03 pJ, int8 mult 0.2, int32 add 0.1, int32 mult 3.1, fp16 add 0.4,
  fp16 mult 1.1, fp32 add 0.9, fp32 mult 3.7; SRAM (64-bit access) 8 KB 10 pJ, 32 KB 20 pJ,
  1 MB 100 pJ; DRAM 1.3-2.6 nJ per 64-bit access.
- STILLMAKER: A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of CMOS
  device performance from 180 nm to 7 nm", Integration 58 (2017) 74-81, Table 5 energy
  coefficients (E = a*V^2 + b*V + c per node; corrigendum example: 32 nm HP at 0.9 V = 0.4571).
- TSMC_N5: TSMC, "5nm Technology" (tsmc.com): N5 vs N7 "about 30% reduction in power
  consumption" at the same speed. NVIDIA's 4N (H100/H200) is an N5-family process.
- BF16_DOC: Google Cloud TPU documentation, "The bfloat16 numerical format": "the physical size
  of a hardware multiplier scales with the square of the mantissa width"; TPU MXUs multiply in
  bfloat16 and accumulate in float32.
"""

from __future__ import annotations

from collections.abc import Iterable

# Horowitz, ISSCC 2014, 45 nm, 0.9 V (pJ per operation / per 64-bit access).
HOROWITZ_45NM_PJ: dict[str, float] = {
    "int8_add": 0.03, "int8_mult": 0.2, "int32_add": 0.1, "int32_mult": 3.1,
    "fp16_add": 0.4, "fp16_mult": 1.1, "fp32_add": 0.9, "fp32_mult": 3.7,
    "sram_8kb_64b": 10.0, "sram_32kb_64b": 20.0, "sram_1mb_64b": 100.0,
    "dram_64b_low": 1300.0, "dram_64b_high": 2600.0,
}
HOROWITZ_NODE_NM = 45.0
HOROWITZ_VDD = 0.9

# Stillmaker & Baas 2017, Table 5 energy coefficients (a, b, c), high-performance models.
STILLMAKER_ENERGY: dict[float, tuple[float, float, float]] = {
    45.0: (1.018, -0.3107, 0.1539),
    32.0: (0.8367, -0.4341, 0.1701),
    20.0: (0.373, -0.1582, 0.04104),
    16.0: (0.2958, -0.1241, 0.03024),
    14.0: (0.2363, -0.09675, 0.02239),
    10.0: (0.2068, -0.09311, 0.02375),
    7.0: (0.1776, -0.09097, 0.02447),
}
# TSMC: N5 about 30% lower power than N7 at the same speed (applied below 7 nm, to 5/4 nm).
TSMC_N5_VS_N7 = 0.70

# Significand widths including the hidden bit (IEEE 754; bf16 and fp8 E4M3 per their specs).
MANTISSA_BITS = {"fp32": 24, "fp16": 11, "bf16": 8, "fp8": 4}

SIGNIFICANT_DIGITS = 4


def _stillmaker_factor(node_nm: float, vdd: float) -> float:
    """Stillmaker's energy factor at `node_nm`, linear in node between tabulated nodes."""
    nodes = sorted(STILLMAKER_ENERGY)
    if not nodes[0] <= node_nm <= nodes[-1]:
        raise ValueError(f"Stillmaker & Baas cover {nodes[0]}-{nodes[-1]} nm, not {node_nm}")
    lo = max(n for n in nodes if n <= node_nm)
    hi = min(n for n in nodes if n >= node_nm)

    def at(n: float) -> float:
        a, b, c = STILLMAKER_ENERGY[n]
        return a * vdd**2 + b * vdd + c

    if lo == hi:
        return at(lo)
    w = (node_nm - lo) / (hi - lo)
    return at(lo) * (1 - w) + at(hi) * w


def scale_factor(node_nm: float) -> float:
    """Energy of a 45 nm operation at `node_nm`, as a fraction (iso-voltage at Horowitz's 0.9 V).

    7-45 nm: Stillmaker & Baas; below 7 nm: the 7 nm factor times TSMC's N5-vs-N7 power ratio.
    """
    base = _stillmaker_factor(HOROWITZ_NODE_NM, HOROWITZ_VDD)
    if node_nm < 7.0:
        return TSMC_N5_VS_N7 * _stillmaker_factor(7.0, HOROWITZ_VDD) / base
    return _stillmaker_factor(node_nm, HOROWITZ_VDD) / base


def mac_45nm_pj(dtype: str) -> float:
    """One MAC at 45 nm = multiply + accumulate-add (Horowitz).

    Integer MACs accumulate in int32, floating-point MACs in fp32 (TPU/tensor-core practice).
    bf16 and fp8 multipliers: the fp16 multiplier scaled by (significand / 11)^2 (BF16_DOC);
    int4: the int8 multiplier scaled by (4 / 8)^2, the same square law.
    """
    h = HOROWITZ_45NM_PJ
    if dtype in ("int8", "int4"):
        mult = h["int8_mult"] * (1.0 if dtype == "int8" else (4 / 8) ** 2)
        return mult + h["int32_add"]
    if dtype == "fp32":
        return h["fp32_mult"] + h["fp32_add"]
    if dtype in MANTISSA_BITS:
        return h["fp16_mult"] * (MANTISSA_BITS[dtype] / MANTISSA_BITS["fp16"]) ** 2 + h["fp32_add"]
    raise ValueError(f"no MAC rule for dtype '{dtype}'")


def vector_45nm_pj(int_datapath: bool) -> float:
    """One vector element operation: a 32-bit multiply + add (int32 for integer accelerators)."""
    h = HOROWITZ_45NM_PJ
    return h["int32_mult"] + h["int32_add"] if int_datapath else h["fp32_mult"] + h["fp32_add"]


def round_sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """`x` rounded to `digits` significant digits (what the YAML tables hold)."""
    return float(f"{x:.{digits - 1}e}")


def derive(node_nm: float, dtypes: Iterable[str], *, int_vector: bool = False) -> dict[str, object]:
    """The on-chip entries of a table at `node_nm` (pJ), from the rules above, rounded."""
    s = scale_factor(node_nm)
    h = HOROWITZ_45NM_PJ
    sram = round_sig(h["sram_32kb_64b"] / 8 * s)   # per byte: a 64-bit access moves 8 bytes
    l2 = round_sig(h["sram_1mb_64b"] / 8 * s)
    return {
        "mac_pj": {d: round_sig(mac_45nm_pj(d) * s) for d in dtypes},
        "sram_read_pj_per_byte": sram,
        "sram_write_pj_per_byte": sram,
        "l2_read_pj_per_byte": l2,
        "l2_write_pj_per_byte": l2,
        "vector_pj_per_op": round_sig(vector_45nm_pj(int_vector) * s),
    }


def dram_pj_per_byte(pj_per_bit: float) -> float:
    """Off-chip energy per byte from a pJ/bit figure (not technology-scaled: a memory part)."""
    return round_sig(pj_per_bit * 8)
