"""Chameleon's image tokenizer: the Make-A-Scene VQGAN (taming-transformers layout).

Chameleon (Chameleon Team 2024, arXiv:2405.09818, Section 2.1) tokenizes a 512x512 image into
1,024 discrete tokens from an 8,192-entry codebook with the tokenizer of Gafni et al. 2022
(Make-A-Scene), a taming-transformers VQGAN (Esser et al. 2021). Published configuration: the
`vq_config` of `facebook/chameleon-7b` (transformers `ChameleonVQVAEConfig`): base 128 channels,
multipliers (1, 1, 2, 2, 4) (16x downsampling: 512 px -> 32x32 tokens), 2 residual blocks per
level, latent 256 channels, 256-d codes, no attention at any level (`attn_resolutions` null) and
one "vanilla" single-head attention block in the middle.

- `vq_encoder` (image -> token ids): transformers `ChameleonVQVAE.encode`, op names are its module
  paths (`encoder.down.1.block.0.conv1`, `encoder.mid.attn_1.q`, `quant_conv`, `quantize.embedding`).
  The quantizer permutes to NHWC (a copy), computes the squared distances to every code
  (`|z|^2 + |e|^2 - 2 z e^T`: the product is a GEMM with the codebook, `quantize.distances`; the
  norms are vector work), takes the argmin, looks the codes up (the embedding op, which carries the
  codebook's parameters) and permutes back, as its forward does (the commitment loss is omitted:
  two means over the latent, training-only).
- `vq_decoder` (token ids -> image): the decoder half, which transformers does not ship ("image
  generation module is not released"); it is the reference inference code's
  (facebookresearch/chameleon `chameleon/inference/vqgan.py`, `VQModel.decode` after
  `quantize.get_codebook_entry`): codebook lookup and NCHW permute, `post_quant_conv`, then the
  taming `Decoder`: conv_in, mid (resnet, attention, resnet), per level deepest first
  `num_res_blocks + 1` resnets and a nearest 2x upsample + 3x3 conv (all but the last level),
  GroupNorm, SiLU, conv_out. Op names are that module's paths (`decoder.up.4.block.2.conv2`).

Shared layers: residual blocks are `_blocks.resnet_block` (GroupNorm(32)-SiLU-conv twice; its 1x1
shortcut op is named `conv_shortcut`, taming's `nin_shortcut`, same shape). The attention block's
q/k/v/proj_out are 1x1 convolutions (taming `AttnBlock`), its single-head attention over the
H*W positions is one attention op (the reshapes around its two bmm are views).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader

GROUPS = 32  # taming `Normalize`: GroupNorm(32 groups, eps 1e-6)


@dataclass(frozen=True)
class VQConfig:
    """The structural fields of a transformers `ChameleonVQVAEConfig` (+ taming's `out_ch`)."""

    in_channels: int
    out_channels: int
    base_channels: int
    channel_multiplier: tuple[int, ...]
    num_res_blocks: int
    latent_channels: int
    embed_dim: int
    num_embeddings: int
    double_latent: bool
    attn_resolutions: tuple[int, ...]
    attention: bool
    resolution: int

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "Chameleon VQ-VAE") -> VQConfig:
        """Read a `vq_config` dict (absent keys take the transformers defaults)."""
        r = ConfigReader(config, what)
        mult = r.get("channel_multiplier", (1, 1, 2, 2, 4))
        if not isinstance(mult, (list, tuple)) or not mult:
            raise r.error("channel_multiplier", mult, "a non-empty list of integers")
        attn_type = r.only("attn_type", ("vanilla", "none"), "vanilla")
        attn_res = r.get("attn_resolutions", ())
        if not isinstance(attn_res, (list, tuple)):
            raise r.error("attn_resolutions", attn_res, "null or a list of resolutions")
        return cls(
            in_channels=r.positive("in_channels", 3),
            out_channels=r.positive("out_channels", 3),
            base_channels=r.positive("base_channels", 128),
            channel_multiplier=r.per_block("channel_multiplier", len(mult), 1),
            num_res_blocks=r.positive("num_res_blocks", 2),
            latent_channels=r.positive("latent_channels", 256),
            embed_dim=r.positive("embed_dim", 256),
            num_embeddings=r.positive("num_embeddings", 8192),
            double_latent=r.flag("double_latent", False),
            attn_resolutions=r.per_block("attn_resolutions", len(attn_res), 0),
            attention=attn_type == "vanilla",
            resolution=r.positive("resolution", 512),
        )

    @property
    def downscale(self) -> int:
        """Pixels per token along each axis (16 for Chameleon)."""
        return 2 ** (len(self.channel_multiplier) - 1)

    def channels(self, level: int) -> int:
        return self.base_channels * self.channel_multiplier[level]

    def token_side(self, resolution: int) -> int:
        if resolution % self.downscale:
            raise InputError(f"resolution {resolution} is not divisible by the VQGAN's downscale {self.downscale}")
        return resolution // self.downscale


def vq_encoder(b: GraphBuilder, cfg: VQConfig, image: Tensor) -> Tensor:
    """`ChameleonVQVAE.encode`: image (N, 3, H, W) -> token ids (N, H/16 * W/16)."""
    n, _, res, _ = image.shape
    levels = len(cfg.channel_multiplier)
    with b.scope("encoder"):
        x = b.conv("conv_in", image, cfg.base_channels, 3)
        for i in range(levels):
            with b.scope("down", i):
                for j in range(cfg.num_res_blocks):
                    with b.scope("block", j):
                        x = _blocks.resnet_block(b, x, cfg.channels(i), groups=GROUPS, diffusers=False)
                    if cfg.attention and res in cfg.attn_resolutions:
                        x = _attn_block(b, f"attn.{j}", x)
                if i < levels - 1:
                    x = _downsample(b, x)
                    res //= 2
        x = _mid(b, cfg, x)
        x = b.group_norm("norm_out", x, GROUPS)
        x = b.activation("act_out", x, "silu")
        x = b.conv("conv_out", x, (2 if cfg.double_latent else 1) * cfg.latent_channels, 3)
    x = b.conv("quant_conv", x, cfg.embed_dim, 1, padding=0)
    return _quantize(b, cfg, x)


def vq_decoder(b: GraphBuilder, cfg: VQConfig, ids: Tensor) -> Tensor:
    """`VQModel.decode(get_codebook_entry(ids))`: ids (N, h, w) -> image (N, 3, 16h, 16w)."""
    n, h, w = ids.shape
    levels = len(cfg.channel_multiplier)
    with b.scope("quantize"):
        z = b.embedding("embedding", _blocks.view(ids, (n, h * w)), cfg.num_embeddings, cfg.embed_dim)
        z = _blocks.to_nchw(b, "to_nchw", z, (h, w))
    x = b.conv("post_quant_conv", z, cfg.latent_channels, 1, padding=0)
    res = h
    with b.scope("decoder"):
        x = b.conv("conv_in", x, cfg.channels(-1), 3)
        x = _mid(b, cfg, x)
        for i in reversed(range(levels)):
            with b.scope("up", i):
                for j in range(cfg.num_res_blocks + 1):
                    with b.scope("block", j):
                        x = _blocks.resnet_block(b, x, cfg.channels(i), groups=GROUPS, diffusers=False)
                    if cfg.attention and res in cfg.attn_resolutions:
                        x = _attn_block(b, f"attn.{j}", x)
                if i > 0:
                    x = _upsample(b, x)
                    res *= 2
        x = b.group_norm("norm_out", x, GROUPS)
        x = b.activation("act_out", x, "silu")
        return b.conv("conv_out", x, cfg.out_channels, 3)


def _mid(b: GraphBuilder, cfg: VQConfig, x: Tensor) -> Tensor:
    ch = x.shape[1]
    with b.scope("mid"):
        with b.scope("block_1"):
            x = _blocks.resnet_block(b, x, ch, groups=GROUPS, diffusers=False)
        if cfg.attention:
            x = _attn_block(b, "attn_1", x)
        with b.scope("block_2"):
            return _blocks.resnet_block(b, x, ch, groups=GROUPS, diffusers=False)


def _attn_block(b: GraphBuilder, name: str, x: Tensor) -> Tensor:
    """taming `AttnBlock`: GroupNorm, 1x1-conv q/k/v, single-head attention over H*W, 1x1 proj_out,
    residual. The attention op carries the module path, the convs sit under it."""
    n, c, h, w = x.shape
    tokens = (n, h * w, c)
    with b.scope(name):
        t = b.group_norm("norm", x, GROUPS)
        q, k, v = (b.conv(p, t, c, 1, padding=0) for p in ("q", "k", "v"))
    o = b.attention(name, _blocks.view(q, tokens), _blocks.view(k, tokens), _blocks.view(v, tokens), 1)
    with b.scope(name):
        o = b.conv("proj_out", _blocks.view(o, x.shape), c, 1, padding=0)
        return b.add("residual_add", x, o)


def _downsample(b: GraphBuilder, x: Tensor) -> Tensor:
    """`ChameleonVQVAEEncoderConvDownsample`: pad right/bottom by one (a copy), 3x3 conv, stride 2."""
    n, c, h, w = x.shape
    with b.scope("downsample"):
        x = b.move("pad", x, (n, c, h + 1, w + 1), what="pad")
        return b.conv("conv", x, c, 3, stride=2, padding=0)


def _upsample(b: GraphBuilder, x: Tensor) -> Tensor:
    """taming `Upsample(with_conv=True)`: nearest 2x, 3x3 conv."""
    n, c, h, w = x.shape
    with b.scope("upsample"):
        x = b.resample("interpolate", x, (n, c, 2 * h, 2 * w), mode="nearest")
        return b.conv("conv", x, c, 3)


def _quantize(b: GraphBuilder, cfg: VQConfig, z: Tensor) -> Tensor:
    """`ChameleonVQVAEVectorQuantizer.forward`: nearest code of every latent position."""
    n, d, h, w = z.shape
    with b.scope("quantize"):
        flat = _blocks.to_tokens(b, "to_nhwc", z)  # permute(0, 2, 3, 1).contiguous()
        sq = b.elementwise("latent_sq_norm", [flat], "square_sum")
        codes = b.input((1, d, cfg.num_embeddings))
        dot = b.matmul("distances", flat, codes)  # einsum("bd,dn->bn", z, e^T)
        dist = b.elementwise("distances_combine", [dot, _blocks.view(sq, (n, h * w, 1))], "axpy")
        ids = b.resample("argmin", dist, (n, h * w), mode="argmin")
        zq = b.embedding("embedding", ids, cfg.num_embeddings, cfg.embed_dim)
        zq = b.elementwise("straight_through", [zq, flat], "add")  # z + (z_q - z).detach()
        _blocks.to_nchw(b, "to_nchw", zq, (h, w))  # permute(0, 3, 1, 2).contiguous()
    return ids


def image_tokens_side(tokens: int) -> int:
    """The side of the square token grid of `tokens` image tokens (an InputError if not square)."""
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise InputError(f"option 'image_tokens' must be a square number (a side x side grid), got {tokens}")
    return side
