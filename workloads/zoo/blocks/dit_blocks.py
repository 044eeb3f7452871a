"""Layers shared by the diffusion transformers (DiT, PixArt-alpha, Latte; parts of CogVideoX).

Each helper emits the ops the diffusers module's eager forward runs, named after the module's
attributes, inside the caller's `GraphBuilder.scope`. References (diffusers 0.42):
`PatchEmbed`, `Timesteps` + `TimestepEmbedding`, `CombinedTimestepLabelEmbeddings`,
`AdaLayerNormZero`, `AdaLayerNormSingle` (`PixArtAlphaCombinedTimestepSizeEmbeddings`),
`PixArtAlphaTextProjection`, `FeedForward` and `BasicTransformerBlock` with
norm_type "ada_norm_zero" (DiT) or "ada_norm_single" (PixArt-alpha, Latte).

Tokens are (N, L, C). adaLN modulation `norm(x) * (1 + scale) + shift` is two eager kernels
on the tokens (the `1 + scale` on the (N, C) vector is negligible and not emitted), and so is
each gated residual `x + gate * h`. `chunk`s of the modulation vector are free views.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader, option_config

# diffusers FeedForward activation_fn -> the builder's activation (GELU: tanh approximation
# or exact; both are one pointwise op here).
_FF_ACTIVATIONS = {"gelu-approximate": "gelu", "gelu": "gelu"}
TIME_PROJ_DIM = 256  # Timesteps(num_channels=256) in every DiT-family embedder


@dataclass(frozen=True)
class DiTConfig:
    """Structural fields of a diffusers `BasicTransformerBlock` transformer config
    (`DiTTransformer2DModel`, `PixArtTransformer2DModel`, `LatteTransformer3DModel`)."""

    num_attention_heads: int
    attention_head_dim: int
    in_channels: int
    out_channels: int
    num_layers: int
    patch_size: int
    attention_bias: bool
    activation: str
    norm_type: str
    norm_elementwise_affine: bool
    num_embeds_ada_norm: int | None
    cross_attention_dim: int | None
    caption_channels: int | None
    use_additional_conditions: bool

    @classmethod
    def from_dict(
        cls, config: Mapping[str, Any], what: str, *, defaults: Mapping[str, Any], norm_types: tuple[str, ...]
    ) -> DiTConfig:
        """Read `config` (absent keys take the reference class's `defaults`); keys that would
        change the network to something not modelled here raise `InputError`."""
        r = ConfigReader({**defaults, **config}, what)
        r.only("attention_type", ("default",), "default")
        for flag in ("double_self_attention", "only_cross_attention"):
            if r.flag(flag, False):
                raise InputError(f"{what}: config '{flag}' = true is not supported")
        norm_type = r.only("norm_type", norm_types)
        in_channels = r.positive("in_channels")
        cross = r.get("cross_attention_dim", None)
        caption = r.get("caption_channels", None)
        embeds = r.get("num_embeds_ada_norm", None)
        if norm_type == "ada_norm_zero" and embeds is None:
            raise InputError(f"{what}: norm_type 'ada_norm_zero' needs num_embeds_ada_norm (the class count)")
        sample_size = r.positive("sample_size", 32)
        extra = r.get("use_additional_conditions", None)
        return cls(
            num_attention_heads=r.positive("num_attention_heads"),
            attention_head_dim=r.positive("attention_head_dim"),
            in_channels=in_channels,
            out_channels=r.positive("out_channels", in_channels),
            num_layers=r.positive("num_layers"),
            patch_size=r.positive("patch_size"),
            attention_bias=r.flag("attention_bias", False),
            activation=_FF_ACTIVATIONS[r.only("activation_fn", tuple(_FF_ACTIVATIONS))],
            norm_type=norm_type,
            norm_elementwise_affine=r.flag("norm_elementwise_affine", False),
            num_embeds_ada_norm=None if embeds is None else r.positive("num_embeds_ada_norm"),
            cross_attention_dim=None if cross is None else r.positive("cross_attention_dim"),
            caption_channels=None if caption is None else r.positive("caption_channels"),
            # PixArt: None means "sample_size == 128" (the 1024px checkpoints).
            use_additional_conditions=(sample_size == 128) if extra is None else r.flag("use_additional_conditions", False),
        )

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim


def read_config(
    path: str, published: Mapping[str, Any], what: str, *, defaults: Mapping[str, Any], norm_types: tuple[str, ...]
) -> DiTConfig:
    """The `published` config, or the diffusers transformer `config.json` at `path` instead
    (the value of a model's `config` option)."""
    raw, name = option_config(path, published, what=what, file_what=f"{what} config {path}", file="transformer config.json")
    return DiTConfig.from_dict(raw, name, defaults=defaults, norm_types=norm_types)


def latent_tokens(cfg: DiTConfig, side: int, what: str) -> int:
    """Patches per side of a `side` x `side` latent; the side must be a multiple of the patch."""
    if side % cfg.patch_size:
        raise InputError(f"{what}: latent side {side} is not divisible by the patch size {cfg.patch_size}")
    return side // cfg.patch_size


# -- patchify / unpatchify ----------------------------------------------------------------
def patch_embed(b: GraphBuilder, x: Tensor, dim: int, patch: int) -> Tensor:
    """`PatchEmbed` (scope "pos_embed"): stride-p conv, flatten + transpose to tokens (the copy the
    next token-wise op forces), plus the fixed sin-cos position table (a buffer, no params)."""
    _n, _, h, w = x.shape
    with b.scope("pos_embed"):
        x = b.conv("proj", x, dim, patch, stride=patch, padding=0)
        x = _blocks.to_tokens(b, "to_tokens", x)
        tokens = (h // patch) * (w // patch)
        return b.elementwise("add_pos_embed", [x, b.input((1, tokens, dim))], "add")


def unpatchify(b: GraphBuilder, x: Tensor, grid: tuple[int, int], patch: int, out_ch: int) -> Tensor:
    """(N, h*w, p*p*C) -> (N, C, h*p, w*p): reshape, einsum "nhwpqc->nchpwq", reshape (a copy)."""
    n = x.shape[0]
    return b.move("unpatchify", x, (n, out_ch, grid[0] * patch, grid[1] * patch), what="unpatchify")


# -- conditioning -------------------------------------------------------------------------
def timestep_embedding(b: GraphBuilder, t: Tensor, dim: int, *, proj: str = "time_proj") -> Tensor:
    """`Timesteps(256)` sin-cos features then `TimestepEmbedding` (scope "timestep_embedder")."""
    feats = _blocks.sinusoidal_embedding(b, proj, t, TIME_PROJ_DIM)
    with b.scope("timestep_embedder"):
        return _blocks.timestep_mlp(b, feats, dim)


def rows(x: Tensor, count: int) -> Tensor:
    """One of `count` equal chunks of the last dim of an (N, count*D) vector, as (N, 1, D): a
    free view that broadcasts over the token axis."""
    n, width = x.shape
    return _blocks.view(x, (n, 1, width // count))


def modulate(b: GraphBuilder, name: str, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """`x * (1 + scale) + shift` over the tokens: a multiply and an add kernel. The multiply carries
    `role="adaln_scale"` (GPU runtimes launch the `1 + scale` over the modulation chunk first)."""
    x = b.mul(f"{name}_scale", x, scale)
    b.graph[x.src[0]].attrs["role"] = "adaln_scale"
    return b.add(f"{name}_shift", x, shift)


def gated_residual(b: GraphBuilder, name: str, x: Tensor, h: Tensor, gate: Tensor | None) -> Tensor:
    """`x + gate * h` (or `x + h` without a gate): the residual of a transformer sub-block."""
    if gate is not None:
        h = b.mul(f"{name}_gate", h, gate)
    return b.add(f"{name}_residual", x, h)


def adaln_single(b: GraphBuilder, cfg: DiTConfig, t: Tensor) -> tuple[Tensor, Tensor]:
    """`AdaLayerNormSingle` (scope "adaln_single") on timesteps (N,): returns the block
    modulation vector (N, 6C) and the embedded timestep (N, C) used by the output layer.

    With micro-conditions (PixArt-alpha 1024px) the resolution (height, width) and the aspect
    ratio are embedded like timesteps into C/3 features each and added to the timestep embedding.
    """
    (n,) = t.shape
    dim = cfg.inner_dim
    with b.scope("adaln_single"):
        with b.scope("emb"):
            emb = timestep_embedding(b, t, dim)
            if cfg.use_additional_conditions:
                size_dim = dim // 3
                res = _blocks.sinusoidal_embedding(b, "additional_condition_proj", b.input((2 * n,)), TIME_PROJ_DIM)
                with b.scope("resolution_embedder"):
                    res = _blocks.timestep_mlp(b, res, size_dim)
                ratio = _blocks.sinusoidal_embedding(b, "additional_condition_proj_ar", b.input((n,)), TIME_PROJ_DIM)
                with b.scope("aspect_ratio_embedder"):
                    ratio = _blocks.timestep_mlp(b, ratio, size_dim)
                sizes = b.concat("size_concat", [_blocks.view(res, (n, 2 * size_dim)), ratio], dim=1)
                emb = b.add("add", emb, sizes)
        h = b.activation("silu", emb, "silu")
        return b.linear("linear", h, 6 * dim), emb


def caption_projection(b: GraphBuilder, caption: Tensor, dim: int) -> Tensor:
    """`PixArtAlphaTextProjection`: T5 states (N, L, 4096) -> linear, GELU(tanh), linear."""
    with b.scope("caption_projection"):
        h = b.linear("linear_1", caption, dim)
        h = b.activation("act_1", h, "gelu")
        return b.linear("linear_2", h, dim)


def output_layer_single(b: GraphBuilder, cfg: DiTConfig, x: Tensor, embedded: Tensor) -> Tensor:
    """PixArt/Latte output: `scale_shift_table (2, C) + embedded timestep`, norm_out, modulate,
    proj_out to p*p*out_channels per token."""
    n, _, dim = x.shape
    table = b.elementwise("scale_shift_table", [_blocks.view(embedded, (n, 1, dim))], "add", params=2 * dim)
    shift, scale = (_blocks.view(table, (n, 1, dim)),) * 2
    x = b.layer_norm("norm_out", x, affine=False)
    x = modulate(b, "norm_out_modulate", x, shift, scale)
    return b.linear("proj_out", x, cfg.patch_size**2 * cfg.out_channels)


# -- transformer blocks -----------------------------------------------------------------
def feed_forward(b: GraphBuilder, x: Tensor, inner: int, act: str) -> Tensor:
    """diffusers `FeedForward` with a GELU input projection: net.0.proj, GELU, net.2."""
    with b.scope("ff"):
        h = b.linear("net.0.proj", x, inner)
        h = b.activation("net.0.act", h, act)
        return b.linear("net.2", h, x.shape[-1])


def _attn(b: GraphBuilder, cfg: DiTConfig, name: str, x: Tensor, axis: str, context: Tensor | None = None) -> Tensor:
    return _blocks.attention(
        b,
        name,
        x,
        heads=cfg.num_attention_heads,
        inner=cfg.inner_dim,
        context=context,
        qkv_bias=cfg.attention_bias,
        role="self" if context is None else "cross",
        axis=axis,
    )


def ada_norm_zero_block(b: GraphBuilder, cfg: DiTConfig, x: Tensor, t: Tensor, labels: Tensor) -> Tensor:
    """`BasicTransformerBlock(norm_type="ada_norm_zero")` (DiT), self-attention only.

    Every block embeds (timestep, class label) again in its own `norm1.emb`
    (`CombinedTimestepLabelEmbeddings`: timestep MLP + a (classes + 1)-row label table, the
    extra row being the CFG null class), projects it to 6 modulation vectors and gates both
    residuals with them (adaLN-Zero).
    """
    dim = cfg.inner_dim
    with b.scope("norm1"):
        with b.scope("emb"):
            temb = timestep_embedding(b, t, dim)
            with b.scope("class_embedder"):
                cemb = b.embedding("embedding_table", labels, cfg.num_embeds_ada_norm + 1, dim)
            emb = b.add("add", temb, cemb)
        mod = b.linear("linear", b.activation("silu", emb, "silu"), 6 * dim)
        h = b.layer_norm("norm", x, affine=False)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (rows(mod, 6),) * 6
        h = modulate(b, "modulate", h, shift_msa, scale_msa)
    h = _attn(b, cfg, "attn1", h, "spatial")
    x = gated_residual(b, "attn1", x, h, gate_msa)
    h = b.layer_norm("norm3", x, affine=cfg.norm_elementwise_affine)
    h = modulate(b, "norm3_modulate", h, shift_mlp, scale_mlp)
    h = feed_forward(b, h, 4 * dim, cfg.activation)
    return gated_residual(b, "ff", x, h, gate_mlp)


def ada_norm_single_block(
    b: GraphBuilder, cfg: DiTConfig, x: Tensor, mod: Tensor, *, axis: str, context: Tensor | None = None
) -> Tensor:
    """`BasicTransformerBlock(norm_type="ada_norm_single")` (PixArt-alpha, Latte).

    `mod` is the (N, 6C) output of the shared `adaln_single`, already repeated to this block's
    batch N; each block adds its own learned `scale_shift_table` (6, C) to it. Self-attention
    (over `axis`), then cross-attention to `context` (no norm before it, as in PixArt) when
    given, then the feed-forward; attention and feed-forward residuals are gated.
    """
    n, _, dim = x.shape
    table = b.elementwise("scale_shift_table", [_blocks.view(mod, (n, 6, dim))], "add", params=6 * dim)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (_blocks.view(table, (n, 1, dim)),) * 6
    h = b.layer_norm("norm1", x, affine=cfg.norm_elementwise_affine)
    h = modulate(b, "norm1_modulate", h, shift_msa, scale_msa)
    h = _attn(b, cfg, "attn1", h, axis)
    x = gated_residual(b, "attn1", x, h, gate_msa)
    if context is not None:
        h = _attn(b, cfg, "attn2", x, axis, context)
        x = gated_residual(b, "attn2", x, h, None)
    h = b.layer_norm("norm2", x, affine=cfg.norm_elementwise_affine)
    h = modulate(b, "norm2_modulate", h, shift_mlp, scale_mlp)
    h = feed_forward(b, h, 4 * dim, cfg.activation)
    return gated_residual(b, "ff", x, h, gate_mlp)
