"""diffusers `UNet2DConditionModel` as an operator graph, from its `config.json` keys.

Covers the Stable Diffusion family: SD 1.x, SD 2.x (`use_linear_projection`, per-block head
counts) and SDXL (`transformer_layers_per_block`, the `text_time` added embedding, a first
block without attention). Op names are the diffusers module paths
(`down_blocks.0.attentions.1.transformer_blocks.0.attn1`).

diffusers quirk reproduced on purpose: `attention_head_dim` is really the number of HEADS
(SD 1.5's `attention_head_dim: 8` means 8 heads of 40/80/160 channels), see
https://github.com/huggingface/diffusers/issues/2011.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from . import unet_levels as levels
from .config import ConfigReader

DOWN_BLOCKS = ("CrossAttnDownBlock2D", "DownBlock2D")
UP_BLOCKS = ("CrossAttnUpBlock2D", "UpBlock2D")
MID_BLOCKS = ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D", None)

# Structural keys whose only modeled value is the diffusers default (or "off").
_FIXED = {
    "num_attention_heads": (None,),  # diffusers itself rejects it (issue 2011)
    "dual_cross_attention": (False, None),
    "class_embed_type": (None,),
    "num_class_embeds": (None,),
    "class_embeddings_concat": (False, None),
    "encoder_hid_dim": (None,),
    "encoder_hid_dim_type": (None,),
    "time_cond_proj_dim": (None,),
    "reverse_transformer_layers_per_block": (None,),
    "resnet_time_scale_shift": ("default", None),
    "resnet_skip_time_act": (False, None),
    "attention_type": ("default", None),
    "cross_attention_norm": (None,),
    "mid_block_only_cross_attention": (None, False),
    "time_embedding_type": ("positional", None),
}


@dataclass(frozen=True)
class UNetConfig(levels.UNetLayout):
    """The structural fields of a diffusers `UNet2DConditionModel` config, per block."""

    mid_block_type: str | None
    layers_per_block: tuple[int, ...]
    heads: tuple[int, ...]  # diffusers' `attention_head_dim` (see module docstring)
    transformer_layers: tuple[int, ...]
    cross_attention_dim: int
    norm_num_groups: int
    use_linear_projection: bool
    act: str
    center_input_sample: bool
    downsample_padding: int
    mid_block_scale_factor: float
    conv_in_kernel: int
    conv_out_kernel: int
    time_embed_dim: int
    time_embedding_act_fn: str | None
    timestep_post_act: str | None
    addition_embed_type: str | None
    addition_time_embed_dim: int
    projection_class_embeddings_input_dim: int
    upcast_attention: bool

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "UNet2DConditionModel") -> UNetConfig:
        """Read a diffusers config dict; absent keys take the diffusers defaults.

        Unknown and purely numerical keys are ignored; structural keys with a value this
        builder does not model raise `InputError`.
        """
        r = ConfigReader(config, what)
        for key, supported in _FIXED.items():
            r.only(key, supported, supported[0])
        down, up = levels.block_types(
            r, (DOWN_BLOCKS, UP_BLOCKS), (("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
        )
        n = len(down)
        channels = r.per_block("block_out_channels", n, (320, 640, 1280, 1280))
        cross = r.per_block("cross_attention_dim", n, 1280)
        if len(set(cross)) != 1:
            raise InputError(f"{what}: per-block cross_attention_dim {list(cross)} is not supported")
        transformer_layers = r.get("transformer_layers_per_block", 1)
        if isinstance(transformer_layers, (list, tuple)) and any(isinstance(t, (list, tuple)) for t in transformer_layers):
            raise InputError(f"{what}: nested transformer_layers_per_block (asymmetric UNet) is not supported")
        if any(r.per_block("only_cross_attention", n, False, bool)):
            raise InputError(f"{what}: only_cross_attention is not supported")
        addition = r.only("addition_embed_type", (None, "text_time"))
        if "norm_num_groups" in config and config["norm_num_groups"] is None:
            raise InputError(f"{what}: norm_num_groups null (no output norm) is not supported")
        time_embedding_act = r.get("time_embedding_act_fn", None)
        post_act = r.get("timestep_post_act", None)
        cfg = cls(
            in_channels=r.positive("in_channels", 4),
            out_channels=r.positive("out_channels", 4),
            block_out_channels=channels,
            down_block_types=down,
            up_block_types=up,
            mid_block_type=r.only("mid_block_type", MID_BLOCKS, "UNetMidBlock2DCrossAttn"),
            layers_per_block=r.per_block("layers_per_block", n, 2),
            heads=r.per_block("attention_head_dim", n, 8),
            transformer_layers=r.per_block("transformer_layers_per_block", n, 1),
            cross_attention_dim=cross[0],
            norm_num_groups=r.positive("norm_num_groups", 32),
            use_linear_projection=r.flag("use_linear_projection", False),
            act=_blocks.activation_fn(r.get("act_fn", "silu"), what),
            center_input_sample=r.flag("center_input_sample", False),
            downsample_padding=r.only("downsample_padding", (0, 1), 1),
            mid_block_scale_factor=r.number("mid_block_scale_factor", 1.0),
            conv_in_kernel=r.positive("conv_in_kernel", 3),
            conv_out_kernel=r.positive("conv_out_kernel", 3),
            time_embed_dim=r.positive("time_embedding_dim", channels[0] * 4),
            time_embedding_act_fn=_blocks.activation_fn(time_embedding_act, what) if time_embedding_act else None,
            timestep_post_act=_blocks.activation_fn(post_act, what) if post_act else None,
            addition_embed_type=addition,
            addition_time_embed_dim=r.positive("addition_time_embed_dim") if addition else 0,
            projection_class_embeddings_input_dim=r.positive("projection_class_embeddings_input_dim") if addition else 0,
            upcast_attention=bool(r.get("upcast_attention", False)),
        )
        if addition and cfg.text_embeds_dim <= 0:
            raise InputError(f"{what}: projection_class_embeddings_input_dim leaves no room for text_embeds")
        for c in cfg.block_out_channels:
            if c % cfg.norm_num_groups:
                raise InputError(f"{what}: block_out_channels {c} is not divisible by norm_num_groups {cfg.norm_num_groups}")
        return cfg

    @property
    def text_embeds_dim(self) -> int:
        """Width of the pooled text embedding SDXL's `text_time` embedding expects (1280)."""
        return self.projection_class_embeddings_input_dim - 6 * self.addition_time_embed_dim


def unet2d_condition(
    b: GraphBuilder,
    cfg: UNetConfig,
    sample: Tensor,
    encoder_hidden_states: Tensor,
    *,
    text_embeds: Tensor | None = None,
) -> Tensor:
    """Emit one UNet forward on `sample` (N, C, h, w) conditioned on (N, L, cross_dim) states.

    `text_embeds` (N, 1280) is SDXL's pooled prompt embedding for the `text_time` added
    embedding (a graph input when not given); the six `time_ids` per sample are inputs.
    """
    n = sample.shape[0]
    if sample.shape[1] != cfg.in_channels:
        raise InputError(f"UNet in_channels {cfg.in_channels} does not match the {sample.shape[1]}-channel latents")
    if encoder_hidden_states.shape[-1] != cfg.cross_attention_dim:
        raise InputError(
            f"UNet cross_attention_dim {cfg.cross_attention_dim} does not match the text encoder's "
            f"hidden size {encoder_hidden_states.shape[-1]}"
        )
    ctx = _Ctx(b, cfg, encoder_hidden_states, _time_embedding(b, cfg, n, text_embeds))
    x = sample
    if cfg.center_input_sample:
        x = b.elementwise("center_input_sample", [x], "axpb")
    x = b.conv("conv_in", x, cfg.block_out_channels[0], cfg.conv_in_kernel, padding=(cfg.conv_in_kernel - 1) // 2)
    x = levels.levels(b, ctx, x, cfg.down_block_types, cfg.up_block_types, mid=cfg.mid_block_type is not None)
    return levels.output_head(
        b, x, groups=cfg.norm_num_groups, act=cfg.act, out_channels=cfg.out_channels, kernel=cfg.conv_out_kernel
    )


def _time_embedding(b: GraphBuilder, cfg: UNetConfig, n: int, text_embeds: Tensor | None) -> Tensor:
    """time_proj -> time_embedding (+ SDXL add_time_proj/add_embedding) -> optional act."""
    c0 = cfg.block_out_channels[0]
    t = _blocks.sinusoidal_embedding(b, "time_proj", b.input((n,)), c0)
    with b.scope("time_embedding"):
        emb = _blocks.timestep_mlp(b, t, cfg.time_embed_dim, act=cfg.act, post_act=cfg.timestep_post_act)
    if cfg.addition_embed_type == "text_time":
        time_ids = _blocks.sinusoidal_embedding(b, "add_time_proj", b.input((n * 6,)), cfg.addition_time_embed_dim)
        time_ids = _blocks.view(time_ids, (n, 6 * cfg.addition_time_embed_dim))
        if text_embeds is None:
            text_embeds = b.input((n, cfg.text_embeds_dim))
        add = b.concat("add_embeds_concat", [text_embeds, time_ids], dim=1)
        if add.shape[1] != cfg.projection_class_embeddings_input_dim:
            raise InputError(
                f"text_embeds width {text_embeds.shape[1]} + time ids {time_ids.shape[1]} != "
                f"projection_class_embeddings_input_dim {cfg.projection_class_embeddings_input_dim}"
            )
        with b.scope("add_embedding"):
            aug = _blocks.timestep_mlp(b, add, cfg.time_embed_dim)
        emb = b.add("aug_emb_add", emb, aug)
    if cfg.time_embedding_act_fn is not None:
        emb = b.activation("time_embed_act", emb, cfg.time_embedding_act_fn)
    return emb


@dataclass(frozen=True)
class _Ctx:
    """What every block needs: the builder, the config, the text states and the time embedding."""

    b: GraphBuilder
    cfg: UNetConfig
    context: Tensor
    temb: Tensor

    def resnet(self, out_ch: int, scale: float = 1.0) -> levels.Layer:
        """`resnets.<j>` with `out_ch` output channels."""

        def layer(j: int, x: Tensor) -> Tensor:
            with self.b.scope("resnets", j):
                return _blocks.resnet_block(
                    self.b, x, out_ch, temb=self.temb, groups=self.cfg.norm_num_groups, act=self.cfg.act,
                    output_scale_factor=scale,
                )

        return layer

    def transformer(self, level: int) -> levels.Layer:
        """`attentions.<j>`: a Transformer2DModel with level `level`'s heads and depth."""

        def layer(j: int, x: Tensor) -> Tensor:
            with self.b.scope("attentions", j):
                return transformer_2d(
                    self.b, x, self.context, heads=self.cfg.heads[level], layers=self.cfg.transformer_layers[level],
                    groups=self.cfg.norm_num_groups, linear_projection=self.cfg.use_linear_projection,
                    upcast=self.cfg.upcast_attention,
                )

        return layer

    def down(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        """CrossAttnDownBlock2D / DownBlock2D: (resnet [+ transformer]) x layers, then downsample."""
        last = i == len(self.cfg.block_out_channels) - 1
        return levels.down_block(
            x, skips, self.cfg.layers_per_block[i], self.resnet(self.cfg.block_out_channels[i]),
            self.transformer(i) if kind == "CrossAttnDownBlock2D" else None,
            None if last else lambda x: _blocks.downsample(self.b, x, self.cfg.downsample_padding),
        )  # fmt: skip

    def mid(self, x: Tensor) -> Tensor:
        """UNetMidBlock2DCrossAttn: resnet, transformer, resnet (UNetMidBlock2D: one resnet)."""
        cross = self.cfg.mid_block_type == "UNetMidBlock2DCrossAttn"
        return levels.mid_block(x, self.resnet(x.shape[1], self.cfg.mid_block_scale_factor), self.transformer(-1) if cross else None)

    def up(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        """CrossAttnUpBlock2D / UpBlock2D: (concat skip, resnet [+ transformer]) x (layers+1), upsample."""
        rev = len(self.cfg.block_out_channels) - 1 - i  # the matching down level
        last = i == len(self.cfg.up_block_types) - 1
        return levels.up_block(
            self.b, x, skips, self.cfg.layers_per_block[rev], self.resnet(self.cfg.block_out_channels[rev]),
            self.transformer(rev) if kind == "CrossAttnUpBlock2D" else None,
            None if last else lambda x: _blocks.upsample(self.b, x, skips[-1].shape[2:]),
        )  # fmt: skip


def transformer_2d(
    b: GraphBuilder,
    x: Tensor,
    context: Tensor,
    *,
    heads: int,
    layers: int,
    groups: int,
    linear_projection: bool,
    upcast: bool = False,
) -> Tensor:
    """diffusers `Transformer2DModel` on continuous input (N, C, H, W).

    GroupNorm, proj_in (1x1 conv, or linear after the NCHW->NHWC copy), `layers`
    BasicTransformerBlocks over the H*W tokens, proj_out, back to NCHW, residual add.
    """
    _n, c, h, w = x.shape
    inner = heads * (c // heads)
    t = b.group_norm("norm", x, groups)
    if linear_projection:
        t = _blocks.to_tokens(b, "to_tokens", t)
        t = b.linear("proj_in", t, inner)
    else:
        t = b.conv("proj_in", t, inner, 1, padding=0)
        t = _blocks.to_tokens(b, "to_tokens", t)
    for k in range(layers):
        with b.scope("transformer_blocks", k):
            t = basic_transformer_block(b, t, context, heads=heads, upcast=upcast)
    if linear_projection:
        t = b.linear("proj_out", t, c)
        t = _blocks.to_nchw(b, "to_nchw", t, (h, w))
    else:
        t = _blocks.to_nchw(b, "to_nchw", t, (h, w))
        t = b.conv("proj_out", t, c, 1, padding=0)
    return b.add("residual_add", t, x)


def basic_transformer_block(b: GraphBuilder, x: Tensor, context: Tensor, *, heads: int, upcast: bool = False) -> Tensor:
    """diffusers `BasicTransformerBlock` (layer_norm): self-attn, cross-attn, GEGLU FF, each residual;
    `upcast`: the config's `upcast_attention` (scores from fp32 q and k in the unfused processor)."""
    dim = x.shape[-1]
    h = b.layer_norm("norm1", x)
    h = _blocks.attention(b, "attn1", h, heads=heads, inner=dim, qkv_bias=False, role="self", upcast=upcast)
    x = b.add("attn1_add", h, x)
    h = b.layer_norm("norm2", x)
    h = _blocks.attention(b, "attn2", h, heads=heads, inner=dim, context=context, qkv_bias=False, role="cross",
                          upcast=upcast)
    x = b.add("attn2_add", h, x)
    return _blocks.geglu_feed_forward(b, x)
