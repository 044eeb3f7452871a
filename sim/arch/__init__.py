"""Hardware description: typed, validated unit configs (arrays, vector unit, memories, host,
energy), presets from `arch_configs/`, and nested overrides."""

from .config import VECTOR_CLASSES, Arch, load_arch, merge, presets, with_overrides

__all__ = ["VECTOR_CLASSES", "Arch", "load_arch", "merge", "presets", "with_overrides"]
