"""The aten op registry of the PyTorch frontend: which aten overload becomes which IR op.

This module is torch-free on purpose: the tracer (`_dispatch`) turns every torch tensor of
an aten call into a `Value` (shape, producing ops, parameters it is a view of) and hands the
call to `TraceBuilder.handle` (`trace_builder.py`), which looks the op up here and

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
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..builder import Tensor
from ..ir import OpKind, numel
from .trace_values import AttentionSite, Call, Rule, Unsupported, Value

if TYPE_CHECKING:
    from .trace_builder import TraceBuilder


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
