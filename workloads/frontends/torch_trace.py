"""Trace any `torch.nn.Module` into an `OpGraph` at the aten dispatch level.

    >>> from workloads.frontends import trace, TensorSpec
    >>> r = trace(unet, (2, 4, 64, 64), 999, (2, 77, 768), stage="unet")
    >>> r.graph.total_params(), r.report.unsupported

The module runs under `FakeTensorMode` on its own device: build it on the meta device
(`with torch.device("meta"):`, no weights needed) or pass a loaded one (its real weights are
faked, nothing is computed, the module is left untouched). A `TorchDispatchMode` sees every
aten call; `aten_ops` turns each into one IR op through the `GraphBuilder` vocabulary, skips
views/metadata/constant factories as free, and counts anything else as unsupported. Scaled
dot-product attention is caught at the torch-function level so that it is one attention op
whatever backend (or math decomposition) would run it. Ops are named after module paths
(forward pre/post hooks keep a module stack).

Attention taxonomy of traced SDPA ops (heuristics, override with `attention_axis`):
- role: "cross" when Lq != Lk, or when the nearest GEMMs upstream of q and of k (their
  projections) read different tensors; "self" otherwise (same tensor, or fused QKV).
- axis: "text" when the stage name contains "text" or "llm" (e.g. "text_encoder"), else
  "spatial".
  Pass `attention_axis="temporal"` (a fixed axis) or a callable taking an `AttentionSite`
  (name, role, batch, heads, lq, lk, causal) and returning the axis, e.g. for a video model
  `lambda s: "temporal" if ".temp" in s.name else "spatial"`.
- causal: the SDPA `is_causal` flag. A materialized causal *mask* (as transformers builds
  for LLMs while tracing) has no data to recognise it by, so such attention says causal=False.

torch is imported lazily: `import workloads.frontends` works without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import InputError
from ..ir import DTYPE_BYTES, OpGraph
from .trace_builder import TraceBuilder
from .trace_values import AttentionSite

INSTALL_HINT = (
    "the PyTorch frontend needs torch: pip install 'ttvsim[torch]' "
    "(and torch==2.13.0 first on this machine, to get the CPU build)"
)


@dataclass(frozen=True)
class TensorSpec:
    """An example input given by shape: `TensorSpec((1, 77), "int64")` for token ids.

    `dtype` is a torch dtype name; "" means the module's floating-point dtype.
    """

    shape: tuple[int, ...]
    dtype: str = ""


@dataclass(frozen=True)
class TraceReport:
    """What the tracer did with each aten overload (name -> number of calls).

    `supported` calls became IR ops; `free` ones were skipped on purpose (views, metadata,
    factories of constants, casts of parameters); `unsupported` ones emitted nothing (their
    outputs inherit their inputs' provenance). `unattributed_params` are parameters no
    emitted op read (e.g. only read by an unsupported op, or unused by this forward).
    """

    supported: Mapping[str, int] = field(default_factory=dict)
    free: Mapping[str, int] = field(default_factory=dict)
    unsupported: Mapping[str, int] = field(default_factory=dict)
    unattributed_params: Mapping[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every call was understood and every parameter attributed."""
        return not self.unsupported and not self.unattributed_params

    def __str__(self) -> str:
        def counts(d: Mapping[str, int], shown: int = 12) -> str:
            if not d:
                return "none"
            items = sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))
            text = ", ".join(f"{k} x{v}" for k, v in items[:shown])
            return text + (f", ... ({len(items) - shown} more)" if len(items) > shown else "")

        lines = [
            f"supported ({sum(self.supported.values())} calls): {counts(self.supported)}",
            f"free views/metadata/constants ({sum(self.free.values())} calls): {counts(self.free)}",
            f"unsupported ({sum(self.unsupported.values())} calls): {counts(self.unsupported)}",
            f"unattributed parameters ({sum(self.unattributed_params.values()):,}): {counts(self.unattributed_params)}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class TraceResult:
    """The traced graph and the report of how every aten call was handled."""

    graph: OpGraph
    report: TraceReport

    def __str__(self) -> str:
        g = self.graph
        head = f"{g.name}: {len(g)} ops, {g.total_params():,} params, {g.total_macs():,} MACs"
        return f"{head}\n{self.report}"


def trace(
    module: Any,
    *example_inputs: Any,
    stage: str = "model",
    name: str | None = None,
    dtype: str = "fp16",
    method: str = "forward",
    kwargs: Mapping[str, Any] | None = None,
    attention_axis: str | Callable[[AttentionSite], str] = "auto",
    prefix: str = "",
) -> TraceResult:
    """Trace `module.<method>(*example_inputs, **kwargs)` into an `OpGraph` of stage `stage`.

    Example inputs: a `TensorSpec`, a tuple of ints (a shape, in the module's floating dtype;
    positionally a list of ints too), or a tensor (faked: only its shape and dtype are used);
    anything else (a timestep int, `return_dict=False`) is passed through. The forward runs
    in eval mode without gradients (the module's training flags are restored afterwards).
    `dtype` is the IR word type of every op; `prefix` is prepended to op names (use the
    pipeline attribute, "unet", so traced components compose into one graph). Raises
    `InputError` without torch, or when the forward fails on the example inputs.
    """
    try:
        import torch
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    from . import _dispatch

    if not isinstance(module, torch.nn.Module):
        raise InputError(f"trace() needs a torch.nn.Module, got {type(module).__name__}")
    if dtype not in DTYPE_BYTES:
        raise InputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}")
    if not isinstance(stage, str) or not stage:
        raise InputError(f"stage must be a non-empty string, got {stage!r}")
    fn = getattr(module, method, None)
    if not callable(fn):
        raise InputError(f"{type(module).__name__} has no method {method!r}")
    graph_name = name or type(module).__name__
    params = {n: p.numel() for n, p in module.named_parameters()}
    builder = TraceBuilder(graph_name, stage, dtype, params, attention_axis, prefix)
    tracer = _dispatch.Tracer(builder, module)

    with _FakeInputs(module) as make:
        args = tuple(make(x, positional=True) for x in example_inputs)
        kw = {k: make(v, positional=False) for k, v in (kwargs or {}).items()}
        tracer.mark_inputs([x for x in (*args, *kw.values()) if isinstance(x, torch.Tensor)])
        try:
            tracer.run(fn, args, kw)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            hint = ""
            if "item()" in str(exc) or "data-dependent" in str(exc).lower() or "DataDependent" in type(exc).__name__:
                hint = (
                    " (the forward branches on tensor values, which a trace without data cannot do: "
                    "pass inputs that avoid the branch, or trace the submodules separately)"
                )
            raise InputError(f"tracing {graph_name}.{method} failed: {type(exc).__name__}: {exc}{hint}") from exc

    report = TraceReport(
        supported=MappingProxyType(dict(builder.supported)),
        free=MappingProxyType(dict(builder.free)),
        unsupported=MappingProxyType(dict(builder.unsupported)),
        unattributed_params=MappingProxyType({n: k for n, k in params.items() if n not in builder.claimed}),
    )
    return TraceResult(builder.build(), report)


class _FakeInputs:
    """Runs the trace under a `FakeTensorMode` and builds example inputs for it.

    Fake tensors carry shapes, dtypes and devices but no data: meta weights stay on meta,
    real weights are faked on the fly (the user's module is neither copied nor computed on).
    Fake mode rather than plain meta tensors because libraries detect it as tracing
    (transformers' `is_tracing`) and skip their data-dependent checks.
    """

    def __init__(self, module: Any) -> None:
        import torch

        self.torch = torch
        tensors = [*module.parameters(), *module.buffers()]
        self.device = tensors[0].device if tensors else torch.device("meta")
        floats = [t.dtype for t in tensors if t.is_floating_point()]
        self.float_dtype = floats[0] if floats else torch.float32
        self.fake: Any = None

    def __enter__(self) -> Callable[..., Any]:
        from torch._subclasses.fake_tensor import FakeTensorMode

        self.fake = FakeTensorMode(allow_non_fake_inputs=True)
        self.fake.__enter__()
        return self.make

    def __exit__(self, *exc: object) -> None:
        self.fake.__exit__(*exc)

    def make(self, x: Any, *, positional: bool) -> Any:
        torch = self.torch
        if isinstance(x, torch.Tensor):
            return self.fake.from_tensor(x)
        if isinstance(x, TensorSpec):
            return self._new(x.shape, self._dtype(x.dtype))
        if _is_shape(x, positional):
            return self._new(tuple(x), self.float_dtype)
        return x

    def _dtype(self, name: str) -> Any:
        if not name:
            return self.float_dtype
        dtype = getattr(self.torch, name, None)
        if not isinstance(dtype, self.torch.dtype):
            raise InputError(f"unknown torch dtype {name!r} in TensorSpec")
        return dtype

    def _new(self, shape: Sequence[int], dtype: Any) -> Any:
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
            raise InputError(f"example input shape {tuple(shape)} must be non-negative integers")
        return self.torch.zeros(tuple(shape), dtype=dtype, device=self.device)


def _is_shape(x: Any, positional: bool) -> bool:
    """A tuple of ints (or, positionally, a list / torch.Size of ints) is an input shape."""
    kinds = (tuple, list) if positional else (tuple,)
    return isinstance(x, kinds) and len(x) > 0 and all(isinstance(d, int) and not isinstance(d, bool) for d in x)
