"""ADM-style pixel-space UNet (Dhariwal & Nichol 2021) with GLIDE/Imagen text conditioning,
as diffusers implements it in `UNet2DConditionModel` with the "simple cross-attention" blocks
(the blocks diffusers uses for unCLIP and DeepFloyd IF).

What the blocks compute (diffusers module paths in parentheses):
- `ResnetDownsampleBlock2D` / `ResnetUpsampleBlock2D`: residual blocks only; resolution
  changes inside a residual block (`downsamplers.0` / `upsamplers.0`, ResnetBlock2D with
  `down`/`up`: avg-pool / nearest-upsample of both branches before `conv1`), which is ADM's
  BigGAN-style resampling (`resblock_updown`).
- `SimpleCrossAttnDownBlock2D` / `SimpleCrossAttnUpBlock2D` / `UNetMidBlock2DSimpleCrossAttn`:
  each residual block is followed by an `Attention` with added K/V (`AttnAddedKVProcessor`):
  GroupNorm, q/k/v from the image tokens, `add_k_proj`/`add_v_proj` from the text tokens,
  text keys/values CONCATENATED in front of the image keys/values (Imagen D.3.1: "concatenating
  the text embedding sequence to the key-value pairs of each self-attention layer"), one SDPA,
  `to_out`, residual add. Heads are `channels / attention_head_dim` (here the per-head width).
- `resnet_time_scale_shift: scale_shift`: the embedding modulates the second GroupNorm as
  `h * (1 + scale) + shift` (ADM's `use_scale_shift_norm`).
- `addition_embed_type: text` (`TextTimeEmbedding`): LayerNorm -> attention pooling of the
  text tokens (a mean-token query, 1 x (L+1) attention) -> linear -> LayerNorm, added to the
  timestep embedding (Imagen's "attention pooled text embedding").
- `encoder_hid_dim_type: text_proj`: one linear projecting the text states (T5's 4096) to
  `cross_attention_dim` before the attention layers use them.

The attention op over image queries and [text; image] keys has role "self" and axis
"spatial" (it is the image's self-attention; the text tokens are a prefix of its keys, so its
`lk` is L_text + H*W), as for GLIDE's `encoder_kv` in `_adm`. An explicit cross-attention
layer (`only_cross`) has role "cross", axis "spatial" and `lk` = L_text.
The helpers `check_inputs`, `resnet_block2d`, `added_kv_attention`, `text_time_embedding` and
`timestep_embedding` are shared with the Efficient U-Net (`_efficient_unet`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from . import unet_levels as levels
from .config import ConfigReader

DOWN_BLOCKS = ("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D")
UP_BLOCKS = ("ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D")
MID_BLOCK = "UNetMidBlock2DSimpleCrossAttn"

# Structural keys whose only modeled value is the diffusers default (or "off").
_FIXED = {
    "num_attention_heads": (None,),
    "class_embed_type": (None,),
    "num_class_embeds": (None,),
    "time_cond_proj_dim": (None,),
    "resnet_skip_time_act": (False, None),
    "resnet_out_scale_factor": (1.0, 1, None),
    "time_embedding_type": ("positional", None),
    "time_embedding_act_fn": (None,),
    "timestep_post_act": (None,),
    "only_cross_attention": (False, None),
    "center_input_sample": (False, None),
    "conv_in_kernel": (3, None),
    "conv_out_kernel": (3, None),
}


@dataclass(frozen=True)
class AddedKVUNetConfig(levels.UNetLayout):
    """The structural fields of a diffusers `UNet2DConditionModel` built from simple cross-attn blocks."""

    layers_per_block: int
    attention_head_dim: int  # per-head width in these blocks (heads = channels / this)
    cross_attention_dim: int  # width of the text states the attention layers project (add_k/v_proj)
    encoder_hid_dim: int | None  # text width before `encoder_hid_proj` (None: no projection)
    time_embed_dim: int
    norm_num_groups: int
    act: str
    scale_shift: bool
    cross_attention_norm: str | None  # norm of the text states in each attention layer
    text_pooling_heads: int | None  # `addition_embed_type: text` heads (None: no pooled text)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "UNet2DConditionModel (added K/V)") -> AddedKVUNetConfig:
        """Read a diffusers config dict; structural keys outside this block family raise `InputError`."""
        r = ConfigReader(config, what)
        for key, supported in _FIXED.items():
            r.only(key, supported, supported[0])
        down, up = levels.block_types(r, (DOWN_BLOCKS, UP_BLOCKS))
        r.only("mid_block_type", (MID_BLOCK,), MID_BLOCK)
        channels = r.per_block("block_out_channels", len(down), None)
        head_dim = r.positive("attention_head_dim")
        for c in channels:
            if c % head_dim:
                raise InputError(f"{what}: block_out_channels {c} is not divisible by attention_head_dim {head_dim}")
        hid_type = r.only("encoder_hid_dim_type", (None, "text_proj"))
        addition = r.only("addition_embed_type", (None, "text"))
        scale_shift = r.only("resnet_time_scale_shift", ("default", "scale_shift"), "default") == "scale_shift"
        return cls(
            in_channels=r.positive("in_channels", 3),
            out_channels=r.positive("out_channels", 3),
            block_out_channels=channels,
            down_block_types=down,
            up_block_types=up,
            layers_per_block=r.positive("layers_per_block", 2),
            attention_head_dim=head_dim,
            cross_attention_dim=r.positive("cross_attention_dim"),
            encoder_hid_dim=r.positive("encoder_hid_dim") if hid_type else None,
            time_embed_dim=r.positive("time_embedding_dim", channels[0] * 4),
            norm_num_groups=r.positive("norm_num_groups", 32),
            act=_blocks.activation_fn(r.get("act_fn", "silu"), what),
            scale_shift=scale_shift,
            cross_attention_norm=r.only("cross_attention_norm", (None, "layer_norm", "group_norm")),
            text_pooling_heads=r.positive("addition_embed_type_num_heads", 64) if addition else None,
        )

    @property
    def text_dim(self) -> int:
        """Width of the text states the UNet takes (T5-XXL: 4096)."""
        return self.encoder_hid_dim or self.cross_attention_dim


# -- shared layers ---------------------------------------------------------------------------
def resnet_block2d(
    b: GraphBuilder,
    x: Tensor,
    out_ch: int,
    temb: Tensor,
    *,
    groups: int,
    act: str,
    scale_shift: bool,
    resample: str | None = None,
    shortcut: bool | None = None,
    output_scale: float = 1.0,
    diffusers: bool = True,
) -> Tensor:
    """diffusers `ResnetBlock2D`: norm1, act, [up/down both branches], conv1, embedding
    (added, or scale-shift of norm2), norm2, act, conv2, 1x1 `conv_shortcut` (when the channels
    change, or always with `shortcut=True`), residual add (then a multiply by `output_scale`
    when it is not 1, e.g. the Efficient U-Net's 1/sqrt(2)). `diffusers=False`: the block outside
    diffusers (the Efficient U-Net), which does not divide by a unit factor.

    `resample` "down" is a 2x2 average pool, "up" a 2x nearest upsample, of both the input
    and the hidden branch (BigGAN-style resampling inside the residual block).
    """
    n, in_ch, h, w = x.shape
    y = b.group_norm("norm1", x, groups)
    y = b.activation("act1", y, act)
    if resample is not None:
        side = (h // 2, w // 2) if resample == "down" else (2 * h, 2 * w)
        mode = "avg_pool" if resample == "down" else "nearest"
        name = "downsample" if resample == "down" else "upsample"
        x = b.resample(f"{name}_input", x, (n, in_ch, *side), mode=mode)
        y = b.resample(f"{name}_hidden", y, (n, in_ch, *side), mode=mode)
    y = b.conv("conv1", y, out_ch, 3)
    t = b.activation("temb_act", temb, act)
    t = b.linear("time_emb_proj", t, 2 * out_ch if scale_shift else out_ch)
    if scale_shift:
        y = b.group_norm("norm2", y, groups)
        scale = shift = _blocks.view(t, (n, out_ch, 1, 1))  # torch.chunk(temb, 2): views
        y = b.elementwise("scale_shift", [y, scale, shift], "fma")
    else:
        y = b.add("temb_add", y, _blocks.view(t, (n, out_ch, 1, 1)))
        y = b.group_norm("norm2", y, groups)
    y = b.activation("act2", y, act)
    y = b.conv("conv2", y, out_ch, 3)
    if shortcut or (shortcut is None and in_ch != out_ch):
        x = b.conv("conv_shortcut", x, out_ch, 1, padding=0)
    out = b.add("residual_add", x, y)
    if output_scale != 1:
        return b.elementwise("output_scale", [out], "mul")
    if diffusers:  # diffusers divides by its unit output_scale_factor (`layers.mark_rescale_div`)
        _blocks.mark_rescale_div(b, out)
    return out


def added_kv_attention(
    b: GraphBuilder,
    name: str,
    x: Tensor,
    text: Tensor,
    *,
    heads: int,
    inner: int,
    groups: int,
    text_norm: str | None,
    only_cross: bool = False,
) -> Tensor:
    """diffusers `Attention` + `AttnAddedKVProcessor2_0` on an image (N, C, H, W).

    Queries come from the image tokens; keys/values are the projected text tokens
    concatenated in front of the image tokens' own (or the text tokens alone with
    `only_cross`, an explicit cross-attention layer). The SDPA op is the module path `name`;
    its layers sit under it (`<name>.group_norm`, `norm_cross`, `to_q`, `to_k`, `to_v`,
    `add_k_proj`, `add_v_proj`, `to_out.0`).
    """
    _n, c, h, w = x.shape
    with b.scope(name):
        if text_norm == "layer_norm":
            text = b.layer_norm("norm_cross", text)
        elif text_norm == "group_norm":  # GroupNorm over the text channels: (N, L, D) viewed as (N, D, L)
            tn, tl, td = text.shape
            text = _blocks.view(b.group_norm("norm_cross", _blocks.view(text, (tn, td, tl)), groups), text.shape)
        t = b.group_norm("group_norm", x, groups)
        t = _blocks.to_tokens(b, "to_tokens", t)
        q = b.linear("to_q", t, inner)
        k = b.linear("add_k_proj", text, inner)
        v = b.linear("add_v_proj", text, inner)
        if not only_cross:
            k = b.concat("concat_keys", [k, b.linear("to_k", t, inner)], dim=1)
            v = b.concat("concat_values", [v, b.linear("to_v", t, inner)], dim=1)
    o = b.attention(name, q, k, v, heads, role="cross" if only_cross else "self", axis="spatial")
    with b.scope(name):
        o = b.linear("to_out.0", o, c)
        o = _blocks.to_nchw(b, "to_nchw", o, (h, w))
        return b.add("residual_add", o, x)


def text_time_embedding(b: GraphBuilder, text: Tensor, out_dim: int, heads: int) -> Tensor:
    """diffusers `TextTimeEmbedding` (DeepFloyd IF's attention pooling) on (N, L, D) text states.

    norm1, then `pool`: a class token (mean of the tokens + a learned positional embedding)
    prepended to the tokens, q from the class token, k/v from all L+1 tokens, one 1 x (L+1)
    attention; then `proj` to `out_dim` and norm2. Returns (N, out_dim).
    """
    n, _length, dim = text.shape
    if dim % heads:
        raise InputError(f"text width {dim} is not divisible by {heads} pooling heads")
    x = b.layer_norm("norm1", text)
    # The learned positional embedding is the `pool` module's own parameter, so its lookup
    # carries the module path; the 1 x (L+1) attention is `pool.attention`.
    pos = b.embedding("pool", b.input((1, 1)), 1, dim)
    with b.scope("pool"):
        mean = b.elementwise("mean_tokens", [x], "mean")
        cls = b.add("class_token", _blocks.view(mean, (n, 1, dim)), pos)
        tokens = b.concat("concat_class_token", [cls, x], dim=1)
        q = b.linear("q_proj", cls, dim)
        k = b.linear("k_proj", tokens, dim)
        v = b.linear("v_proj", tokens, dim)
        pooled = b.attention("attention", q, k, v, heads, role="self", axis="text")
    y = b.linear("proj", _blocks.view(pooled, (n, dim)), out_dim)
    return b.layer_norm("norm2", y)


def check_inputs(what: str, sample: Tensor, text: Tensor, *, in_channels: int, text_dim: int, downscale: int) -> None:
    """`InputError` unless `sample` (N, C, H, W) has `in_channels` channels and sides divisible by
    `downscale`, and `text` (N, L, D) is `text_dim` wide; `what` names the network in the message."""
    _, ch, h, w = sample.shape
    if ch != in_channels:
        raise InputError(f"{what} in_channels {in_channels} does not match the {ch}-channel input")
    if text.shape[-1] != text_dim:
        raise InputError(f"{what} text width {text_dim} does not match the text encoder's {text.shape[-1]}")
    if h % downscale or w % downscale:
        raise InputError(f"image side {h}x{w} is not divisible by the {what}'s downsampling factor {downscale}")


def timestep_embedding(b: GraphBuilder, names: tuple[str, str], n: int, channels: int, dim: int, act: str) -> Tensor:
    """`Timesteps` (sinusoidal, `channels` wide) + `TimestepEmbedding` MLP to `dim` for `n` samples.

    `names` are the two module paths, e.g. ("time_proj", "time_embedding").
    """
    proj, mlp = names
    t = _blocks.sinusoidal_embedding(b, proj, b.input((n,)), channels)
    with b.scope(mlp):
        return _blocks.timestep_mlp(b, t, dim, act=act)


# -- the UNet --------------------------------------------------------------------------------
def unet2d_added_kv(b: GraphBuilder, cfg: AddedKVUNetConfig, sample: Tensor, text: Tensor) -> Tensor:
    """One `UNet2DConditionModel` forward on `sample` (N, C, H, W) and text states (N, L, text_dim)."""
    check_inputs("UNet", sample, text, in_channels=cfg.in_channels, text_dim=cfg.text_dim, downscale=cfg.downscale)
    n = sample.shape[0]
    emb = timestep_embedding(b, ("time_proj", "time_embedding"), n, cfg.block_out_channels[0], cfg.time_embed_dim, cfg.act)
    if cfg.text_pooling_heads is not None:
        with b.scope("add_embedding"):
            aug = text_time_embedding(b, text, cfg.time_embed_dim, cfg.text_pooling_heads)
        emb = b.add("aug_emb_add", emb, aug)
    if cfg.encoder_hid_dim is not None:
        text = b.linear("encoder_hid_proj", text, cfg.cross_attention_dim)
    blocks = _Blocks(b, cfg, emb, text)
    x = b.conv("conv_in", sample, cfg.block_out_channels[0], 3)
    x = levels.levels(b, blocks, x, cfg.down_block_types, cfg.up_block_types)
    return levels.output_head(b, x, groups=cfg.norm_num_groups, act=cfg.act, out_channels=cfg.out_channels)


@dataclass(frozen=True)
class _Blocks:
    """Emits the simple-cross-attention blocks; holds what all of them share."""

    b: GraphBuilder
    cfg: AddedKVUNetConfig
    emb: Tensor
    text: Tensor

    def resnet(self, path: tuple[str, int], x: Tensor, out_ch: int, resample: str | None = None) -> Tensor:
        """One `resnet_block2d` with this UNet's settings, under the module path `path`."""
        with self.b.scope(*path):
            return resnet_block2d(
                self.b, x, out_ch, self.emb, groups=self.cfg.norm_num_groups, act=self.cfg.act,
                scale_shift=self.cfg.scale_shift, resample=resample,
            )

    def resnets(self, out_ch: int) -> levels.Layer:
        """`resnets.<j>` with `out_ch` output channels."""
        return lambda j, x: self.resnet(("resnets", j), x, out_ch)

    def resampler(self, scope: str, out_ch: int, resample: str) -> Callable[[Tensor], Tensor]:
        """`downsamplers.0` / `upsamplers.0`: a resnet that resamples both branches."""
        return lambda x: self.resnet((scope, 0), x, out_ch, resample)

    def attention(self, j: int, x: Tensor) -> Tensor:
        c = x.shape[1]
        with self.b.scope("attentions"):
            return added_kv_attention(
                self.b, str(j), x, self.text, heads=c // self.cfg.attention_head_dim, inner=c,
                groups=self.cfg.norm_num_groups, text_norm=self.cfg.cross_attention_norm,
            )

    def down(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        out_ch = self.cfg.block_out_channels[i]
        last = i == len(self.cfg.block_out_channels) - 1
        return levels.down_block(
            x, skips, self.cfg.layers_per_block, self.resnets(out_ch),
            self.attention if kind == "SimpleCrossAttnDownBlock2D" else None,
            None if last else self.resampler("downsamplers", out_ch, "down"),
        )  # fmt: skip

    def mid(self, x: Tensor) -> Tensor:
        return levels.mid_block(x, self.resnets(x.shape[1]), self.attention)

    def up(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        out_ch = self.cfg.block_out_channels[len(self.cfg.block_out_channels) - 1 - i]
        last = i == len(self.cfg.up_block_types) - 1
        return levels.up_block(
            self.b, x, skips, self.cfg.layers_per_block, self.resnets(out_ch),
            self.attention if kind == "SimpleCrossAttnUpBlock2D" else None,
            None if last else self.resampler("upsamplers", out_ch, "up"),
        )  # fmt: skip
