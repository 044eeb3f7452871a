"""Torch-free records the PyTorch tracer hands to the aten rules: a tensor as a `Value`,
an aten call as a `Call`, and a `Rule` saying how an aten op becomes an IR op."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..builder import Tensor
from ..ir import OpKind, Shape

if TYPE_CHECKING:
    from .trace_builder import TraceBuilder


ATTENTION_AXES = ("spatial", "temporal", "joint", "text")
CONV_KIND_BY_RANK = {3: OpKind.CONV1D, 4: OpKind.CONV2D, 5: OpKind.CONV3D}


@dataclass(frozen=True)
class Value:
    """A torch tensor as the registry sees it.

    `src` names the IR ops whose output it is (or views); empty for graph inputs, constants
    and parameters. `vid` identifies its storage (views share it). `params` names the
    `nn.Parameter`s it is (a view or cast of). `activation` is set for graph inputs and
    anything computed from them (as opposed to weights and constants).
    """

    shape: Shape
    src: tuple[str, ...] = ()
    vid: int = 0
    params: tuple[str, ...] = ()
    dtype: str = "float32"
    activation: bool = False

    @property
    def is_param(self) -> bool:
        """A parameter (or a view/cast of one), not an activation."""
        return bool(self.params) and not self.activation and not self.src

    @property
    def tensor(self) -> Tensor:
        """The `GraphBuilder` handle: shape plus producing ops."""
        return Tensor(self.shape, self.src)


@dataclass(frozen=True)
class Call:
    """One aten call: `op` is the overload ("aten.add.Tensor"), `packet` its registry key
    ("add": namespace, overload and the in-place underscore removed). Tensors in `args` and
    `kwargs` are `Value`s; `outputs` are the shapes of the tensors it returned."""

    op: str
    packet: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    outputs: tuple[Shape, ...]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Argument by position or keyword."""
        if index < len(self.args):
            return self.args[index]
        return self.kwargs.get(name, default)

    def values(self) -> list[Value]:
        """Every tensor argument, in order (lists such as `cat`'s flattened)."""
        return list(_values((self.args, tuple(self.kwargs.values()))))

    @property
    def out(self) -> Shape:
        return self.outputs[0] if self.outputs else ()


def _values(obj: Any) -> Iterator[Value]:
    if isinstance(obj, Value):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _values(item)


@dataclass(frozen=True)
class AttentionSite:
    """What an `attention_axis` callback is told about one traced attention op."""

    name: str
    role: str  # "self" or "cross" (see `TraceBuilder.attention_role`)
    batch: int
    heads: int
    lq: int
    lk: int
    causal: bool


class Unsupported(Exception):
    """Raised by a rule for a variant it does not model (reported as `op (reason)`)."""


RuleFn = Callable[["TraceBuilder", str, Call], "Tensor | None"]


@dataclass(frozen=True)
class Rule:
    """How an aten op becomes an IR op: `fn(builder, local_name, call)` emits it (or returns
    None to skip it as free). `short` names the op inside a module; a `principal` op (the
    conv of a Conv2d, the SDPA of an attention module) takes the module path itself."""

    fn: RuleFn
    short: str
    principal: bool = False
