"""`TraceBuilder`: the `GraphBuilder` the PyTorch tracer feeds with aten calls.

It looks each call up in the aten registry (`aten_ops`) and emits one IR op through the
`GraphBuilder` vocabulary, skips it as free, or counts it as unsupported; it names ops after
module paths and attributes each `nn.Parameter` once, on the first emitted op that reads it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import GEMM_KINDS, OpKind, Shape, numel
from .aten_ops import FREE_RULE, lookup
from .trace_values import (
    ATTENTION_AXES,
    CONV_KIND_BY_RANK,
    AttentionSite,
    Call,
    Rule,
    Unsupported,
    Value,
)


class TraceBuilder(GraphBuilder):
    """A `GraphBuilder` fed by aten calls: names ops after module paths, attributes each
    parameter once, and counts supported / free / unsupported ops for the report."""

    def __init__(
        self,
        name: str,
        stage: str,
        dtype: str,
        params: Mapping[str, int],
        attention_axis: str | Callable[[AttentionSite], str] = "auto",
        prefix: str = "",
    ) -> None:
        super().__init__(name, stage, dtype)
        self.prefix = prefix  # prepended to every op name (a pipeline's attribute, "unet")
        self.param_numel = MappingProxyType(dict(params))
        self.claimed: set[str] = set()
        self.attention_axis = attention_axis
        self.supported: Counter[str] = Counter()
        self.unsupported: Counter[str] = Counter()
        self.free: Counter[str] = Counter()
        self._pending: list[str] | None = None  # parameters the current call may claim
        self._reads: frozenset[str | int] = frozenset()  # what the current call reads
        self._op_reads: dict[str, frozenset[str | int]] = {}  # op -> ops (or input storages) it read

    # -- one aten call ---------------------------------------------------------------------
    def handle(self, call: Call, path: str = "") -> Tensor | None:
        """Emit `call` (made inside the module at `path`) as an IR op, or count it as free or
        unsupported. Returns the emitted op's output handle, or None when nothing was emitted
        (the tracer then lets the outputs inherit the inputs' provenance)."""
        rule = lookup(call.packet)
        if rule is FREE_RULE:
            self.free[call.op] += 1
            return None
        if rule is None:
            self.unsupported[call.op] += 1
            return None
        values = call.values()
        self._pending = list(dict.fromkeys(p for v in values for p in v.params if p not in self.claimed))
        # What the op reads: producing ops, or the storage of a graph input / constant.
        self._reads = frozenset(t for v in values if not v.is_param for t in (v.src or (v.vid,)))
        block, local = self._op_name(path, rule)
        try:
            with self.scope(block) if block else nullcontext():
                out = rule.fn(self, local, call)
        except Unsupported as exc:
            self.unsupported[f"{call.op} ({exc})"] += 1
            return None
        finally:
            self._pending = None
        if out is None:
            self.free[call.op] += 1
            return None
        self.supported[call.op] += 1
        return out

    def _op_name(self, path: str, rule: Rule) -> tuple[str, str]:
        """(block, local name): a principal op takes its module's path (the conv of
        `down_blocks.0.resnets.0.conv1`, the SDPA of `...attn1`, the SiLU of `...nonlinearity`);
        other ops are `<path>.<short>` (`...resnets.0.add`). Repeats get `_1`, `_2` suffixes;
        `prefix` (if any) comes first (`unet.conv_in`)."""
        if path and rule.principal:
            block, _, local = path.rpartition(".")
        else:
            block, local = path, rule.short
        block = self._full(self.prefix, block) if self.prefix else block
        base, i = local, 0
        while self._full(block, local) in self.graph.graph:
            i += 1
            local = f"{base}_{i}"
        return block, local

    @staticmethod
    def _full(block: str, local: str) -> str:
        if not block:
            return local
        return f"{block}.{local}" if local else block

    def full_name(self, local: str) -> str:
        """The op name `local` gets in the current scope."""
        return self._full(".".join(self._scope), local)

    def _emit(self, name: str, kind: OpKind, inputs: Sequence[Tensor], output: Shape, *, params: int = 0, macs: int = 0, vector_ops: int = 0, **attrs: Any) -> Tensor:
        """`GraphBuilder._emit` with the parameter count replaced by the parameters this call
        reads for the first time (GraphBuilder's formula would recount shared weights)."""
        if self._pending is None:
            raise RuntimeError("TraceBuilder emits ops only inside handle()")
        claimed = sum(self.param_numel.get(p, 0) for p in self._pending)
        self.claimed.update(self._pending)
        self._pending = []
        out = super()._emit(name, kind, inputs, output, params=claimed, macs=macs, vector_ops=vector_ops, **attrs)
        self._op_reads[out.src[0]] = self._reads
        return out

    def credit_bias(self, call: Call) -> None:
        """When `call` adds a 1-D parameter to the output of a bias-free linear op (F.linear on
        a non-contiguous 3-D input runs mm, then a separate bias add), count that parameter on
        the linear op, so per-layer parameters match the module. The add stays an op."""
        params = [v for v in call.values() if v.is_param]
        acts = [v for v in call.values() if not v.is_param]
        if len(params) != 1 or len(acts) != 1 or len(acts[0].src) != 1 or len(params[0].shape) != 1:
            return
        producer = self.graph[acts[0].src[0]]
        if producer.kind is not OpKind.LINEAR or producer.attrs["bias"] or params[0].shape[0] != producer.attrs["out_features"]:
            return
        pending = [p for p in params[0].params if p in (self._pending or ())]
        if not pending:
            return
        numel = sum(self.param_numel.get(p, 0) for p in pending)
        self.graph.graph.nodes[producer.name]["op"] = replace(
            producer, params=producer.params + numel, attrs={**producer.attrs, "bias": True}
        )
        self.claimed.update(pending)
        self._pending = [p for p in self._pending or () if p not in pending]

    # -- extra vocabulary (ops GraphBuilder has no method for) -----------------------------
    def pointwise(self, name: str, kind: OpKind, xs: Sequence[Tensor], out: Shape, fn: str, per_element: int) -> Tensor:
        """A vector op of `per_element` element operations per output element."""
        return self._emit(name, kind, xs, out, vector_ops=numel(out) * per_element, fn=fn)

    def reduction(self, name: str, xs: Sequence[Tensor], out: Shape, fn: str) -> Tensor:
        """sum/mean/max/argmax/var...: one element operation per input element."""
        return self._emit(name, OpKind.ELEMENTWISE, xs, out, vector_ops=sum(t.numel for t in xs), fn=fn)

    def dilated_conv(self, name: str, x: Tensor, weight: Shape, out: Shape, stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, bias: bool) -> Tensor:
        """A dilated convolution (GraphBuilder.conv has no dilation): same GEMM, traced output size."""
        k_per_out = weight[1] * math.prod(weight[2:])
        return self._emit(
            name, CONV_KIND_BY_RANK[len(out)], [x], out, macs=out[0] * numel(out[2:]) * weight[0] * k_per_out,
            in_ch=x.shape[1], out_ch=weight[0], kernel=tuple(weight[2:]), stride=tuple(stride),
            padding=tuple(padding), dilation=tuple(dilation), groups=groups, bias=bias,
        )  # fmt: skip

    def move_many(self, name: str, xs: Sequence[Tensor], out: Shape, what: str) -> Tensor:
        """A copy reading several tensors (gather, index, stack, scatter)."""
        return self._emit(name, OpKind.DATA_MOVEMENT, xs, out, what=what)

    # -- attention taxonomy ----------------------------------------------------------------
    def attention_role(self, q: Value, k: Value) -> str:
        """"cross" when queries and keys have different lengths, or when the nearest GEMMs
        (projections) upstream of q and of k read different tensors (looking through copies
        such as a contiguous() before the projection); "self" otherwise."""
        if q.shape[-2] != k.shape[-2]:
            return "cross"
        return "self" if self._projection_sources(q) == self._projection_sources(k) else "cross"

    def _projection_sources(self, v: Value) -> frozenset[str | int]:
        sources: set[str | int] = set()
        seen: set[str | int] = set()
        frontier: list[str | int] = list(v.src or (v.vid,))
        while frontier:
            token = frontier.pop()
            if token in seen:
                continue
            seen.add(token)
            if not isinstance(token, str):
                sources.add(token)
            elif self.graph[token].kind in GEMM_KINDS:
                sources |= self._origins(self._op_reads[token])
            else:
                frontier.extend(self._op_reads[token])
        return frozenset(sources)

    def _origins(self, tokens: frozenset[str | int]) -> set[str | int]:
        """`tokens` with data-movement ops replaced by what they copied."""
        out: set[str | int] = set()
        for token in tokens:
            if isinstance(token, str) and self.graph[token].kind is OpKind.DATA_MOVEMENT:
                out |= self._origins(self._op_reads[token])
            else:
                out.add(token)
        return out

    def axis_for(self, site: AttentionSite) -> str:
        """The attention axis: the user's string or callback, else "text" in a text-encoder or
        LLM stage (a stage name containing "text" or "llm") and "spatial" otherwise."""
        choice = self.attention_axis
        if callable(choice):
            axis = choice(site)
        elif choice == "auto":
            axis = "text" if "text" in self.stage or "llm" in self.stage else "spatial"
        else:
            axis = choice
        if axis not in ATTENTION_AXES:
            raise InputError(f"attention axis {axis!r} for {site.name} is not one of {', '.join(ATTENTION_AXES)}")
        return axis
