"""Energy from action counts: cited per-action tables (`arch_configs/energy/`) + static power.

`load_table(name, overrides=)` -> `EnergyTable`; `energy_by_action(actions, time_s, table)` ->
joules per entry by component. `sim.energy.derive` holds the documented scaling rules.

Tables come from cited 45 nm figures scaled by published rules, not from `hwcomponents`
(Accelergy's component library); `experiments/energy_tables.py` cross-checks them against
hwcomponents where it installs (Python >= 3.12) and its docstring records the comparison.
"""

from sim.energy import derive
from sim.energy.compute import ACTIONS, COMPONENTS, energy_by_action
from sim.energy.table import DTYPES, VECTOR_CLASSES, EnergyTable, from_mapping, load_table, tables

__all__ = [
    "ACTIONS", "COMPONENTS", "DTYPES", "VECTOR_CLASSES", "derive",
    "EnergyTable", "energy_by_action", "from_mapping", "load_table", "tables",
]
