"""Imagen's Efficient U-Net (Saharia et al. 2022, arXiv:2205.11487, Appendix B.1, Figs. A.27-A.30,
Appendix F.2/F.3), the super-resolution denoiser of the Imagen cascade.

No public implementation of the paper's model exists, so this follows the paper's text and
figures; every choice the paper leaves open is listed here. Op names follow the paper's
block names (`dblocks.<i>`, `ublocks.<i>`, `resnets.<j>`), level i = 0 being the widest.

From the paper:
- Blocks (F.2, F.3): four levels of (channels, ResNetBlocks) = (128, 2), (256, 4), (512, 8),
  (1024, 8), every level with stride 2 and 3x3 kernels. 64->256 (F.2): the 1024-channel level
  has self-attention with text cross-attention, 8 heads. 256->1024 (F.3): "the same
  configuration ... except we do not use self-attention layers but rather have
  cross-attention layers (to the text embeddings)". Read literally that is 573M parameters,
  not Sec. 4.1's 400M; `imagen.py` therefore builds the 256->1024 model by default with 4
  instead of 8 ResNetBlocks at its 1024-channel level (397M) and keeps the literal reading as
  `sr1024_variant="appendix_f3"` (see its docstring for why that knob).
- ResNetBlock (Fig. A.27): GroupNorm, swish, 3x3 conv, GroupNorm, swish, 3x3 conv, plus a 1x1
  conv on the skip path (drawn unconditionally, so present even when channels do not change).
- DBlock (Fig. A.28): a 3x3 conv with the block's stride FIRST (B.1: "we reverse this order":
  downsample before the convolutions), the conditional embeddings, `numResNetBlocksPerBlock`
  ResNetBlocks, then the optional attention (`attention_heads=8, hidden_size=2 x channels,
  output_size=channels`) over the "full contextual text embeddings".
- UBlock (Fig. A.29): previous UBlock's output concatenated with the DBlock's skip, the
  conditional embeddings, the ResNetBlocks, the optional attention, then a 3x3 conv with the
  block's stride LAST (upsampling after the convolutions).
- Skip connections scaled by 1/sqrt(2) (B.1, "similar to [66, 59]").
- Text cross-attention with self-attention is the text tokens concatenated to the keys and
  values of the self-attention layer; without self-attention (256->1024) it is an explicit
  cross-attention layer (D.3.1). LayerNorm on the text embeddings in attention and pooling
  layers (Sec. 2.5). Conditioning: timestep + attention-pooled text embedding (F.2
  `feature_pooling_type: attention`), scale-shift norm (`use_scale_shift_norm: True`), and the
  augmentation level of the noise-conditioning augmentation (Sec. 2.4).

Assumptions (the paper is silent or ambiguous):
1. One attention layer per DBlock/UBlock, after its ResNetBlocks (as drawn in Figs. A.28/A.29),
   so two per model (DBlock 3 and UBlock 3).
2. The UBlock's strided conv is a 3x3 conv at the block's own resolution followed by a 2x
   nearest upsample: the same weights and MACs as a stride-2 transposed 3x3 conv.
3. The deepest UBlock's "previous" input is the deepest DBlock's output, so it concatenates
   that output with itself as the skip (there is no middle block in the paper's description).
4. The 1/sqrt(2) scaling applies to each ResNetBlock's residual sum, as `skip_rescale` in
   NCSN++ [66] (the reason given is the large number of residual blocks per level).
5. An input 3x3 conv (6 -> 128 channels: the noisy image and the upsampled low-resolution
   image, concatenated) at full resolution, and an output GroupNorm, swish and 3x3 conv to 3
   channels, as in the U-Nets the Efficient U-Net is adapted from [16, 58].
6. Conditioning embeddings of width `emb_dim`: sinusoidal timestep and augmentation-level
   features (128 wide) each through a two-layer MLP, plus the attention-pooled text embedding
   (diffusers' `TextTimeEmbedding`, the attention pooling DeepFloyd IF uses, on the raw
   4096-wide T5 states), summed ("CombineEmbs") and fed to every ResNetBlock's scale-shift.
7. The text states are projected once from 4096 to `cond_dim` (`encoder_hid_proj`) and each
   attention layer projects them to its keys/values (`add_k_proj`, `add_v_proj`), as in
   imagen-pytorch's `cond_dim` and diffusers' `text_proj`.
8. GroupNorm with 32 groups everywhere; swish = SiLU.
`emb_dim` and `cond_dim` are shared with the base model (see `imagen.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from .unet2d_added_kv import (
    added_kv_attention,
    check_inputs,
    resnet_block2d,
    text_time_embedding,
    timestep_embedding,
)


@dataclass(frozen=True)
class EfficientBlock:
    """One resolution level: a DBlock and its mirrored UBlock."""

    channels: int
    num_res_blocks: int
    self_attention: bool = False
    text_cross_attention: bool = False
    heads: int = 8


@dataclass(frozen=True)
class EfficientUNetConfig:
    """An Efficient U-Net: its levels and conditioning widths (see the module docstring)."""

    blocks: tuple[EfficientBlock, ...]
    in_channels: int = 6  # noisy high-resolution image + upsampled low-resolution image
    out_channels: int = 3
    text_dim: int = 4096  # T5-XXL
    cond_dim: int = 512
    emb_dim: int = 1024
    pooling_heads: int = 64
    groups: int = 32
    act: str = "silu"
    skip_scale: float = 1 / math.sqrt(2)
    sinusoid_dim: int = 128

    @property
    def downscale(self) -> int:
        """Total downsampling (every level has stride 2): the image side must be a multiple of it."""
        return 2 ** len(self.blocks)


def efficient_unet(b: GraphBuilder, cfg: EfficientUNetConfig, sample: Tensor, text: Tensor) -> Tensor:
    """One Efficient U-Net forward on `sample` (N, 6, H, W) and T5 states (N, L, 4096)."""
    check_inputs(
        "Efficient U-Net", sample, text, in_channels=cfg.in_channels, text_dim=cfg.text_dim, downscale=cfg.downscale
    )
    n = sample.shape[0]
    emb = timestep_embedding(b, ("time_proj", "time_embedding"), n, cfg.sinusoid_dim, cfg.emb_dim, cfg.act)
    aug = timestep_embedding(b, ("aug_level_proj", "aug_level_embedding"), n, cfg.sinusoid_dim, cfg.emb_dim, cfg.act)
    with b.scope("add_embedding"):
        pooled = text_time_embedding(b, text, cfg.emb_dim, cfg.pooling_heads)
    emb = b.add("combine_embs", emb, aug, pooled)
    text = b.linear("encoder_hid_proj", text, cfg.cond_dim)
    level = _Level(b, cfg, emb, text)

    x = b.conv("conv_in", sample, cfg.blocks[0].channels, 3)
    skips = []
    for i, block in enumerate(cfg.blocks):
        with b.scope("dblocks", i):
            x = b.conv("conv", x, block.channels, 3, stride=2)
            x = level.body(block, x)
        skips.append(x)
    for i in reversed(range(len(cfg.blocks))):
        block = cfg.blocks[i]
        with b.scope("ublocks", i):
            x = b.concat("skip_concat", [x, skips.pop()], dim=1)
            x = level.body(block, x)
            x = b.conv("conv", x, block.channels, 3)
            nn, c, hh, ww = x.shape
            x = b.resample("upsample", x, (nn, c, 2 * hh, 2 * ww), mode="nearest")
    x = b.group_norm("conv_norm_out", x, cfg.groups)
    x = b.activation("conv_act", x, cfg.act)
    return b.conv("conv_out", x, cfg.out_channels, 3)


@dataclass(frozen=True)
class _Level:
    b: GraphBuilder
    cfg: EfficientUNetConfig
    emb: Tensor
    text: Tensor

    def body(self, block: EfficientBlock, x: Tensor) -> Tensor:
        """The ResNetBlocks of a DBlock/UBlock, then its optional attention layer."""
        b, cfg = self.b, self.cfg
        for j in range(block.num_res_blocks):
            with b.scope("resnets", j):
                x = resnet_block2d(
                    b, x, block.channels, self.emb, groups=cfg.groups, act=cfg.act, scale_shift=True,
                    shortcut=True, output_scale=cfg.skip_scale, diffusers=False,
                )
        if block.self_attention or block.text_cross_attention:
            x = added_kv_attention(
                b, "attention", x, self.text, heads=block.heads, inner=2 * block.channels, groups=cfg.groups,
                text_norm="layer_norm", only_cross=not block.self_attention,
            )
        return x
