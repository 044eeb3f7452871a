"""diffusers `AutoencoderKL` (the Stable Diffusion VAE) as operator graphs.

`vae_decoder` is what a text-to-image pipeline runs once per image (post_quant_conv and
the decoder); `vae_encoder` is the image -> latent half (encoder, quant_conv and the
posterior's mean). Op names are the AutoencoderKL module paths (`decoder.up_blocks.0.
resnets.1.conv2`, `decoder.mid_block.attentions.0.to_q`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader

# The Stable Diffusion `AutoencoderKL` vae/config.json (runwayml/stable-diffusion-v1-5). SD 2.x,
# SDXL (retrained weights), ModelScope T2V, DiT, PixArt-alpha and Latte use this architecture.
SD_VAE_CONFIG = MappingProxyType(
    {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.6.0",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 512,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
)


@dataclass(frozen=True)
class VAEConfig:
    """The structural fields of a diffusers `AutoencoderKL` config."""

    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    latent_channels: int
    norm_num_groups: int
    act: str
    use_quant_conv: bool
    use_post_quant_conv: bool
    mid_block_add_attention: bool
    scaling_factor: float
    shift_factor: float | None

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "AutoencoderKL") -> VAEConfig:
        """Read a diffusers config dict (absent keys take the diffusers defaults)."""
        r = ConfigReader(config, what)
        down = r.names("down_block_types", ("DownEncoderBlock2D",))
        up = r.names("up_block_types", ("UpDecoderBlock2D",))
        for key, types, supported in (("down_block_types", down, "DownEncoderBlock2D"), ("up_block_types", up, "UpDecoderBlock2D")):
            if any(t != supported for t in types):
                raise InputError(f"{what}: {key} {list(types)} not supported (only {supported})")
        channels = r.per_block("block_out_channels", len(down), (64,))
        if len(up) != len(down):
            raise InputError(f"{what}: {len(down)} down_block_types but {len(up)} up_block_types")
        shift = r.get("shift_factor", None)
        return cls(
            in_channels=r.positive("in_channels", 3),
            out_channels=r.positive("out_channels", 3),
            block_out_channels=channels,
            layers_per_block=r.positive("layers_per_block", 1),
            latent_channels=r.positive("latent_channels", 4),
            norm_num_groups=r.positive("norm_num_groups", 32),
            act=_blocks.activation_fn(r.get("act_fn", "silu"), what),
            use_quant_conv=r.flag("use_quant_conv", True),
            use_post_quant_conv=r.flag("use_post_quant_conv", True),
            mid_block_add_attention=r.flag("mid_block_add_attention", True),
            scaling_factor=r.number("scaling_factor", 0.18215),
            shift_factor=None if shift is None else r.number("shift_factor", 0.0),
        )

    @property
    def downscale(self) -> int:
        """Pixels per latent along each axis (8 for the SD VAE)."""
        return 2 ** (len(self.block_out_channels) - 1)


def vae_encoder(b: GraphBuilder, cfg: VAEConfig, image: Tensor) -> Tensor:
    """`AutoencoderKL.encode(x).latent_dist.mode()`: image (N, 3, H, W) -> latents (N, 4, H/8, W/8)."""
    with b.scope("encoder"):
        x = b.conv("conv_in", image, cfg.block_out_channels[0], 3)
        for i, ch in enumerate(cfg.block_out_channels):
            with b.scope("down_blocks", i):
                for j in range(cfg.layers_per_block):
                    x = _resnet(b, cfg, j, x, ch)
                if i < len(cfg.block_out_channels) - 1:
                    x = _blocks.downsample(b, x, padding=0)
        x = _mid_block(b, cfg, x)
        x = b.group_norm("conv_norm_out", x, cfg.norm_num_groups)
        x = b.activation("conv_act", x, cfg.act)
        x = b.conv("conv_out", x, 2 * cfg.latent_channels, 3)
    if cfg.use_quant_conv:
        x = b.conv("quant_conv", x, 2 * cfg.latent_channels, 1, padding=0)
    # DiagonalGaussianDistribution(moments): mean and log-variance are views of the moments;
    # the clamp/exp work on the log-variance is real, `.mode()` is the mean view.
    n, _, h, w = x.shape
    half = (n, cfg.latent_channels, h, w)
    b.elementwise("latent_dist", [_blocks.view(x, half)], "gaussian_posterior")
    return _blocks.view(x, half)


def vae_decoder(b: GraphBuilder, cfg: VAEConfig, latents: Tensor) -> Tensor:
    """`AutoencoderKL.decode(z)`: latents (N, 4, h, w) -> image (N, 3, 8h, 8w)."""
    x = latents
    if cfg.use_post_quant_conv:
        x = b.conv("post_quant_conv", x, cfg.latent_channels, 1, padding=0)
    channels = cfg.block_out_channels[::-1]
    with b.scope("decoder"):
        x = b.conv("conv_in", x, channels[0], 3)
        x = _mid_block(b, cfg, x)
        for i, ch in enumerate(channels):
            with b.scope("up_blocks", i):
                for j in range(cfg.layers_per_block + 1):
                    x = _resnet(b, cfg, j, x, ch)
                if i < len(channels) - 1:
                    x = _blocks.upsample(b, x)
        x = b.group_norm("conv_norm_out", x, cfg.norm_num_groups)
        x = b.activation("conv_act", x, cfg.act)
        return b.conv("conv_out", x, cfg.out_channels, 3)


def _resnet(b: GraphBuilder, cfg: VAEConfig, j: int, x: Tensor, out_ch: int) -> Tensor:
    with b.scope("resnets", j):
        return _blocks.resnet_block(b, x, out_ch, groups=cfg.norm_num_groups, act=cfg.act)


def _mid_block(b: GraphBuilder, cfg: VAEConfig, x: Tensor) -> Tensor:
    """`UNetMidBlock2D` without time embedding: resnet, single-head attention, resnet."""
    ch = x.shape[1]
    with b.scope("mid_block"):
        x = _resnet(b, cfg, 0, x, ch)
        if cfg.mid_block_add_attention:
            with b.scope("attentions"):
                x = _blocks.spatial_self_attention(b, "0", x, groups=cfg.norm_num_groups, heads=1)
        return _resnet(b, cfg, 1, x, ch)


def autoencoder_kl(b: GraphBuilder, cfg: VAEConfig, image: Tensor) -> Tensor:
    """`AutoencoderKL.forward` (posterior mode): encode then decode; every parameter once."""
    return vae_decoder(b, cfg, vae_encoder(b, cfg, image))
