"""ttvsim simulator: hardware description, lowering, Numba cost models, engine, results.

    >>> import sim, workloads
    >>> result = sim.simulate(workloads.build("sd15"), sim.load_arch("os128"))
    >>> result.summary()["latency_s"]

The engine, the Numba cost models and pandas load on first use (`sim.simulate`,
`sim.Simulator`, `sim.Result`, `sim.systolic`), so `import sim` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .arch import Arch, load_arch, presets

if TYPE_CHECKING:
    from . import systolic
    from .engine import Simulator, simulate, simulate_many
    from .results import Result

_LAZY = {"Simulator": ".engine", "simulate": ".engine", "simulate_many": ".engine", "Result": ".results", "systolic": ".systolic"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    return module if name == "systolic" else getattr(module, name)


__all__ = ["Arch", "Result", "Simulator", "load_arch", "presets", "simulate", "simulate_many", "systolic"]
