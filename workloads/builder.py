"""`GraphBuilder`: the small vocabulary every model builder writes its layers in.

Each method emits one `Op` with its shapes, parameters, MACs and vector work computed from
the layer's definition (the same formulas as the reference PyTorch modules), and returns a
`Tensor` handle that names the op producing it. Scopes give ops their block path, mirroring
the diffusers/transformers module names (`down_blocks.0.attentions.1.proj_in`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .ir import Op, OpGraph, OpKind, Shape, numel

_CONV_KIND = {3: OpKind.CONV1D, 4: OpKind.CONV2D, 5: OpKind.CONV3D}

# Nominal element operations per output element, for reporting vector work (FLOP-like).
_VECTOR_OPS = {
    "group_norm": 7,  # mean, variance (sub, square, add), normalize (sub, mul), affine
    "layer_norm": 7,
    "rms_norm": 4,
    "softmax": 5,  # max, sub, exp, sum, divide
    "silu": 4,
    "gelu": 8,
    "geglu": 9,  # gelu of the gate and the product
    "swiglu": 5,
    "relu": 1,
    "quick_gelu": 4,
    "tanh": 4,
}


@dataclass(frozen=True)
class Tensor:
    """A value flowing between ops: its shape and the op(s) that produced it."""

    shape: Shape
    src: tuple[str, ...] = ()

    @property
    def numel(self) -> int:
        return numel(self.shape)


def _broadcast(shapes: Sequence[Shape]) -> Shape:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class GraphBuilder:
    """Emits ops into an `OpGraph` under a stage name and a stack of block scopes."""

    def __init__(self, name: str, stage: str, dtype: str = "fp16") -> None:
        self.graph = OpGraph(name)
        self.stage = stage
        self.dtype = dtype
        self._scope: list[str] = []

    @contextmanager
    def scope(self, *parts: str | int) -> Iterator[None]:
        """Nest op names under `parts` (e.g. `scope("down_blocks", 0)`)."""
        self._scope.extend(str(p) for p in parts)
        try:
            yield
        finally:
            del self._scope[len(self._scope) - len(parts) :]

    def input(self, shape: Sequence[int]) -> Tensor:
        """A graph input (latents, token ids): no producing op."""
        return Tensor(tuple(int(d) for d in shape))

    def build(self) -> OpGraph:
        return self.graph

    # -- emission ----------------------------------------------------------------------
    def _emit(
        self,
        name: str,
        kind: OpKind,
        inputs: Sequence[Tensor],
        output: Shape,
        *,
        params: int = 0,
        macs: int = 0,
        vector_ops: int = 0,
        **attrs: Any,
    ) -> Tensor:
        block = ".".join(self._scope)
        full = f"{block}.{name}" if block else name
        op = Op(
            name=full,
            kind=kind,
            inputs=tuple(t.shape for t in inputs),
            output=tuple(int(d) for d in output),
            dtype=self.dtype,
            params=int(params),
            macs=int(macs),
            vector_ops=int(vector_ops),
            stage=self.stage,
            block=block,
            attrs=attrs,
        )
        deps = tuple(dict.fromkeys(s for t in inputs for s in t.src))
        self.graph.add(op, deps)
        return Tensor(op.output, (full,))

    # -- GEMM-like layers ----------------------------------------------------------------
    def conv(
        self,
        name: str,
        x: Tensor,
        out_ch: int,
        kernel: int | Sequence[int] = 3,
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | None = None,
        groups: int = 1,
        bias: bool = True,
    ) -> Tensor:
        """Convolution over the trailing 1, 2 or 3 dims of an (N, C, ...) tensor."""
        n, in_ch, *spatial = x.shape
        dims = len(spatial)
        kernel = _tuple(kernel, dims)
        stride = _tuple(stride, dims)
        padding = _tuple(padding if padding is not None else [k // 2 for k in kernel], dims)
        out_sp = tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(spatial, kernel, stride, padding))
        k_per_out = in_ch // groups * math.prod(kernel)
        params = out_ch * k_per_out + (out_ch if bias else 0)
        macs = n * math.prod(out_sp) * out_ch * k_per_out
        return self._emit(
            name,
            _CONV_KIND[len(x.shape)],
            [x],
            (n, out_ch, *out_sp),
            params=params,
            macs=macs,
            in_ch=in_ch,
            out_ch=out_ch,
            kernel=kernel,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=bias,
        )

    def linear(self, name: str, x: Tensor, out_features: int, *, bias: bool = True) -> Tensor:
        """Dense layer over the last dim of x."""
        in_features = x.shape[-1]
        tokens = x.numel // in_features
        return self._emit(
            name,
            OpKind.LINEAR,
            [x],
            (*x.shape[:-1], out_features),
            params=in_features * out_features + (out_features if bias else 0),
            macs=tokens * in_features * out_features,
            in_features=in_features,
            out_features=out_features,
            tokens=tokens,
            bias=bias,
        )

    def matmul(self, name: str, a: Tensor, b: Tensor) -> Tensor:
        """Batched product of two activations: (..., M, K) x (..., K, N)."""
        *batch, m, k = a.shape
        n = b.shape[-1]
        count = math.prod(batch)
        return self._emit(
            name, OpKind.MATMUL, [a, b], (*batch, m, n), macs=count * m * k * n, m=m, k=k, n=n, count=count
        )

    def attention(
        self,
        name: str,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        heads: int,
        *,
        role: str = "self",
        axis: str = "spatial",
        causal: bool = False,
        upcast: bool = False,
        kv_growing: bool = False,
    ) -> Tensor:
        """Scaled dot-product attention of (B, Lq, H*d) queries over (B, Lk, H*d) keys.

        `role` is self or cross; `axis` is spatial, temporal, joint (3D) or text/sequence.
        `upcast`: diffusers' `upcast_attention` (SD 2.x) -- its unfused processor computes the scores
        from fp32 queries and keys (an `upcast` attribute, set only when true). `kv_growing`: a decode
        step over a cache grown by one token a call, so every call's key length is new to the kernel
        library (a `kv_growing` attribute, set only when true).
        Both products are counted in full (as torch's flop counter does for SDPA).
        """
        batch, lq, dq = q.shape
        lk = k.shape[1]
        dv = v.shape[2]
        d, d_v = dq // heads, dv // heads
        scores = batch * heads * lq * lk
        return self._emit(
            name,
            OpKind.ATTENTION,
            [q, k, v],
            (batch, lq, dv),
            macs=scores * (d + d_v),
            vector_ops=scores * _VECTOR_OPS["softmax"],
            batch=batch,
            heads=heads,
            head_dim=d,
            v_head_dim=d_v,
            lq=lq,
            lk=lk,
            role=role,
            axis=axis,
            causal=causal,
            **({"upcast": True} if upcast else {}),
            **({"kv_growing": True} if kv_growing else {}),
        )

    # -- vector layers -------------------------------------------------------------------
    def group_norm(self, name: str, x: Tensor, groups: int = 32, *, affine: bool = True) -> Tensor:
        ch = x.shape[1]
        return self._vector(name, OpKind.GROUP_NORM, [x], x.shape, "group_norm", params=2 * ch if affine else 0, groups=groups)

    def layer_norm(self, name: str, x: Tensor, *, affine: bool = True, bias: bool = True, rms: bool = False) -> Tensor:
        ch = x.shape[-1]
        params = (ch + (ch if bias and not rms else 0)) if affine else 0
        return self._vector(
            name, OpKind.LAYER_NORM, [x], x.shape, "rms_norm" if rms else "layer_norm", params=params, rms=rms
        )

    def softmax(self, name: str, x: Tensor) -> Tensor:
        return self._vector(name, OpKind.SOFTMAX, [x], x.shape, "softmax")

    def activation(self, name: str, x: Tensor, fn: str = "silu") -> Tensor:
        """Pointwise activation; gated ones (geglu, swiglu) halve the last dim."""
        out = (*x.shape[:-1], x.shape[-1] // 2) if fn in ("geglu", "swiglu") else x.shape
        return self._vector(name, OpKind.ACTIVATION, [x], out, fn, fn=fn)

    def add(self, name: str, *xs: Tensor) -> Tensor:
        return self.elementwise(name, xs, "add")

    def mul(self, name: str, *xs: Tensor) -> Tensor:
        return self.elementwise(name, xs, "mul")

    def elementwise(self, name: str, xs: Sequence[Tensor], fn: str, *, params: int = 0) -> Tensor:
        """Pointwise op over broadcast inputs; `params` counts a learned operand (PixArt's
        `scale_shift_table + timestep`) that is not one of the activation inputs `xs`."""
        out = _broadcast([t.shape for t in xs])
        ops = numel(out) * max(1, len(xs) - 1)
        return self._emit(name, OpKind.ELEMENTWISE, xs, out, params=params, vector_ops=ops, fn=fn)

    def _vector(self, name: str, kind: OpKind, xs: Sequence[Tensor], out: Shape, fn: str, /, *, params: int = 0, **attrs: Any) -> Tensor:
        return self._emit(name, kind, xs, out, params=params, vector_ops=numel(out) * _VECTOR_OPS[fn], **attrs)

    # -- data movement -------------------------------------------------------------------
    def resample(self, name: str, x: Tensor, out_shape: Sequence[int], mode: str = "nearest") -> Tensor:
        """Weight-free resize (nearest upsample, pooling): reads x, writes out_shape."""
        out = tuple(out_shape)
        return self._emit(name, OpKind.RESAMPLE, [x], out, vector_ops=numel(out), mode=mode)

    def move(self, name: str, x: Tensor, out_shape: Sequence[int], what: str = "permute") -> Tensor:
        """A copy that only moves data (permute + contiguous, NCHW<->NHWC, frame reshapes)."""
        return self._emit(name, OpKind.DATA_MOVEMENT, [x], tuple(out_shape), what=what)

    def concat(self, name: str, xs: Sequence[Tensor], dim: int) -> Tensor:
        """torch.cat: a real copy of every input into a new buffer."""
        base = list(xs[0].shape)
        base[dim] = sum(t.shape[dim] for t in xs)
        return self._emit(name, OpKind.DATA_MOVEMENT, xs, tuple(base), what="concat")

    def embedding(self, name: str, ids: Tensor, vocab: int, dim: int) -> Tensor:
        """Lookup of `ids` in a (vocab, dim) table."""
        return self._emit(
            name, OpKind.EMBEDDING, [ids], (*ids.shape, dim), params=vocab * dim, vocab=vocab, dim=dim
        )


def _tuple(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {v}")
    return v
