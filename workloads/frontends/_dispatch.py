"""The torch side of the tracer: dispatch mode, function mode, module hooks, provenance.

Imported only by `torch_trace.trace` once torch is known to be importable. The module runs
under `FakeTensorMode` (meta or faked weights), so nothing is computed: every aten call is
seen by `_DispatchMode`, converted to a torch-free `Call` and handed to `TraceBuilder.handle`.

Provenance: a dict from tensor storage to `_Info` (the IR ops that last wrote it, and the
parameters it holds). Views share their base's storage, so they need no bookkeeping; outputs
with a fresh storage inherit the union of their inputs' provenance when the call emitted no
op (free or unsupported), so edges (and weights on their way to the op using them) flow
through skipped calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from ..builder import Tensor
from .aten_ops import packet_name
from .trace_builder import TraceBuilder
from .trace_values import Call, Value

# Composite functions traced as ONE op at the torch-function level (their aten
# decomposition, e.g. SDPA's math fallback on the meta device, is hidden inside). Python
# wrappers (F.rms_norm) are listed too: the function mode is off while it handles a call.
FUSED_FUNCTIONS: Mapping[Callable[..., Any], str] = {
    torch.nn.functional.scaled_dot_product_attention: "scaled_dot_product_attention",
    torch.nn.functional.rms_norm: "rms_norm",
    torch.rms_norm: "rms_norm",
}


@dataclass(frozen=True)
class _Info:
    """Provenance of a storage: the IR ops that wrote it, the parameters it holds, and
    whether it derives from the graph inputs (activation) rather than only from weights."""

    src: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    activation: bool = False


def _inherit(infos: list[_Info]) -> _Info:
    """Provenance of an output no op was emitted for: the inputs' producers; the inputs'
    parameters only when no activation is involved (a transformed weight still counts on the
    op that uses it, but weights read by an unsupported op on activations stay unattributed)."""
    activation = any(i.activation for i in infos)
    return _Info(
        tuple(dict.fromkeys(s for i in infos for s in i.src)),
        () if activation else tuple(dict.fromkeys(p for i in infos for p in i.params)),
        activation,
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class Tracer:
    """Runs a module call under the modes and feeds every aten call to the builder."""

    def __init__(self, builder: TraceBuilder, root: torch.nn.Module) -> None:
        self.builder = builder
        self.root = root
        self.info: dict[int, _Info] = {}
        self.alive: list[torch.Tensor] = []  # keeps storages alive so their keys stay unique
        self.stack: list[str] = [""]  # module paths of the forwards being run
        self.fused_depth = 0
        for name, p in root.named_parameters():
            self._set(p, _Info((), (name,)))

    # -- provenance --------------------------------------------------------------------------
    @staticmethod
    def _key(t: torch.Tensor) -> int:
        try:
            return t.untyped_storage()._cdata
        except (RuntimeError, NotImplementedError, AttributeError):
            return id(t)

    def _set(self, t: torch.Tensor, info: _Info) -> None:
        self.alive.append(t)
        self.info[self._key(t)] = info

    def _get(self, t: torch.Tensor) -> _Info:
        return self.info.get(self._key(t), _Info())

    def value(self, t: torch.Tensor) -> Value:
        info = self._get(t)
        self.alive.append(t)
        shape = tuple(int(d) for d in t.shape)
        return Value(shape, info.src, self._key(t), info.params, _dtype_name(t.dtype), info.activation)

    def mark_inputs(self, tensors: list[torch.Tensor]) -> None:
        """Graph inputs: no producing op, but a storage of their own."""
        for t in tensors:
            self._set(t, _Info(activation=True))

    # -- one call -----------------------------------------------------------------------------
    def record(self, op: str, packet: str, args: tuple, kwargs: dict, out: Any) -> None:
        """Convert a call to `Call`, let the builder emit it, and set the outputs' provenance."""
        in_tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        out_tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        convert = lambda x: self.value(x) if isinstance(x, torch.Tensor) else x  # noqa: E731
        call = Call(
            op=op,
            packet=packet,
            args=tuple(tree_map(convert, list(args))),
            kwargs=tree_map(convert, dict(kwargs)),
            outputs=tuple(tuple(int(d) for d in t.shape) for t in out_tensors),
        )
        in_keys = {self._key(t) for t in in_tensors}
        inherited = _inherit([self._get(t) for t in in_tensors])
        emitted: Tensor | None = self.builder.handle(call, self.stack[-1])
        for t in out_tensors:
            if emitted is not None:
                self._set(t, _Info(emitted.src, (), True))
            elif self._key(t) not in self.info or self._key(t) in in_keys:
                self._set(t, inherited)  # fresh storage, or written in place
            else:
                self.alive.append(t)

    # -- module path stack ----------------------------------------------------------------------
    def install_hooks(self) -> list[Any]:
        handles = []
        for name, module in self.root.named_modules():
            handles.append(module.register_forward_pre_hook(self._pre_hook(name)))
            handles.append(module.register_forward_hook(self._post_hook, always_call=True))
        return handles

    def _pre_hook(self, name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any) -> None:
            self.stack.append(name)

        return hook

    def _post_hook(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    # -- running --------------------------------------------------------------------------------
    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Call `fn` in inference mode (eval, no grad); hooks and training flags restored after."""
        handles = self.install_hooks()
        training = {m: m.training for m in self.root.modules()}
        self.root.eval()
        try:
            with torch.no_grad(), _FunctionMode(self), _DispatchMode(self):
                return fn(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
            for m, flag in training.items():
                m.training = flag


class _DispatchMode(TorchDispatchMode):
    """Sees every aten call (below autograd and composite decompositions)."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.tracer.fused_depth == 0:
            packet = func._overloadpacket.__name__
            if func.namespace == "aten":
                packet = packet_name(packet)
            else:
                packet = f"{func.namespace}::{packet}"
            self.tracer.record(str(func), packet, args, kwargs, out)
        return out


class _FunctionMode(TorchFunctionMode):
    """Catches the `FUSED_FUNCTIONS` before they decompose and records each as one call."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            packet = FUSED_FUNCTIONS.get(func) if self.tracer.fused_depth == 0 else None
        except TypeError:  # an unhashable callable is never one of ours
            packet = None
        if packet is None:
            return func(*args, **kwargs)
        self.tracer.fused_depth += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.tracer.fused_depth -= 1
        self.tracer.record(f"aten.{packet}.default", packet, args, kwargs, out)
        return out
