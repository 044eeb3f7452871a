"""Area and power: die area by unit from cited constants (`arch_configs/area/`), and the design
metrics sweeps report (`area_mm2`, `sram_total_mb`, `power_w`, ...)."""

from .model import Area, area, design_metrics, node_scale, pass_features, run_metrics

__all__ = ["Area", "area", "design_metrics", "node_scale", "pass_features", "run_metrics"]
