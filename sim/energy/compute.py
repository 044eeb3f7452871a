"""Energy = action counts x per-action energies + static power x time, vectorized over entries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sim.energy.table import DTYPES, VECTOR_CLASSES, EnergyTable
from workloads.errors import InputError

PJ = 1e-12
COMPONENTS = ("mac", "sram", "l2", "dram", "vector", "launch", "leakage")
BYTE_ACTIONS = {
    "sram": ("sram_read_bytes", "sram_write_bytes"),
    "l2": ("l2_read_bytes", "l2_write_bytes"),
    "dram": ("dram_read_bytes", "dram_write_bytes"),
}
ACTIONS: tuple[str, ...] = (
    *(f"mac_{d}" for d in DTYPES),
    *(a for pair in BYTE_ACTIONS.values() for a in pair),
    *(f"vector_{c}_ops" for c in VECTOR_CLASSES),
    "launches",
)

_KNOWN = frozenset(ACTIONS)


def _byte_price(table: EnergyTable, action: str) -> float:
    return getattr(table, action.replace("_bytes", "_pj_per_byte"))


def _price(action: str, table: EnergyTable) -> tuple[str, float]:
    """(component, pJ per unit) of one action column; an unpriced action is an InputError."""
    if action not in _KNOWN:
        raise InputError(f"unknown action column '{action}'; expected one of: {', '.join(ACTIONS)}",
                         where="energy_by_action")
    if action.startswith("mac_"):
        dtype = action[4:]
        if dtype not in table.mac_pj:
            raise InputError(
                f"no MAC energy for dtype '{dtype}' (table has: {', '.join(table.mac_pj)}); "
                f"add mac_pj.{dtype} via overrides or pick a table that supports it",
                where=f"energy table '{table.name}'",
            )
        return "mac", table.mac_pj[dtype]
    for component, pair in BYTE_ACTIONS.items():
        if action in pair:
            return component, _byte_price(table, action)
    if action != "launches":
        cls = action[len("vector_"):-len("_ops")]
        if cls not in table.vector_pj_per_op:
            raise InputError(
                f"no vector energy for class '{cls}' (table has: {', '.join(table.vector_pj_per_op)})",
                where=f"energy table '{table.name}'",
            )
        return "vector", table.vector_pj_per_op[cls]
    return "launch", table.launch_pj


def _prices(table: EnergyTable) -> dict[str, tuple[str, float]]:
    """(component, pJ) of every action the table prices, kept on the (immutable) table."""
    prices = table.__dict__.get("_prices")
    if prices is None:
        prices = {}
        for action in ACTIONS:
            try:
                prices[action] = _price(action, table)
            except InputError:  # unpriced: `_price` raises when the action is used
                pass
        object.__setattr__(table, "_prices", prices)
    return prices


def energy_by_action(
    actions: Mapping[str, np.ndarray], time_s: np.ndarray, table: EnergyTable
) -> dict[str, np.ndarray]:
    """Joules per entry for each component (mac, sram, l2, dram, vector, launch, leakage) and total.

    `actions` maps action names (`ACTIONS`) to equal-length arrays; missing columns count as
    zero. `time_s` is each entry's duration, charged `table.leakage_w` watts.
    """
    time_s = np.asarray(time_s, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    prices = _prices(table)
    for action, counts in actions.items():
        component, pj = prices[action] if action in prices else _price(action, table)
        term = np.multiply(counts, pj * PJ, dtype=np.float64)
        if component in out:
            out[component] += term
        else:
            out[component] = term
    out["leakage"] = time_s * table.leakage_w
    total = out["leakage"].copy()
    for component in COMPONENTS[:-1]:
        if component in out:
            total += out[component]
        else:
            out[component] = np.zeros(time_s.shape)
    out["total"] = total
    return {key: out[key] for key in (*COMPONENTS, "total")}
