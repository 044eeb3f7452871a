"""Serving simulation: request streams, an approximate latent cache (NIRVANA), a fleet, metrics.

    ttvsim serve experiments/serving/sdxl_a100_cache.yaml [--out DIR]

`serve(path, out)` runs every point of a serve experiment (see `config`) and writes
`points.csv`, `summary.json`, `latency_quantiles.csv` and plots (`plots`). The pieces:
`stream` (arrivals, calibrated prompts, CSV traces), `cache` + `index` + `policies` (the
approximate cache), `service` (step costs from the simulator), `engine` + `servers` (the
discrete-event loop and batching), `metrics`, `runner`.
"""

from __future__ import annotations

from .config import ServeExperiment, load_serve_experiment
from .output import serve
from .runner import PointResult, run_point

__all__ = ["PointResult", "ServeExperiment", "load_serve_experiment", "run_point", "serve"]
