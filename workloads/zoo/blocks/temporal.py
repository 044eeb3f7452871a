"""Temporal building blocks of video UNets, with the layout copies around them as ops.

Video UNets run their 2D layers on frames stacked into the batch, (B*F, C, H, W), and
their temporal layers on a layout where the frames are the sequence axis. Switching
between the two is a permute followed by a copy (`.contiguous()`, a `reshape` of a permuted
tensor, or a GroupNorm's internal `.contiguous()`), which real kernels pay as memory
traffic. Every such copy is a `move` op here; free views (a reshape of a contiguous
tensor) are not.

Layouts: "frames" (B*F, C, H, W); "video" (B, C, F, H, W); "temporal tokens"
(B*H*W, F, C) for token-wise temporal attention; "temporal sequences" (B*H*W, C, F) for
1D convolutions and channel-first attention over frames.

Two families use these:
- diffusers `TemporalConvLayer` and `TransformerTemporalModel` (ModelScope's UNet3D);
  the copies emitted are the ones torch performs (checked with the profiler on CPU:
  one in TemporalConvLayer, three in TransformerTemporalModel).
- Make-A-Video's pseudo-3D layers (Singer et al. 2022, Sec. 3.2, eqs. 2-3): the transpose
  `T` before and after each 1D temporal convolution / attention.
"""

from __future__ import annotations

from ...builder import GraphBuilder, Tensor
from . import layers as _blocks


# -- layout changes ------------------------------------------------------------------------
def frames_to_video(b: GraphBuilder, name: str, x: Tensor, frames: int) -> Tensor:
    """(B*F, C, H, W) -> contiguous (B, C, F, H, W)."""
    bf, c, h, w = x.shape
    return b.move(name, x, (bf // frames, c, frames, h, w), what="frames_to_video")


def video_to_frames(b: GraphBuilder, name: str, x: Tensor) -> Tensor:
    """(B, C, F, H, W) -> contiguous (B*F, C, H, W)."""
    n, c, f, h, w = x.shape
    return b.move(name, x, (n * f, c, h, w), what="video_to_frames")


def video_to_temporal_tokens(b: GraphBuilder, name: str, x: Tensor) -> Tensor:
    """(B, C, F, H, W) -> (B*H*W, F, C): one token sequence over frames per pixel."""
    n, c, f, h, w = x.shape
    return b.move(name, x, (n * h * w, f, c), what="video_to_temporal_tokens")


def temporal_tokens_to_frames(b: GraphBuilder, name: str, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """(B*H*W, F, C) -> (B*F, C, H, W)."""
    nhw, f, c = x.shape
    n = nhw // (hw[0] * hw[1])
    return b.move(name, x, (n * f, c, *hw), what="temporal_tokens_to_frames")


def frames_to_temporal_sequences(b: GraphBuilder, name: str, x: Tensor, frames: int) -> Tensor:
    """(B*F, C, H, W) -> (B*H*W, C, F): the transpose `T` of Make-A-Video's eqs. (2)-(3)."""
    bf, c, h, w = x.shape
    return b.move(name, x, (bf // frames * h * w, c, frames), what="frames_to_temporal")


def temporal_sequences_to_frames(b: GraphBuilder, name: str, x: Tensor, hw: tuple[int, int]) -> Tensor:
    """(B*H*W, C, F) -> (B*F, C, H, W): the inverse transpose."""
    nhw, c, f = x.shape
    n = nhw // (hw[0] * hw[1])
    return b.move(name, x, (n * f, c, *hw), what="temporal_to_frames")


# -- diffusers temporal layers (UNet3DConditionModel) --------------------------------------
def temporal_conv_layer(b: GraphBuilder, x: Tensor, frames: int, *, groups: int, act: str = "silu") -> Tensor:
    """diffusers `TemporalConvLayer` on frames (B*F, C, H, W).

    Four (GroupNorm, SiLU, Conv3d (3,1,1)) stages on the (B, C, F, H, W) view, plus the
    identity. The first GroupNorm copies the permuted view to contiguous memory; the
    residual add then writes in the frame-major order, so the reshape back is a free view.
    Module paths: conv1.0 (norm), conv1.2 (conv); conv2..4: .0 (norm), .3 (conv).
    """
    bf, c, h, w = x.shape
    video = frames_to_video(b, "to_video", x, frames)
    y = video
    for i in range(1, 5):
        conv_index = 2 if i == 1 else 3  # conv2..4 hold a Dropout at index 2
        with b.scope(f"conv{i}"):
            y = b.group_norm("0", y, groups)
            y = b.activation("1", y, act)
            y = b.conv(str(conv_index), y, c, (3, 1, 1), padding=(1, 0, 0))
    out = b.add("residual_add", video, y)
    return _blocks.view(out, (bf, c, h, w))


def transformer_temporal(
    b: GraphBuilder, x: Tensor, frames: int, *, heads: int, head_dim: int, groups: int, layers: int = 1
) -> Tensor:
    """diffusers `TransformerTemporalModel` on frames (B*F, C, H, W).

    GroupNorm on the (B, C, F, H, W) view (a contiguous copy first), permute to temporal
    tokens (B*H*W, F, C) (copy), proj_in, `layers` blocks of temporal self-attention, proj_out,
    permute back to frames (copy), residual add.
    """
    _, c, h, w = x.shape
    video = frames_to_video(b, "to_video", x, frames)
    t = b.group_norm("norm", video, groups)
    t = video_to_temporal_tokens(b, "to_temporal_tokens", t)
    t = b.linear("proj_in", t, heads * head_dim)
    for k in range(layers):
        with b.scope("transformer_blocks", k):
            t = temporal_transformer_block(b, t, heads=heads)
    t = b.linear("proj_out", t, c)
    t = temporal_tokens_to_frames(b, "to_frames", t, (h, w))
    return b.add("residual_add", t, x)


def temporal_transformer_block(b: GraphBuilder, x: Tensor, *, heads: int) -> Tensor:
    """diffusers `BasicTransformerBlock(double_self_attention=True)` over frame tokens.

    Two temporal self-attentions (attn2 gets no encoder states in TransformerTemporalModel)
    and a GEGLU feed-forward, each pre-LayerNorm and residual.
    """
    dim = x.shape[-1]
    for i in (1, 2):
        h = b.layer_norm(f"norm{i}", x)
        h = _blocks.attention(b, f"attn{i}", h, heads=heads, inner=dim, qkv_bias=False, role="self", axis="temporal")
        x = b.add(f"attn{i}_add", h, x)
    return _blocks.geglu_feed_forward(b, x)


# -- Make-A-Video pseudo-3D convolution -----------------------------------------------------
def pseudo3d_temporal_conv(b: GraphBuilder, x: Tensor, frames: int, kernel: int = 3) -> Tensor:
    """The 1D temporal convolution that follows a 2D conv (Make-A-Video eq. 2).

    (B*F, C, H, W) -> T -> Conv1d over frames (C -> C, `kernel` taps, 'same' padding) -> T^-1.
    """
    _, c, h, w = x.shape
    t = frames_to_temporal_sequences(b, "to_temporal", x, frames)
    t = b.conv("conv", t, c, kernel)
    return temporal_sequences_to_frames(b, "to_frames", t, (h, w))
