"""A SCALE-Sim topology CSV as a model: `model: scalesim_topology` in an experiment YAML.

    workload: {model: scalesim_topology, options: {path: topologies/resnet18.csv, format: conv}}

`path` is a SCALE-Sim topology file (absolute, `~`-expanded, or relative to the working
directory); `format` is "conv" (`Layer name, IFMAP Height, IFMAP Width, Filter Height,
Filter Width, Channels, Num Filter, Strides,`) or "gemm" (`Layer, M, N, K,`). The layers
become a chain of conv2d / linear ops; see `workloads.frontends.scalesim_csv`.
"""

from __future__ import annotations

from types import MappingProxyType

from ..errors import InputError
from ..frontends.scalesim_csv import FORMATS, load_topology
from ..ir import OpGraph
from ..registry import ModelSpec


def build_topology(path: str, format: str) -> OpGraph:
    """Load the topology at `path`; the option is required (its default "" is a placeholder)."""
    if not isinstance(path, str) or not path:
        raise InputError("model 'scalesim_topology' needs option 'path': a SCALE-Sim topology CSV file")
    return load_topology(path, format)


MODELS = (
    ModelSpec(
        "scalesim_topology",
        build_topology,
        MappingProxyType({"path": "", "format": "conv"}),
        "A SCALE-Sim topology CSV (conv or GEMM rows) as a chain of conv2d / linear layers",
        "imported",
        "SCALE-Sim 3.0 topology format (scalesim/topology_utils.py)",
        choices=MappingProxyType({"format": FORMATS}),
    ),
)
