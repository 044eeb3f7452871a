"""The runtime (software-stack) configuration: how a framework runs an op graph on a GPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workloads.errors import InputError, short_repr

from ..arch.schema import doc, from_mapping

# eager: PyTorch eager (host dispatch per op, asynchronous launch queue); cuda_graph: the same
# kernels replayed from a captured CUDA graph; compiled: torch.compile-style fusion of pointwise
# ops and norms into neighbours, kernels launched from generated code; compiled_graph: both.
MODES = ("eager", "cuda_graph", "compiled", "compiled_graph")
CONV_LAYOUTS = ("nchw", "channels_last")
# auto: cuDNN fused attention (PyTorch's SDPA default on sm90) for fused lowerings, the memory-
# efficient kernel for head dims above 256, and the unfused fp16 baddbmm/softmax/bmm path of
# diffusers' AttnProcessor for unfused lowerings.
ATTENTION_KERNELS = ("auto", "cudnn", "flash2", "efficient", "unfused", "math")
# back_to_back: each graph replay is launched while the one before runs (a denoising loop), its launch
# hidden; from_idle: each replay starts from an idle GPU, which waits for the host's launch of every node
REPLAYS = ("back_to_back", "from_idle")


@dataclass(frozen=True)
class RuntimeConfig:
    mode: str = field(default="cuda_graph", metadata=doc("how kernels are launched", choices=MODES))
    conv_layout: str = field(
        default="nchw",
        metadata=doc(
            "memory format of convolutions (nchw: cuDNN transposes input, weights and output)", choices=CONV_LAYOUTS
        ),
    )
    attention_kernel: str = field(default="auto", metadata=doc("attention implementation", choices=ATTENTION_KERNELS))
    replay: str = field(
        default="back_to_back",
        metadata=doc(
            "how graph replays are launched (graph modes): back to back, or each from an idle GPU", choices=REPLAYS
        ),  # fmt: skip
    )

    def check(self, where: str = "runtime") -> RuntimeConfig:
        """Cross-field checks: a replay regime needs a graph mode."""
        if self.replay != "back_to_back" and not self.graph:
            key_where = f"{where} replay" if where.endswith(":") else f"{where}.replay"
            raise InputError(f"replay {self.replay!r} needs a graph mode (cuda_graph, compiled_graph), got mode "
                             f"{self.mode!r}", where=key_where)  # fmt: skip
        return self

    @property
    def graph(self) -> bool:
        """Whether kernels are replayed from a captured graph."""
        return self.mode in ("cuda_graph", "compiled_graph")

    @property
    def compiled(self) -> bool:
        """Whether pointwise ops and norms are fused by a compiler."""
        return self.mode in ("compiled", "compiled_graph")

    @classmethod
    def parse(cls, value: Any, where: str = "runtime") -> RuntimeConfig | None:
        """None, a mode name, a mapping of fields, or a RuntimeConfig."""
        if value is None:
            return value
        if isinstance(value, RuntimeConfig):
            return value.check(where)
        if isinstance(value, str):
            value = {"mode": value}
        if not isinstance(value, Mapping):
            raise InputError(f"expected a mode name or a mapping, got {short_repr(value)}", where=where)
        return from_mapping(cls, value, where).check(where)
