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

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from . import temporal as _temporal
from . import unet_levels as levels
from .config import ConfigReader
from .unet2d import transformer_2d

DOWN_BLOCKS = ("CrossAttnDownBlock3D", "DownBlock3D")
UP_BLOCKS = ("CrossAttnUpBlock3D", "UpBlock3D")
TRANSFORMER_IN_HEADS = 8  # hard-coded in UNet3DConditionModel.__init__


@dataclass(frozen=True)
class UNet3DConfig(levels.UNetLayout):
    """The structural fields of a diffusers `UNet3DConditionModel` config."""

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
        down, up = levels.block_types(
            r, (DOWN_BLOCKS, UP_BLOCKS), (("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",), ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3)
        )
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
    x = levels.levels(b, blocks, x, cfg.down_block_types, cfg.up_block_types)
    x = levels.output_head(b, x, groups=cfg.norm_num_groups, act="silu", out_channels=cfg.out_channels)
    return _blocks.view(x, (n, cfg.out_channels, frames, h, w))


@dataclass(frozen=True)
class _Blocks:
    """Emits the UNet3D blocks; holds what all of them share."""

    b: GraphBuilder
    cfg: UNet3DConfig
    context: Tensor  # (B*F, L, cross_dim)
    temb: Tensor  # (B*F, 4*c0)
    frames: int

    def resnet_and_temporal_conv(self, out_ch: int, scale: float = 1.0) -> levels.Layer:
        """`resnets.<j>` with `out_ch` output channels, then `temp_convs.<j>`."""

        def layer(j: int, x: Tensor) -> Tensor:
            b, groups = self.b, self.cfg.norm_num_groups
            with b.scope("resnets", j):
                x = _blocks.resnet_block(
                    b, x, out_ch, temb=self.temb, groups=groups, act=self.cfg.act, output_scale_factor=scale
                )
            with b.scope("temp_convs", j):
                return _temporal.temporal_conv_layer(b, x, self.frames, groups=groups)

        return layer

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
        last = i == len(self.cfg.block_out_channels) - 1
        return levels.down_block(
            x, skips, self.cfg.layers_per_block, self.resnet_and_temporal_conv(self.cfg.block_out_channels[i]),
            self.attentions if kind == "CrossAttnDownBlock3D" else None,
            None if last else lambda x: _blocks.downsample(self.b, x, self.cfg.downsample_padding),
        )  # fmt: skip

    def mid(self, x: Tensor) -> Tensor:
        """UNetMidBlock3DCrossAttn: resnet, temp_conv, attn, temp_attn, resnet, temp_conv."""
        return levels.mid_block(x, self.resnet_and_temporal_conv(x.shape[1], self.cfg.mid_block_scale_factor), self.attentions)

    def up(self, i: int, kind: str, x: Tensor, skips: list[Tensor]) -> Tensor:
        """CrossAttnUpBlock3D / UpBlock3D: (concat skip, resnet, temp_conv [, attn, temp_attn]) x (layers+1), upsample."""
        out_ch = self.cfg.block_out_channels[len(self.cfg.block_out_channels) - 1 - i]
        last = i == len(self.cfg.up_block_types) - 1
        return levels.up_block(
            self.b, x, skips, self.cfg.layers_per_block, self.resnet_and_temporal_conv(out_ch),
            self.attentions if kind == "CrossAttnUpBlock3D" else None,
            None if last else lambda x: _blocks.upsample(self.b, x, skips[-1].shape[2:]),
        )  # fmt: skip
