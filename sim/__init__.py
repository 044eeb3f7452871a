"""ttvsim simulator: hardware description, lowering, Numba cost models, engine, results."""

from .arch import Arch, load_arch, presets

__all__ = ["Arch", "load_arch", "presets"]
