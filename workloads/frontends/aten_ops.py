"""The aten op registry of the PyTorch frontend: which aten overload becomes which IR op.

This module is torch-free on purpose: the tracer (`_dispatch`) turns every torch tensor of
an aten call into a `Value` (shape, producing ops, parameters it is a view of) and hands the
call here. `TraceBuilder.handle` looks the op up and

- emits one IR op through the `GraphBuilder` vocabulary (so shapes, MACs and vector work
  follow the same formulas as the model zoo), when the op is in `RULES`;
- skips it deliberately when it is in `FREE` (views, metadata, factories of constants);
- otherwise counts it as unsupported. Nothing is dropped silently.

Each `nn.Parameter` is counted once, on the first emitted op that reads it (or a view of it),
so `total_params()` equals the module's parameter count when every parameter reaches a
supported op.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import GEMM_KINDS, OpKind, Shape, numel

ATTENTION_AXES = ("spatial", "temporal", "joint", "text")
_CONV_KINDS = {3: OpKind.CONV1D, 4: OpKind.CONV2D, 5: OpKind.CONV3D}


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


# -- the builder ------------------------------------------------------------------------------
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
            name, _CONV_KINDS[len(out)], [x], out, macs=out[0] * numel(out[2:]) * weight[0] * k_per_out,
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


# -- rules ------------------------------------------------------------------------------------
def _tensors(call: Call) -> list[Tensor]:
    return [v.tensor for v in call.values()]


def _only_params(call: Call) -> bool:
    """All tensor inputs are parameters or constants (a weight cast, not activation work)."""
    values = call.values()
    return any(v.is_param for v in values) and not any(v.activation or v.src for v in values)


def conv(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    x, w, bias = c.args[0], c.args[1], c.args[2]
    stride, padding, dilation, transposed, _, groups = c.args[3:9]
    if transposed:
        raise Unsupported("transposed")
    kernel = tuple(w.shape[2:])
    if any(d != 1 for d in dilation):
        return b.dilated_conv(name, x.tensor, w.shape, c.out, stride, padding, dilation, groups, bias is not None)
    out = b.conv(name, x.tensor, w.shape[0], kernel, stride=tuple(stride), padding=tuple(padding), groups=groups, bias=bias is not None)
    if out.shape != c.out:
        raise RuntimeError(f"convolution {b.full_name(name)}: builder shape {out.shape} != traced {c.out}")
    return out


def _gemm(b: TraceBuilder, name: str, a: Value, w: Value, bias: bool) -> Tensor:
    """x @ W with W a parameter is a linear layer; an activation x activation product a matmul."""
    if w.is_param and len(w.shape) == 2 and len(a.shape) >= 2:
        return b.linear(name, a.tensor, w.shape[1], bias=bias)
    return b.matmul(name, a.tensor, w.tensor)


def mm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    return _gemm(b, name, c.args[0], c.args[1], bias=False)


def addmm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.addmm(bias, x, W): F.linear with bias on 2-D (or folded 3-D) input."""
    return _gemm(b, name, c.args[1], c.args[2], bias=True)


def linear(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.linear(x, weight[out, in], bias) (seen when it is not decomposed)."""
    x, w, bias = c.args[0], c.args[1], c.arg(2, "bias")
    return b.linear(name, x.tensor, w.shape[0], bias=bias is not None)


def bmm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    return b.matmul(name, c.args[0].tensor, c.args[1].tensor)


def baddbmm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    return b.matmul(name, c.args[1].tensor, c.args[2].tensor)


def mv(b: TraceBuilder, name: str, c: Call) -> Tensor:
    a, v = c.args[0], c.args[1]
    return b.matmul(name, a.tensor, Tensor((*v.shape, 1), v.src))


# (is_causal position, mask position, mask keyword) of each SDPA variant's schema.
_SDPA_ARGS = {
    "scaled_dot_product_attention": (5, 3, "attn_mask"),
    "_scaled_dot_product_attention_math": (5, 3, "attn_mask"),
    "_scaled_dot_product_flash_attention": (4, None, ""),
    "_scaled_dot_product_flash_attention_for_cpu": (4, None, "attn_mask"),
    "_scaled_dot_product_efficient_attention": (6, 3, "attn_bias"),
    "_scaled_dot_product_cudnn_attention": (6, 3, "attn_bias"),
    "_scaled_dot_product_fused_attention_overrideable": (5, 3, "attn_bias"),
}


def _heads_layout(v: Value) -> tuple[int, int, int, int]:
    """(batch, heads, length, head_dim) of an SDPA operand (..., H, L, E) or (N, L, E)."""
    *lead, length, dim = v.shape
    if len(lead) >= 2:
        return math.prod(lead[:-1]), lead[-1], length, dim
    return (math.prod(lead) if lead else 1), 1, length, dim


def attention(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """Scaled dot-product attention (any SDPA variant) as one attention op.

    GQA (fewer key/value heads) is counted as the expanded computation. An attention mask
    adds a dependency but no work; `is_causal` sets `causal`.
    """
    q, k, v = c.args[0], c.args[1], c.args[2]
    causal_at, mask_at, mask_key = _SDPA_ARGS[c.packet]
    causal = bool(c.arg(causal_at, "is_causal", False))
    mask = c.arg(mask_at, mask_key) if mask_at is not None else c.kwargs.get(mask_key)
    batch, heads, lq, d = _heads_layout(q)
    _, _, lk, _ = _heads_layout(k)
    dv = v.shape[-1]
    mask_src = mask.src if isinstance(mask, Value) else ()
    role = b.attention_role(q, k)
    site = AttentionSite(b.full_name(name), role, batch, heads, lq, lk, causal)
    return b.attention(
        name,
        Tensor((batch, lq, heads * d), tuple(dict.fromkeys(q.src + mask_src))),
        Tensor((batch, lk, heads * d), k.src),
        Tensor((batch, lk, heads * dv), v.src),
        heads,
        role=role,
        axis=b.axis_for(site),
        causal=causal,
    )


def group_norm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.native_group_norm(x, weight, bias, N, C, HxW, group, eps)."""
    return b.group_norm(name, c.args[0].tensor, c.args[6], affine=c.args[1] is not None)


def layer_norm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.native_layer_norm(x, normalized_shape, weight, bias, eps)."""
    return b.layer_norm(name, c.args[0].tensor, affine=c.arg(2, "weight") is not None, bias=c.arg(3, "bias") is not None)


def rms_norm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.rms_norm / _fused_rms_norm(x, normalized_shape, weight, eps)."""
    return b.layer_norm(name, c.args[0].tensor, affine=c.arg(2, "weight") is not None, rms=True)


def batch_norm(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """Inference batch norm: a per-channel scale and shift (running statistics are buffers)."""
    return b.pointwise(name, OpKind.ELEMENTWISE, [c.args[0].tensor], c.out, "batch_norm", 2)


def softmax(b: TraceBuilder, name: str, c: Call) -> Tensor:
    return b.softmax(name, c.args[0].tensor)


# Activations GraphBuilder knows (same names) and extra ones with their element operations.
_BUILDER_ACTIVATIONS = {"silu": "silu", "gelu": "gelu", "relu": "relu", "tanh": "tanh"}
_EXTRA_ACTIVATIONS = {
    "sigmoid": 4, "hardswish": 4, "hardsigmoid": 3, "leaky_relu": 2, "elu": 4, "softplus": 4,
    "mish": 8, "hardtanh": 2, "log_sigmoid_forward": 5, "glu": 5, "relu6": 2, "celu": 4, "selu": 5,
}  # fmt: skip


def activation(b: TraceBuilder, name: str, c: Call) -> Tensor:
    x = c.args[0].tensor
    if c.packet in _BUILDER_ACTIVATIONS:
        return b.activation(name, x, _BUILDER_ACTIVATIONS[c.packet])
    return b.pointwise(name, OpKind.ACTIVATION, [x], c.out, c.packet, _EXTRA_ACTIVATIONS[c.packet])


def elementwise(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """Pointwise math on one or more tensors (scalars are not inputs)."""
    if c.packet == "add":
        b.credit_bias(c)
    return b.elementwise(name, _tensors(c), c.packet)


def reduction(b: TraceBuilder, name: str, c: Call) -> Tensor:
    return b.reduction(name, _tensors(c), c.out, c.packet)


def resample(b: TraceBuilder, name: str, c: Call) -> Tensor:
    mode = re.sub(r"\dd", "", re.sub(r"^_*(upsample_)?", "", c.packet))
    return b.resample(name, c.args[0].tensor, c.out, mode=mode)


def move(b: TraceBuilder, name: str, c: Call) -> Tensor | None:
    """A copy of one tensor (clone/contiguous, dtype cast, pad, repeat, flip ...).

    Casts and copies of parameters only are free: weights are stored in the op's dtype.
    """
    if _only_params(c):
        return None
    return b.move(name, c.args[0].tensor, c.out, what=c.packet)


def copy_(b: TraceBuilder, name: str, c: Call) -> Tensor | None:
    """dst.copy_(src): reads src, writes dst (after dst's previous writer)."""
    if _only_params(c):
        return None
    dst, src = c.args[0], c.args[1]
    return b.move(name, Tensor(src.shape, tuple(dict.fromkeys(src.src + dst.src))), c.out, what="copy")


def gather(b: TraceBuilder, name: str, c: Call) -> Tensor | None:
    """index/gather/scatter/stack: a copy reading several tensors."""
    if _only_params(c):
        return None
    return b.move_many(name, _tensors(c), c.out, c.packet)


def concat(b: TraceBuilder, name: str, c: Call) -> Tensor:
    xs = [v.tensor for v in c.args[0] if numel(v.shape) or len(v.shape) > 1]
    dim = c.arg(1, "dim", 0)
    out = b.concat(name, xs, dim)
    if out.shape != c.out:
        raise RuntimeError(f"cat {b.full_name(name)}: builder shape {out.shape} != traced {c.out}")
    return out


def embedding(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """aten.embedding(weight, indices, ...)."""
    w, ids = c.args[0], c.args[1]
    return b.embedding(name, ids.tensor, w.shape[0], w.shape[1])


def index_select(b: TraceBuilder, name: str, c: Call) -> Tensor:
    """Row lookup in a parameter table is an embedding; otherwise a gather copy."""
    table, dim, ids = c.args[0], c.args[1], c.args[2]
    if table.is_param and dim == 0 and len(table.shape) == 2:
        return b.embedding(name, ids.tensor, table.shape[0], table.shape[1])
    return b.move_many(name, [table.tensor, ids.tensor], c.out, "index_select")


def _free(b: TraceBuilder, name: str, c: Call) -> None:
    return None


FREE_RULE = Rule(_free, "free")

# Views, metadata queries and factories of constants: no data is computed or moved.
FREE = frozenset(
    ["view", "_unsafe_view", "_reshape_alias", "reshape", "as_strided", "expand", "expand_as", "t", "transpose", "permute", "numpy_T", "mT", "mH", "adjoint", "slice", "select", "squeeze", "unsqueeze", "unbind", "split", "split_with_sizes", "chunk", "tensor_split", "narrow", "alias", "detach", "lift_fresh", "unfold", "diagonal", "view_as_real", "view_as_complex", "unflatten", "flatten", "movedim", "swapaxes", "swapdims", "real", "imag", "conj", "_conj", "resolve_conj", "resolve_neg", "_neg_view", "lift", "_reshape_copy_view", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "arange", "linspace", "logspace", "scalar_tensor", "lift_fresh_copy", "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "eye", "normal", "bernoulli", "sym_size", "sym_numel", "sym_stride", "sym_storage_offset", "is_same_size", "_assert_async", "_assert_scalar", "_assert_tensor_metadata", "set", "resize", "_local_scalar_dense", "dim", "size", "stride", "is_contiguous", "prim::device", "prim::layout", "prim::dtype"]
)

_POINTWISE = ["add", "sub", "rsub", "mul", "div", "neg", "pow", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "abs", "clamp", "clamp_min", "clamp_max", "clip", "minimum", "maximum", "fmax", "fmin", "where", "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_not", "bitwise_xor", "reciprocal", "floor", "ceil", "round", "trunc", "frac", "remainder", "fmod", "sign", "sgn", "square", "erf", "erfc", "erfinv", "tril", "triu", "lerp", "addcmul", "addcdiv", "fill", "zero", "isnan", "isinf", "isfinite", "nan_to_num", "floor_divide", "true_divide", "native_dropout", "heaviside", "hypot"]
_REDUCTIONS = ["sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std", "var_mean", "std_mean", "prod", "logsumexp", "linalg_vector_norm", "norm", "all", "any", "cumsum", "cumprod", "count_nonzero"]
_RESAMPLES = ["upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"]
_MOVES = ["clone", "_to_copy", "to", "contiguous", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d", "replication_pad3d", "repeat", "roll", "flip", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "expand_copy", "permute_copy", "view_copy", "transpose_copy", "unsqueeze_copy", "squeeze_copy", "t_copy", "slice_copy", "select_copy", "alias_copy", "narrow_copy", "unfold_copy", "im2col", "col2im", "tril_indices", "triu_indices", "_unsafe_view_copy"]
_GATHERS = ["index", "_unsafe_index", "gather", "scatter", "scatter_add", "scatter_reduce", "index_put", "_index_put_impl", "index_add", "index_copy", "index_fill", "masked_scatter", "masked_select", "stack", "hstack", "vstack", "slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter", "repeat_interleave", "take", "take_along_dim", "embedding_bag", "_embedding_bag"]


def _table() -> Mapping[str, Rule]:
    rules: dict[str, Rule] = {}
    rules.update(dict.fromkeys(("convolution", "_convolution"), Rule(conv, "conv", True)))
    rules.update(
        mm=Rule(mm, "mm", True), addmm=Rule(addmm, "addmm", True), linear=Rule(linear, "linear", True),
        bmm=Rule(bmm, "bmm", True), baddbmm=Rule(baddbmm, "baddbmm", True), mv=Rule(mv, "mv", True),
    )  # fmt: skip
    rules.update(dict.fromkeys(_SDPA_ARGS, Rule(attention, "attention", True)))
    rules["native_group_norm"] = Rule(group_norm, "group_norm", True)
    rules["native_layer_norm"] = Rule(layer_norm, "layer_norm", True)
    rules.update(dict.fromkeys(("rms_norm", "_fused_rms_norm"), Rule(rms_norm, "rms_norm", True)))
    rules.update(
        dict.fromkeys(
            ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training"),
            Rule(batch_norm, "batch_norm", True),
        )
    )
    rules.update({n: Rule(softmax, "softmax", True) for n in ("_softmax", "_safe_softmax", "_log_softmax")})
    rules.update({n: Rule(activation, n, True) for n in (*_BUILDER_ACTIVATIONS, *_EXTRA_ACTIVATIONS)})
    rules.update({n: Rule(elementwise, n) for n in _POINTWISE})
    rules.update({n: Rule(reduction, n) for n in _REDUCTIONS})
    rules.update({n: Rule(resample, n.lstrip("_"), True) for n in _RESAMPLES})
    rules.update({n: Rule(move, n.lstrip("_")) for n in _MOVES})
    rules.update({n: Rule(gather, n.lstrip("_")) for n in _GATHERS})
    rules["copy"] = Rule(copy_, "copy")
    rules["cat"] = Rule(concat, "cat")
    rules["concat"] = Rule(concat, "cat")
    rules["embedding"] = Rule(embedding, "embedding", True)
    rules["index_select"] = Rule(index_select, "index_select", True)
    rules.update(dict.fromkeys(FREE, FREE_RULE))
    return MappingProxyType(rules)


RULES: Mapping[str, Rule] = _table()


def packet_name(name: str) -> str:
    """Registry key of an aten op packet name: the in-place `add_` is `add`."""
    if name in RULES:
        return name
    if name.endswith("_") and not name.endswith("__") and name[:-1] in RULES:
        return name[:-1]
    return name


def lookup(packet: str) -> Rule | None:
    """The rule of a registry key (see `packet_name`), `FREE_RULE`, or None (unsupported)."""
    return RULES.get(packet)
