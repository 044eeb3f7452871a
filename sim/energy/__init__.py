"""Energy from action counts: cited per-action tables (`arch_configs/energy/`) + static power.

`load_table(name, overrides=)` -> `EnergyTable`; `energy_by_action(actions, time_s, table)` ->
joules per entry by component. `sim.energy.derive` holds the documented scaling rules.

Tables come from cited 45 nm figures scaled by published rules, not from `hwcomponents`
(Accelergy's component library); `experiments/energy_tables.py` cross-checks them against
hwcomponents where it installs (Python >= 3.12) and its docstring records the comparison.
"""

import importlib
from typing import Any

from sim.energy.table import DTYPES, VECTOR_CLASSES, EnergyTable, from_mapping, load_table, tables

_LAZY = {"ACTIONS": "compute", "COMPONENTS": "compute", "energy_by_action": "compute"}  # numpy on first use


def __getattr__(name: str) -> Any:
    if name == "derive":
        return importlib.import_module("sim.energy.derive")
    if name not in _LAZY:
        raise AttributeError(f"module 'sim.energy' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sim.energy.{_LAZY[name]}"), name)

__all__ = [
    "ACTIONS", "COMPONENTS", "DTYPES", "VECTOR_CLASSES", "derive",
    "EnergyTable", "energy_by_action", "from_mapping", "load_table", "tables",
]
