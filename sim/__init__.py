"""ttvsim simulator: hardware description, lowering, Numba cost models, engine, results.

    >>> import sim, workloads
    >>> result = sim.simulate(workloads.build("sd15"), sim.load_arch("os128"))
    >>> result.summary()["latency_s"]
"""

from . import systolic
from .arch import Arch, load_arch, presets
from .engine import Simulator, simulate
from .results import Result

__all__ = ["Arch", "Result", "Simulator", "load_arch", "presets", "simulate", "systolic"]
