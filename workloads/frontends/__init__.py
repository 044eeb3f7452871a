"""Frontends: other descriptions of a workload lowered to the operator IR (`OpGraph`).

- `trace`: any `torch.nn.Module` (a diffusers UNet, a transformers text encoder, your own
  model), traced at the aten dispatch level on the meta device / `FakeTensorMode`. Needs
  torch (imported lazily: this package imports without it). See README.md here.
- `load_topology`: a SCALE-Sim topology CSV (conv or GEMM format) as a chain of conv2d /
  linear ops; also the zoo model `scalesim_topology`.
"""

from .scalesim_csv import load_topology
from .torch_trace import TensorSpec, TraceReport, TraceResult, trace
from .trace_values import AttentionSite

__all__ = ["AttentionSite", "TensorSpec", "TraceReport", "TraceResult", "load_topology", "trace"]
