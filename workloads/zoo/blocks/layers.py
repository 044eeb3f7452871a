"""Layers shared by the diffusion model builders (UNet, VAE, text encoders).

Each helper emits the ops the reference module's eager forward runs, named after the
module's attributes (`norm1`, `conv1`, `to_q`, ...), inside the caller's `GraphBuilder.scope`.
Reference: diffusers `ResnetBlock2D`, `Downsample2D`, `Upsample2D`, `Attention`
(AttnProcessor2_0), `Timesteps`, `TimestepEmbedding`.

Divisions by a rescale factor of 1.0 (`output_scale_factor`, `rescale_output_factor`) are
not emitted: they are numerical no-ops that any graph compiler drops. Head split/merge views
around attention are not emitted either: the fused attention kernels read and write the
(batch, tokens, heads * dim) layout directly.
"""

from __future__ import annotations

from ...builder import GraphBuilder, Tensor
from ...errors import InputError

# Activation names of diffusers/transformers configs -> the builder's activation names.
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "quick_gelu": "quick_gelu", "relu": "relu"}


def activation_fn(name: str, what: str) -> str:
    """Map a config activation name (`act_fn`, `hidden_act`) to the builder's, or raise."""
    if name not in _ACTIVATIONS:
        raise InputError(f"{what}: activation {name!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


def view(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A free reshape/slice of `x` (no op): same producer, new shape."""
    return Tensor(tuple(shape), x.src)


# -- layout changes ---------------------------------------------------------------------
def to_tokens(b: GraphBuilder, name: str, x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H*W, C): the permute + reshape copy before token-wise layers."""
    n, c, h, w = x.shape
    return b.move(name, x, (n, h * w, c), what="nchw_to_nhwc")


def to_nchw(b: GraphBuilder, name: str, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """(N, H*W, C) -> (N, C, H, W): the reshape + permute + contiguous copy back."""
    n, _, c = x.shape
    return b.move(name, x, (n, c, *hw), what="nhwc_to_nchw")


# -- convolutional blocks ---------------------------------------------------------------
def resnet_block(
    b: GraphBuilder,
    x: Tensor,
    out_ch: int,
    *,
    temb: Tensor | None = None,
    groups: int = 32,
    act: str = "silu",
    output_scale_factor: float = 1.0,
    diffusers: bool = True,
) -> Tensor:
    """diffusers `ResnetBlock2D` (time_embedding_norm="default", pre-norm).

    norm1 -> act -> conv1 (+ time_emb_proj(act(temb)) broadcast over H, W) -> norm2 -> act
    -> conv2, plus a 1x1 `conv_shortcut` when the channel count changes, then the residual add.
    diffusers divides the sum by `output_scale_factor` even when it is 1: the residual add is
    marked `rescale_div` (eager PyTorch launches the division; `sim.runtime`). `diffusers=False`:
    the same block from another codebase (taming-transformers' VQGANs), which does not divide.
    """
    h = b.group_norm("norm1", x, groups)
    h = b.activation("act1", h, act)
    h = b.conv("conv1", h, out_ch, 3)
    if temb is not None:
        t = b.activation("temb_act", temb, act)
        t = b.linear("time_emb_proj", t, out_ch)
        h = b.add("temb_add", h, view(t, (*t.shape, 1, 1)))
    h = b.group_norm("norm2", h, groups)
    h = b.activation("act2", h, act)
    h = b.conv("conv2", h, out_ch, 3)
    skip = b.conv("conv_shortcut", x, out_ch, 1, padding=0) if x.shape[1] != out_ch else x
    out = b.add("residual_add", skip, h)
    if output_scale_factor != 1:
        out = b.elementwise("output_scale", [out], "div")
    elif diffusers:
        mark_rescale_div(b, out)
    return out


def mark_rescale_div(b: GraphBuilder, x: Tensor) -> None:
    """Mark the op producing `x` as followed by diffusers' division by a unit factor (a resnet's
    `/ output_scale_factor`, an attention processor's `/ attn.rescale_output_factor`): numerically
    a no-op, so not an op of the graph, but eager PyTorch launches it (`sim.runtime.expand`)."""
    b.graph[x.src[0]].attrs[RESCALE_DIV] = True


RESCALE_DIV = "rescale_div"


def downsample(b: GraphBuilder, x: Tensor, padding: int = 1) -> Tensor:
    """diffusers `Downsample2D(use_conv=True)`: 3x3 conv, stride 2.

    With padding 0 (the VAE encoder) diffusers first pads right/bottom by one (`F.pad`, a copy).
    """
    with b.scope("downsamplers", 0):
        if padding == 0:
            n, c, h, w = x.shape
            x = b.move("pad", x, (n, c, h + 1, w + 1), what="pad")
        return b.conv("conv", x, x.shape[1], 3, stride=2, padding=padding)


def upsample(b: GraphBuilder, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """diffusers `Upsample2D(use_conv=True)`: nearest resize (2x or to `size`), then 3x3 conv."""
    n, c, h, w = x.shape
    size = size or (2 * h, 2 * w)
    with b.scope("upsamplers", 0):
        x = b.resample("interpolate", x, (n, c, *size), mode="nearest")
        return b.conv("conv", x, c, 3)


# -- attention --------------------------------------------------------------------------
DIFFUSERS_PROJ = ("to_q", "to_k", "to_v", "to_out.0")
CLIP_PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")


def attention(
    b: GraphBuilder,
    name: str,
    x: Tensor,
    *,
    heads: int,
    inner: int,
    context: Tensor | None = None,
    qkv_bias: bool,
    out_bias: bool = True,
    role: str = "self",
    axis: str = "spatial",
    causal: bool = False,
    proj: tuple[str, str, str, str] = DIFFUSERS_PROJ,
    upcast: bool = False,
) -> Tensor:
    """Multi-head attention over (N, L, C) tokens: q/k/v projections, SDPA, output projection.

    The projections are named `<name>.<proj>` and the attention op itself `<name>`, so a
    diffusers `attn1` gives `attn1.to_q`, ..., `attn1`, `attn1.to_out.0`. Keys and values come
    from `context` (cross-attention) or from `x` (self-attention). With diffusers' projection names
    the output projection is marked `rescale_div` (its processors divide by a unit factor).
    """
    q_name, k_name, v_name, out_name = proj
    kv = x if context is None else context
    with b.scope(name):
        q = b.linear(q_name, x, inner, bias=qkv_bias)
        k = b.linear(k_name, kv, inner, bias=qkv_bias)
        v = b.linear(v_name, kv, inner, bias=qkv_bias)
    o = b.attention(name, q, k, v, heads, role=role, axis=axis, causal=causal, upcast=upcast)
    with b.scope(name):
        out = b.linear(out_name, o, x.shape[-1], bias=out_bias)
    if proj == DIFFUSERS_PROJ:  # diffusers' AttnProcessor(2_0) divides by rescale_output_factor
        mark_rescale_div(b, out)
    return out


def geglu_feed_forward(b: GraphBuilder, x: Tensor) -> Tensor:
    """The last sublayer of diffusers' `BasicTransformerBlock`: LayerNorm `norm3`, then the
    GEGLU `FeedForward` (dim -> 2 x 4 dim -> GEGLU -> dim) as `ff.net.*`, residual."""
    dim = x.shape[-1]
    h = b.layer_norm("norm3", x)
    with b.scope("ff", "net"):
        h = b.linear("0.proj", h, 2 * 4 * dim)
        h = b.activation("0.geglu", h, "geglu")
        h = b.linear("2", h, dim)
    return b.add("ff_add", h, x)


def spatial_self_attention(b: GraphBuilder, name: str, x: Tensor, *, groups: int, heads: int = 1) -> Tensor:
    """diffusers `Attention` applied to an image (`UNetMidBlock2D`, the VAE mid block).

    GroupNorm, tokens (N, H*W, C), q/k/v/out linears with bias, SDPA, back to NCHW, residual
    add. Here the module itself is the attention, so the SDPA op carries the module path
    (`mid_block.attentions.0`) and the projections sit under it (`mid_block.attentions.0.to_q`).
    """
    _n, c, h, w = x.shape
    with b.scope(name):
        t = b.group_norm("group_norm", x, groups)
        t = to_tokens(b, "to_tokens", t)
    t = attention(b, name, t, heads=heads, inner=c, qkv_bias=True)
    with b.scope(name):
        t = to_nchw(b, "to_nchw", t, (h, w))
        return b.add("residual_add", t, x)


# -- timestep embeddings ----------------------------------------------------------------
def sinusoidal_embedding(b: GraphBuilder, name: str, timesteps: Tensor, dim: int) -> Tensor:
    """diffusers `Timesteps`: sin/cos features (N,) -> (N, dim), as one vector op."""
    (n,) = timesteps.shape
    return b.elementwise(name, [view(timesteps, (n, 1)), b.input((1, dim))], "sinusoidal")


def timestep_mlp(b: GraphBuilder, x: Tensor, dim: int, *, act: str = "silu", post_act: str | None = None) -> Tensor:
    """diffusers `TimestepEmbedding`: linear_1 -> act -> linear_2 (-> post_act)."""
    h = b.linear("linear_1", x, dim)
    h = b.activation("act", h, act)
    h = b.linear("linear_2", h, dim)
    if post_act is not None:
        h = b.activation("post_act", h, post_act)
    return h
