"""diffusers `UNet3DConditionModel` (ModelScope text-to-video) as an operator graph.

The network is the SD-style 2D UNet run on frames stacked into the batch (B*F, C, h, w),
with temporal layers interleaved: a `TransformerTemporalModel` after `conv_in`, a
`TemporalConvLayer` (Conv3d (3,1,1) x 4) after every resnet, and a `TransformerTemporalModel`
(temporal self-attention over the F frames at each pixel) after every spatial
`Transformer2DModel`. Spatial attention ops carry axis "spatial", temporal ones "temporal".

Op names are the diffusers module paths (`down_blocks.0.temp_attentions.1.transformer_blocks.0.attn1`).
The layout copies are ops (see `_temporal`): the input (B, C, F, h, w) -> frames copy, the
`repeat_interleave` of the time embedding and of the text states over frames, and the
copies inside the temporal layers. The output (B*F, C, h, w) -> (B, C, F, h, w) permute is a
free view (diffusers does not make it contiguous).

diffusers quirks reproduced on purpose: `attention_head_dim` is the head WIDTH of the block
attentions here (heads = channels // attention_head_dim, issue 2011: the value is passed as
"num_attention_heads" and then swapped again by the block constructors), while `transformer_in`
has 8 heads of `attention_head_dim` channels (inner width 512 != 320 for ModelScope); all
Transformer2DModels use linear projections (`get_down_block`'s default); `conv_act` is SiLU
whatever `act_fn` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from . import _blocks, _temporal
from ._config import ConfigReader
from ._unet2d import transformer_2d

DOWN_BLOCKS = ("CrossAttnDownBlock3D", "DownBlock3D")
UP_BLOCKS = ("CrossAttnUpBlock3D", "UpBlock3D")
TRANSFORMER_IN_HEADS = 8  # hard-coded in UNet3DConditionModel.__init__


@dataclass(frozen=True)
class UNet3DConfig:
    """The structural fields of a diffusers `UNet3DConditionModel` config."""

    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]
    layers_per_block: int
    head_dim: int  # the config's `attention_head_dim`
    cross_attention_dim: int
    norm_num_groups: int
    act: str
    downsample_padding: int
    mid_block_scale_factor: float

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "UNet3DConditionModel") -> UNet3DConfig:
        """Read a diffusers config dict (absent keys take the diffusers defaults)."""
        r = ConfigReader(config, what)
        r.only("num_attention_heads", (None,))  # diffusers raises NotImplementedError
        r.only("time_cond_proj_dim", (None,))
        down = r.names("down_block_types", ("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",))
        up = r.names("up_block_types", ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3)
        for kind, types, supported in (("down", down, DOWN_BLOCKS), ("up", up, UP_BLOCKS)):
            for t in types:
                if t not in supported:
                    raise InputError(f"{what}: {kind} block type {t!r} is not supported (supported: {', '.join(supported)})")
        if len(up) != len(down):
            raise InputError(f"{what}: {len(down)} down_block_types but {len(up)} up_block_types")
        if "norm_num_groups" in config and config["norm_num_groups"] is None:
            raise InputError(f"{what}: norm_num_groups null (no output norm) is not supported")
        cfg = cls(
            in_channels=r.positive("in_channels", 4),
            out_channels=r.positive("out_channels", 4),
            block_out_channels=r.per_block("block_out_channels", len(down), (320, 640, 1280, 1280)),
            down_block_types=down,
            up_block_types=up,
            # transformer_in takes the raw value, so diffusers itself only builds an int here
            layers_per_block=r.positive("layers_per_block", 2),
            head_dim=r.positive("attention_head_dim", 64),
            cross_attention_dim=r.positive("cross_attention_dim", 1024),
            norm_num_groups=r.positive("norm_num_groups", 32),
            act=_blocks.activation_fn(r.get("act_fn", "silu"), what),
            downsample_padding=r.only("downsample_padding", (0, 1), 1),
            mid_block_scale_factor=r.number("mid_block_scale_factor", 1.0),
        )
        for c in cfg.block_out_channels:
            if c % cfg.norm_num_groups or c % cfg.head_dim:
                raise InputError(
                    f"{what}: block_out_channels {c} must be divisible by norm_num_groups "
                    f"{cfg.norm_num_groups} and attention_head_dim {cfg.head_dim}"
                )
        return cfg

    @property
    def downscale(self) -> int:
        """Latent pixels per bottleneck pixel (8 with four blocks)."""
        return 2 ** (len(self.block_out_channels) - 1)


def unet3d_condition(b: GraphBuilder, cfg: UNet3DConfig, sample: Tensor, encoder_hidden_states: Tensor) -> Tensor:
    """Emit one UNet3D forward on `sample` (B, C, F, h, w) and text states (B, L, cross_dim).

    Returns the noise prediction (B, out_channels, F, h, w) (a view of the frames output).
    """
    n, c_in, frames, h, w = sample.shape
    if c_in != cfg.in_channels:
        raise InputError(f"UNet3D in_channels {cfg.in_channels} does not match the {c_in}-channel latents")
    if encoder_hidden_states.shape[-1] != cfg.cross_attention_dim:
        raise InputError(
            f"UNet3D cross_attention_dim {cfg.cross_attention_dim} does not match the text encoder's "
            f"hidden size {encoder_hidden_states.shape[-1]}"
        )
    c0 = cfg.block_out_channels[0]
    t = _blocks.sinusoidal_embedding(b, "time_proj", b.input((n,)), c0)
    with b.scope("time_embedding"):
        emb = _blocks.timestep_mlp(b, t, 4 * c0, act=cfg.act)
    # emb / encoder_hidden_states .repeat_interleave(frames, dim=0): real copies
    emb = b.move("time_embedding_repeat", emb, (n * frames, 4 * c0), what="repeat_interleave")
    context = b.move(
        "encoder_hidden_states_repeat", encoder_hidden_states,
        (n * frames, *encoder_hidden_states.shape[1:]), what="repeat_interleave",
    )  # fmt: skip
    x = _temporal.video_to_frames(b, "sample_to_frames", sample)
    x = b.conv("conv_in", x, c0, 3)
    with b.scope("transformer_in"):
        x = _temporal.transformer_temporal(
            b, x, frames, heads=TRANSFORMER_IN_HEADS, head_dim=cfg.head_dim, groups=cfg.norm_num_groups
        )
    blocks = _Blocks(b, cfg, context, emb, frames)
    skips = [x]
    for i, kind in enumerate(cfg.down_block_types):
        with b.scope("down_blocks", i):
            x = blocks.down(i, kind, x, skips)
    with b.scope("mid_block"):
        x = blocks.mid(x)
    for i, kind in enumerate(cfg.up_block_types):
        with b.scope("up_blocks", i):
            x = blocks.up(i, kind, x, skips)
    x = b.group_norm("conv_norm_out", x, cfg.norm_num_groups)
    x = b.activation("conv_act", x, "silu")
    x = b.conv("conv_out", x, cfg.out_channels, 3)
    return _blocks.view(x, (n, cfg.out_channels, frames, h, w))


@dataclass(frozen=True)
class _Blocks:
    """Emits the UNet3D blocks; holds what all of them share."""

    b: GraphBuilder
    cfg: UNet3DConfig
    context: Tensor  # (B*F, L, cross_dim)
    temb: Tensor  # (B*F, 4*c0)
    frames: int

    def resnet_and_temporal_conv(self, j: int, x: Tensor, out_ch: int, scale: float = 1.0) -> Tensor:
        b, groups = self.b, self.cfg.norm_num_groups
        with b.scope("resnets", j):
            x = _blocks.resnet_block(b, x, out_ch, temb=self.temb, groups=groups, act=self.cfg.act, output_scale_factor=scale)
        with b.scope("temp_convs", j):
            return _temporal.temporal_conv_layer(b, x, self.frames, groups=groups)

    def attentions(self, j: int, x: Tensor) -> Tensor:
        """Transformer2DModel (spatial self + cross attention), then TransformerTemporalModel."""
        b, ch = self.b, x.shape[1]
        heads, groups = ch // self.cfg.head_dim, self.cfg.norm_num_groups
        with b.scope("attentions", j):
            x = transformer_2d(b, x, self.context, heads=heads, layers=1, groups=groups, linear_projection=True)
        with b.scope("temp_attentions", j):
            return _temporal.transformer_temporal(b, x, self.frames, heads=heads, head_dim=self.cfg.head_dim, groups=groups)

    def down(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        """CrossAttnDownBlock3D / DownBlock3D: (resnet, temp_conv [, attn, temp_attn]) x layers, downsample."""
        out_ch = self.cfg.block_out_channels[i]
        for j in range(self.cfg.layers_per_block):
            x = self.resnet_and_temporal_conv(j, x, out_ch)
            if kind == "CrossAttnDownBlock3D":
                x = self.attentions(j, x)
            skips.append(x)
        if i < len(self.cfg.block_out_channels) - 1:
            x = _blocks.downsample(self.b, x, self.cfg.downsample_padding)
            skips.append(x)
        return x

    def mid(self, x: Tensor) -> Tensor:
        """UNetMidBlock3DCrossAttn: resnet, temp_conv, attn, temp_attn, resnet, temp_conv."""
        ch, scale = x.shape[1], self.cfg.mid_block_scale_factor
        x = self.resnet_and_temporal_conv(0, x, ch, scale)
        x = self.attentions(0, x)
        return self.resnet_and_temporal_conv(1, x, ch, scale)

    def up(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        """CrossAttnUpBlock3D / UpBlock3D: (concat skip, resnet, temp_conv [, attn, temp_attn]) x (layers+1), upsample."""
        out_ch = self.cfg.block_out_channels[len(self.cfg.block_out_channels) - 1 - i]
        for j in range(self.cfg.layers_per_block + 1):
            x = self.b.concat(f"skip_concat.{j}", [x, skips.pop()], dim=1)
            x = self.resnet_and_temporal_conv(j, x, out_ch)
            if kind == "CrossAttnUpBlock3D":
                x = self.attentions(j, x)
        if i < len(self.cfg.up_block_types) - 1:
            x = _blocks.upsample(self.b, x, skips[-1].shape[2:])
        return x
