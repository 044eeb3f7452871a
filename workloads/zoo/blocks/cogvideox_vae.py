"""The CogVideoX 3D causal VAE decoder (diffusers `AutoencoderKLCogVideoX.decode`) as ops.

What diffusers runs (0.42, tiling off as by default):

- `_decode` cuts the latent video (B, 16, T, h, w) into chunks of 2 latent frames, the first
  chunk taking the odd remainder (13 latents -> 3, 2, 2, 2, 2, 2), and runs the whole decoder
  on each chunk in turn, carrying a `conv_cache` of the last 2 input frames of every causal
  conv to the next chunk; the decoded chunks are concatenated along time. An odd chunk of k
  latents decodes to 4k - 3 frames, an even one to 4k (13 latents -> 9 + 5 * 8 = 49 frames,
  but 2 latents -> 8). The first chunk is emitted once with the decoder's parameters; the
  (identical) later chunks are emitted once more with `repeat = chunks - 1` and zero
  parameters (the same weights): the work of every chunk, counted as often as it runs.
- `CogVideoXCausalConv3d`: `torch.cat` of 2 context frames (the cache, or the first frame
  twice) in front of the input (a copy), a Conv3d with spatial padding only, and a `clone` of
  the input's last k_t - 1 frames as the next cache -- for the 1x1x1 convs k_t - 1 = 0 and
  diffusers clones the whole input (`inputs[:, :, 0:]`): both clones are emitted as moves.
- `CogVideoXSpatialNorm3D` (every decoder norm): nearest-resizes the chunk's latents to the
  feature map (first frame and the rest separately when the frame count is odd, then a
  concat), two 1x1x1 causal convs (`conv_y`, `conv_b`), GroupNorm, `norm * y + b`.
- `CogVideoXUpsample3D`: nearest 2x resize in space (and time for the first two levels,
  again first frame apart when odd), frames folded into the batch (a permute copy), a Conv2d,
  frames unfolded (a copy forced by the next op).

Not modelled: `CogVideoXSafeConv3d` splitting a conv input larger than 2 GiB along time
(it does not trigger at 480x720 and batch 1; it would add overlap copies, not FLOPs), and
tiled decoding (`enable_tiling`, off by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from ...ir import OpGraph
from . import layers as _blocks
from .config import ConfigReader

LATENT_FRAMES_PER_CHUNK = 2  # AutoencoderKLCogVideoX.num_latent_frames_batch_size
CAUSAL_KERNEL_T = 3


@dataclass(frozen=True)
class CogVideoXVAEConfig:
    """The decoder-side fields of a diffusers `AutoencoderKLCogVideoX` config."""

    out_channels: int
    block_out_channels: tuple[int, ...]
    latent_channels: int
    layers_per_block: int
    norm_num_groups: int
    temporal_compression_ratio: int
    act: str
    use_post_quant_conv: bool
    scaling_factor: float

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "AutoencoderKLCogVideoX") -> CogVideoXVAEConfig:
        r = ConfigReader(config, what)
        up = r.names("up_block_types", ("CogVideoXUpBlock3D",) * 4)
        if any(t != "CogVideoXUpBlock3D" for t in up):
            raise InputError(f"{what}: up_block_types {list(up)} not supported (only CogVideoXUpBlock3D)")
        ratio = r.positive("temporal_compression_ratio", 4)
        if ratio & (ratio - 1):
            raise InputError(f"{what}: temporal_compression_ratio must be a power of two, got {ratio}")
        return cls(
            out_channels=r.positive("out_channels", 3),
            block_out_channels=r.per_block("block_out_channels", len(up), (128, 256, 256, 512)),
            latent_channels=r.positive("latent_channels", 16),
            layers_per_block=r.positive("layers_per_block", 3),
            norm_num_groups=r.positive("norm_num_groups", 32),
            temporal_compression_ratio=ratio,
            act=_blocks.activation_fn(r.get("act_fn", "silu"), what),
            use_post_quant_conv=r.flag("use_post_quant_conv", False),
            scaling_factor=r.number("scaling_factor", 1.15258426),
        )

    @property
    def downscale(self) -> int:
        """Pixels per latent along height and width (8)."""
        return 2 ** (len(self.block_out_channels) - 1)

    def latent_frames(self, frames: int) -> int:
        """Latent frames for `frames` video frames: (frames - 1) / ratio + 1, which must be whole."""
        if (frames - 1) % self.temporal_compression_ratio:
            raise InputError(
                f"frames {frames} does not fit the causal VAE: (frames - 1) must be divisible by "
                f"{self.temporal_compression_ratio} (e.g. 49 = 12 * 4 + 1)"
            )
        return (frames - 1) // self.temporal_compression_ratio + 1


def chunk_frames(latent_frames: int) -> tuple[int, ...]:
    """Latent frames per decoder call in `_decode`: 13 -> (3, 2, 2, 2, 2, 2), 1 -> (1,)."""
    calls = max(latent_frames // LATENT_FRAMES_PER_CHUNK, 1)
    first = min(latent_frames, LATENT_FRAMES_PER_CHUNK + latent_frames % LATENT_FRAMES_PER_CHUNK)
    return (first,) + (LATENT_FRAMES_PER_CHUNK,) * (calls - 1)


def decode_graph(name: str, cfg: CogVideoXVAEConfig, latents: Tensor | tuple[int, ...], *, prefix: str = "") -> OpGraph:
    """`AutoencoderKLCogVideoX._decode` on latents (B, C, T, h, w) as one graph: the first
    chunk, the later chunks (repeated), the concat of the decoded frames. Op names are the
    module paths under `prefix` (e.g. "vae"); later-chunk ops sit under `later_chunks.`."""
    shape = latents.shape if isinstance(latents, Tensor) else tuple(latents)
    batch, ch, frames, h, w = shape
    if ch != cfg.latent_channels:
        raise InputError(f"CogVideoX VAE expects {cfg.latent_channels} latent channels, got {ch}")
    sizes = chunk_frames(frames)
    graph = OpGraph(name)
    first = _chunk_graph(f"{name}.chunk0", cfg, (batch, ch, sizes[0], h, w), (prefix,) if prefix else ())
    graph.extend(first)
    if len(sizes) == 1:
        return graph
    scope = (prefix, "later_chunks") if prefix else ("later_chunks",)
    later = _chunk_graph(f"{name}.later", cfg, (batch, ch, sizes[1], h, w), scope)
    graph.extend(later, after=first.sinks(), repeat=len(sizes) - 1, params=0)
    b = GraphBuilder(f"{name}.concat", "vae_decoder")
    outs = [b.input(_output_shape(first))] + [b.input(_output_shape(later))] * (len(sizes) - 1)
    b.concat(f"{prefix}.frames_concat" if prefix else "frames_concat", outs, dim=2)
    graph.extend(b.build(), after=first.sinks() + later.sinks())
    return graph


def _output_shape(chunk: OpGraph) -> tuple[int, ...]:
    return next(op.output for op in reversed(chunk.ops()) if op.name.endswith("conv_out.conv"))


def _chunk_graph(name: str, cfg: CogVideoXVAEConfig, shape: tuple[int, ...], scope: tuple[str, ...]) -> OpGraph:
    b = GraphBuilder(name, "vae_decoder")
    with b.scope(*scope):
        decoder(b, cfg, b.input(shape))
    return b.build()


def decoder(b: GraphBuilder, cfg: CogVideoXVAEConfig, z: Tensor) -> Tensor:
    """One `CogVideoXDecoder3D` call (post_quant_conv first if configured) on one chunk."""
    if cfg.use_post_quant_conv:
        z = b.conv("post_quant_conv", z, cfg.latent_channels, 1, padding=0)
    channels = cfg.block_out_channels[::-1]
    compress_levels = int(math.log2(cfg.temporal_compression_ratio))
    with b.scope("decoder"):
        x = causal_conv(b, "conv_in", z, channels[0])
        with b.scope("mid_block"):
            for j in range(2):
                x = resnet_block(b, cfg, j, x, channels[0], z)
        for i, ch in enumerate(channels):
            with b.scope("up_blocks", i):
                for j in range(cfg.layers_per_block + 1):
                    x = resnet_block(b, cfg, j, x, ch, z)
                if i < len(channels) - 1:
                    x = upsample(b, x, compress_time=i < compress_levels)
        x = spatial_norm(b, cfg, "norm_out", x, z)
        x = b.activation("conv_act", x, cfg.act)
        return causal_conv(b, "conv_out", x, cfg.out_channels)


def causal_conv(b: GraphBuilder, name: str, x: Tensor, out_ch: int, kernel: int = CAUSAL_KERNEL_T) -> Tensor:
    """`CogVideoXCausalConv3d` (pad_mode "constant"): time context concat, Conv3d (`.conv`),
    cache clone."""
    n, c, _t, h, w = x.shape
    with b.scope(name):
        if kernel > 1:
            x = b.concat("time_pad", [_blocks.view(x, (n, c, kernel - 1, h, w)), x], dim=2)
        kept = kernel - 1 if kernel > 1 else x.shape[2]  # inputs[:, :, -k + 1:] is everything for k = 1
        b.move("cache_clone", _blocks.view(x, (n, c, kept, h, w)), (n, c, kept, h, w), what="clone")
        return b.conv("conv", x, out_ch, kernel, padding=(0, kernel // 2, kernel // 2))


def _resize(b: GraphBuilder, name: str, x: Tensor, size: tuple[int, int, int]) -> Tensor:
    """Nearest resize of (N, C, T, H, W) to `size`, the first frame apart when T is odd > 1
    (two interpolates and a concat), as `CogVideoXSpatialNorm3D` and the upsampler do."""
    n, c, t, _, _ = x.shape
    out_t, out_h, out_w = size
    if t > 1 and t % 2 == 1:
        first = b.resample(f"{name}_first", _blocks.view(x, (n, c, 1, *x.shape[3:])), (n, c, 1, out_h, out_w))
        rest = b.resample(f"{name}_rest", _blocks.view(x, (n, c, t - 1, *x.shape[3:])), (n, c, out_t - 1, out_h, out_w))
        return b.concat(f"{name}_concat", [first, rest], dim=2)
    return b.resample(name, x, (n, c, out_t, out_h, out_w))


def spatial_norm(b: GraphBuilder, cfg: CogVideoXVAEConfig, name: str, f: Tensor, zq: Tensor) -> Tensor:
    """`CogVideoXSpatialNorm3D`: GroupNorm(f) * conv_y(zq') + conv_b(zq'), zq' = zq resized to f."""
    _n, ch, t, h, w = f.shape
    with b.scope(name):
        z = _resize(b, "interpolate", zq, (t, h, w))
        y = causal_conv(b, "conv_y", z, ch, kernel=1)
        shift = causal_conv(b, "conv_b", z, ch, kernel=1)
        x = b.group_norm("norm_layer", f, cfg.norm_num_groups)
        x = b.mul("mul", x, y)
        return b.add("add", x, shift)


def resnet_block(b: GraphBuilder, cfg: CogVideoXVAEConfig, j: int, x: Tensor, out_ch: int, zq: Tensor) -> Tensor:
    """`CogVideoXResnetBlock3D` with spatial norms (temb_channels 0: no time projection)."""
    with b.scope("resnets", j):
        h = spatial_norm(b, cfg, "norm1", x, zq)
        h = b.activation("act1", h, cfg.act)
        h = causal_conv(b, "conv1", h, out_ch)
        h = spatial_norm(b, cfg, "norm2", h, zq)
        h = b.activation("act2", h, cfg.act)
        h = causal_conv(b, "conv2", h, out_ch)
        skip = b.conv("conv_shortcut", x, out_ch, 1, padding=0) if x.shape[1] != out_ch else x
        return b.add("residual_add", h, skip)


def upsample(b: GraphBuilder, x: Tensor, *, compress_time: bool) -> Tensor:
    """`CogVideoXUpsample3D`: 2x nearest resize (time too when `compress_time`), then a Conv2d
    over the frames folded into the batch."""
    n, c, t, h, w = x.shape
    with b.scope("upsamplers", 0):
        if compress_time:
            out_t = 2 * t - 1 if t % 2 == 1 else 2 * t  # odd: first frame kept, the rest doubled
            x = _resize(b, "interpolate", x, (out_t, 2 * h, 2 * w))
            t = out_t
            x = b.move("to_frames", x, (n * t, c, 2 * h, 2 * w), what="permute")
        else:
            x = b.move("to_frames", x, (n * t, c, h, w), what="permute")
            x = b.resample("interpolate", x, (n * t, c, 2 * h, 2 * w))
        x = b.conv("conv", x, c, 3)
        return b.move("from_frames", x, (n, c, t, 2 * h, 2 * w), what="permute")
