"""Software-stack ("runtime") models: the kernels a framework launches per op and what the host
costs between them (eager PyTorch, CUDA-graph replay, compiled), on archs with a `gpu` section.

    sim.simulate(graph, sim.load_arch("h200"), runtime="cuda_graph")
    sim.simulate(graph, arch, runtime={"mode": "eager", "conv_layout": "channels_last", "attention_kernel": "flash2"})
"""

from .config import ATTENTION_KERNELS, CONV_LAYOUTS, MODES, RuntimeConfig
from .expand import expand
from .host import HostModel, host_model

__all__ = ["ATTENTION_KERNELS", "CONV_LAYOUTS", "MODES", "HostModel", "RuntimeConfig", "expand", "host_model"]
