"""Image and video tokenizers / detokenizers of the token-based generators.

- `vqgan_decoder`: the fully convolutional VQGAN decoder of Muse (Chang et al. 2023, Section 2.2
  and Appendix A.2): the taming-transformers VQGAN (Esser et al. 2021) without its non-local
  attention blocks, laid out as MaskGIT's tokenizer (Chang et al. 2022): codebook lookup,
  conv_in, `res_blocks` residual blocks at the lowest resolution, then per level (deepest
  first) `res_blocks` residual blocks and a nearest 2x upsample + 3x3 conv, GroupNorm, SiLU,
  conv_out. Residual blocks are `_blocks.resnet_block` (GroupNorm-SiLU-conv twice, 1x1
  shortcut on channel changes).
- `vit_vqgan_decoder`: the ViT-VQGAN decoder of Parti (Yu et al. 2022, Section 2.1; ViT-VQGAN:
  Yu et al. 2021, Section 3): factorized codes (an l2-normalized 32-d codebook) projected to the
  model width, learned position embeddings, a transformer stack, then the two-layer
  feed-forward output head with tanh in the middle that ViT-VQGAN puts after its transformer
  blocks, mapping each token to an 8x8x3 pixel patch (no output activation).
- `cvivit_encoder` / `cvivit_decoder`: Phenaki's C-ViViT (Villegas et al. 2022, Section 2.1,
  Appendix A Table 6 and B.1.1): the first frame is cut into 8x8 patches and the other frames
  into 2x8x8 spatio-temporal patches, each linearly embedded; a spatial transformer attends over
  the 16x16 tokens of each token-frame, a causal temporal transformer over the token-frames at
  each spatial position; the code is projected to 32-d (factorized, l2-normalized codes from
  ViT-VQGAN) and quantized against an 8192-entry codebook. The decoder is the encoder upside
  down: code embedding, temporal then spatial transformer, and a single linear projection per
  patch kind back to pixels.

Assumptions beyond the papers (each model module repeats the ones it uses): learned absolute
position embeddings (ViT, ViViT) over the spatial tokens (C-ViViT has no temporal position
table: its causal temporal attention accepts any number of frames); GELU MLPs in the
transformer tokenizers (ViT); codebook lookups are embedding ops; the encoder's nearest-code
search is a product with the codebook (`codebook_distances`, whose weights are the codebook)
followed by an argmin reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .token_transformer import StackConfig, stack


# -- convolutional VQGAN ------------------------------------------------------------------------
@dataclass(frozen=True)
class VQGANConfig:
    """A MaskGIT-layout VQGAN decoder: base `filters`, per-level multipliers, blocks per level."""

    filters: int
    channel_mult: tuple[int, ...]
    res_blocks: int
    embedding_dim: int = 256
    codebook: int = 8192
    groups: int = 32
    out_channels: int = 3

    @property
    def downscale(self) -> int:
        """Pixels per token along each axis."""
        return 2 ** (len(self.channel_mult) - 1)


def vqgan_decoder(b: GraphBuilder, cfg: VQGANConfig, ids: Tensor) -> Tensor:
    """Token ids (N, h, w) -> image (N, 3, h * downscale, w * downscale)."""
    n, h, w = ids.shape
    with b.scope("quantize"):
        z = b.embedding("embedding", _blocks.view(ids, (n, h * w)), cfg.codebook, cfg.embedding_dim)
        z = _blocks.to_nchw(b, "to_nchw", z, (h, w))
    with b.scope("decoder"):
        ch = cfg.filters * cfg.channel_mult[-1]
        x = b.conv("conv_in", z, ch, 3)
        with b.scope("mid"):
            x = _res_blocks(b, cfg, x, ch)
        for i in reversed(range(len(cfg.channel_mult))):
            ch = cfg.filters * cfg.channel_mult[i]
            with b.scope("up", i):
                x = _res_blocks(b, cfg, x, ch)
                if i > 0:
                    x = _blocks.upsample(b, x)
        x = b.group_norm("norm_out", x, cfg.groups)
        x = b.activation("act_out", x, "silu")
        return b.conv("conv_out", x, cfg.out_channels, 3)


def _res_blocks(b: GraphBuilder, cfg: VQGANConfig, x: Tensor, ch: int) -> Tensor:
    for j in range(cfg.res_blocks):
        with b.scope("resnets", j):
            x = _blocks.resnet_block(b, x, ch, groups=cfg.groups, diffusers=False)
    return x


# -- ViT-VQGAN ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ViTVQGANConfig:
    """A ViT-VQGAN decoder: its transformer stack, patch size and factorized codebook."""

    stack: StackConfig
    patch: int = 8
    code_dim: int = 32
    codebook: int = 8192
    channels: int = 3


def vit_vqgan_decoder(b: GraphBuilder, cfg: ViTVQGANConfig, ids: Tensor) -> Tensor:
    """Token ids (N, h, w) -> image (N, 3, h * patch, w * patch)."""
    n, h, w = ids.shape
    tokens, d = h * w, cfg.stack.d_model
    with b.scope("quantize"):
        z = b.embedding("embedding", _blocks.view(ids, (n, tokens)), cfg.codebook, cfg.code_dim)
    with b.scope("decoder"):
        x = b.linear("proj_in", z, d)
        x = b.add("add_position", x, b.embedding("position_embedding", b.input((1, tokens)), tokens, d))
        x = stack(b, cfg.stack, x)
        with b.scope("head"):
            x = b.linear("fc1", x, d)
            x = b.activation("act", x, "tanh")
            x = b.linear("fc2", x, cfg.patch * cfg.patch * cfg.channels)
        return b.move("unpatchify", x, (n, cfg.channels, h * cfg.patch, w * cfg.patch), what="unpatchify")


# -- C-ViViT --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CViViTConfig:
    """C-ViViT sizes (Phenaki Table 6): width, heads, MLP, layers, patch sizes, codebook."""

    d_model: int = 512
    heads: int = 8
    mlp: int = 2048
    spatial_layers: int = 4
    temporal_layers: int = 4
    patch: int = 8
    temporal_patch: int = 2
    code_dim: int = 32
    codebook: int = 8192
    channels: int = 3

    @property
    def spatial(self) -> StackConfig:
        return StackConfig(self.spatial_layers, self.d_model, self.heads, self.mlp, axis="spatial")

    @property
    def temporal(self) -> StackConfig:
        return StackConfig(self.temporal_layers, self.d_model, self.heads, self.mlp, axis="temporal", causal=True)

    def token_grid(self, frames: int, resolution: int) -> tuple[int, int, int]:
        """(token-frames, rows, cols) of a clip: 1 + (frames - 1) / 2 token-frames of (res/8)^2."""
        if resolution % self.patch:
            raise InputError(f"resolution {resolution} is not divisible by the C-ViViT patch size {self.patch}")
        if (frames - 1) % self.temporal_patch:
            raise InputError(
                f"frames {frames} must be 1 + a multiple of {self.temporal_patch}: C-ViViT encodes the first "
                f"frame alone and the rest in {self.temporal_patch}-frame patches (e.g. 11, the paper's clips)"
            )
        side = resolution // self.patch
        return 1 + (frames - 1) // self.temporal_patch, side, side


def cvivit_encoder(b: GraphBuilder, cfg: CViViTConfig, video: Tensor) -> Tensor:
    """Video (N, 3, F, H, W) -> token ids (N, T, h, w) with T = 1 + (F - 1) / 2."""
    n, c, frames, height, _ = video.shape
    t, h, w = cfg.token_grid(frames, height)
    hw, d, p = h * w, cfg.d_model, cfg.patch
    with b.scope("encoder"):
        x = b.linear("first_frame_embed", b.move("patchify_first_frame", video, (n, hw, p * p * c), what="patchify"), d)
        if t > 1:
            rest = b.move("patchify_video", video, (n, (t - 1) * hw, cfg.temporal_patch * p * p * c), what="patchify")
            x = b.concat("concat_frames", [x, b.linear("video_embed", rest, d)], dim=1)
        x = _blocks.view(x, (n * t, hw, d))
        x = b.add("add_spatial_position", x, b.embedding("spatial_position_embedding", b.input((1, hw)), hw, d))
        with b.scope("spatial_transformer"):
            x = stack(b, cfg.spatial, x)
        x = b.move("to_temporal", x, (n * hw, t, d), what="frames_to_temporal")
        with b.scope("temporal_transformer"):
            x = stack(b, cfg.temporal, x)
        x = b.move("from_temporal", x, (n, t * hw, d), what="temporal_to_frames")
    with b.scope("quantize"):
        z = b.linear("proj", x, cfg.code_dim)
        z = b.elementwise("l2_normalize", [z], "l2_normalize")
        dist = b.linear("codebook_distances", z, cfg.codebook, bias=False)
        ids = b.resample("nearest_code", dist, (n, t * hw), mode="argmin")
    return _blocks.view(ids, (n, t, h, w))


def cvivit_decoder(b: GraphBuilder, cfg: CViViTConfig, ids: Tensor) -> Tensor:
    """Token ids (N, T, h, w) -> video (N, 3, 1 + 2 (T - 1), 8h, 8w)."""
    n, t, h, w = ids.shape
    hw, d, p, c, tp = h * w, cfg.d_model, cfg.patch, cfg.channels, cfg.temporal_patch
    with b.scope("quantize"):
        z = b.embedding("embedding", _blocks.view(ids, (n, t * hw)), cfg.codebook, cfg.code_dim)
    with b.scope("decoder"):
        x = b.linear("proj_in", z, d)
        x = b.move("to_temporal", x, (n * hw, t, d), what="frames_to_temporal")
        with b.scope("temporal_transformer"):
            x = stack(b, cfg.temporal, x)
        x = b.move("from_temporal", x, (n * t, hw, d), what="temporal_to_frames")
        x = b.add("add_spatial_position", x, b.embedding("spatial_position_embedding", b.input((1, hw)), hw, d))
        with b.scope("spatial_transformer"):
            x = stack(b, cfg.spatial, x)
        first = b.linear("first_frame_out", _blocks.view(x, (n, hw, d)), p * p * c)
        video = b.move("unpatchify_first_frame", first, (n, c, 1, h * p, w * p), what="unpatchify")
        if t > 1:
            rest = b.linear("video_out", _blocks.view(x, (n, (t - 1) * hw, d)), tp * p * p * c)
            rest = b.move("unpatchify_video", rest, (n, c, (t - 1) * tp, h * p, w * p), what="unpatchify")
            video = b.concat("concat_frames", [video, rest], dim=2)
        return video
