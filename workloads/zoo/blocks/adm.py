"""The ADM UNet (guided-diffusion / GLIDE `UNetModel`) with unCLIP conditioning and optional
Make-A-Video pseudo-3D layers, as an operator graph.

ADM (Dhariwal & Nichol 2021; GLIDE, Nichol et al. 2022): `num_res_blocks` ResBlocks per
level (scale-shift norm: GroupNorm(h) * (1 + scale) + shift from the time embedding),
resampling by ResBlocks (`resblock_updown`: avg-pool / nearest inside the block), multi-head
attention blocks (head width 64) at the listed downsampling factors whose keys and values are
extended with projected context tokens (GLIDE's `encoder_kv`, concatenated before the image
keys: a real copy), a middle block ResBlock-attention-ResBlock, and the mirrored output
blocks with skip concats. Op names are the guided-diffusion module paths
(`input_blocks.4.0.in_layers.2`, `middle_block.1.qkv`, `out.2`); the 1x1 `qkv`/`proj_out`
convs are Conv1d over the flattened pixels, as in the reference. The per-frame attention op
has role "self" and axis "spatial" with Lk = H*W + context tokens (the 4 CLIP tokens are a
small prefix of the keys; the op stays the per-frame spatial attention the temporal layers
are compared against).

unCLIP conditioning (Ramesh et al. 2022, Sec. 2.1): the CLIP image embedding is projected
and added to the timestep embedding (`clip_to_time`) and projected into `clip_tokens` extra
context tokens (`clip_to_tokens`) that the attention blocks attend to.

Pseudo-3D (Make-A-Video, Singer et al. 2022, Sec. 3.2): with `temporal`, every 3x3 conv is
followed by a 1D temporal conv over frames (`<conv>.temporal.conv`, eq. 2) and every
attention block by a temporal attention block over frames (`<attn>.temporal`, eq. 3), each
wrapped in the transposes to and from the (B*H*W, C, F) layout (`_temporal`). The 2D layers
see frames stacked into the batch, (B*F, C, H, W). 1x1 convs (ResBlock skips, qkv, proj_out)
are per-pixel fully-connected layers and get no temporal conv (the paper: "fully-connected
layers do not require specific handling").
"""

from __future__ import annotations

from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from . import temporal as _temporal


@dataclass(frozen=True)
class ADMConfig:
    """ADM UNet hyperparameters (the columns of unCLIP's Table 3) plus the video extensions."""

    in_channels: int
    out_channels: int
    model_channels: int
    num_res_blocks: int
    channel_mult: tuple[int, ...]
    attention_ds: tuple[int, ...] = ()  # downsampling factors with attention blocks
    mid_attention: bool = True  # ADM's middle block attention
    head_channels: int = 64
    context_channels: int = 0  # width of the context tokens (encoder_kv input); 0: none
    clip_dim: int = 0  # unCLIP CLIP-embedding conditioning width; 0: none
    clip_tokens: int = 4
    fps_embedding: bool = False  # Make-A-Video frame-rate conditioning
    temporal: bool = False  # Make-A-Video pseudo-3D layers
    temporal_kernel: int = 3
    groups: int = 32
    time_embed_mult: int = 4  # timestep-embedding width / model_channels (ADM: 4)

    @property
    def time_embed_dim(self) -> int:
        return self.time_embed_mult * self.model_channels

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


def adm_unet(b: GraphBuilder, cfg: ADMConfig, x: Tensor, *, frames: int = 1, clip_emb: Tensor | None = None) -> Tensor:
    """Emit one ADM forward on frames x (N*frames, in_channels, H, W); returns (N*frames, out, H, W).

    `clip_emb` (N, clip_dim) is required when `cfg.clip_dim`; timesteps (and fps) are graph inputs.
    """
    nf, c_in, h, w = x.shape
    if c_in != cfg.in_channels:
        raise InputError(f"ADM in_channels {cfg.in_channels} does not match the {c_in}-channel input")
    if h % cfg.downscale or w % cfg.downscale:
        raise InputError(f"input size {h}x{w} is not divisible by the UNet's downscale factor {cfg.downscale}")
    n = nf // frames
    emb, context = _conditioning(b, cfg, n, clip_emb)
    if frames > 1:  # per-video conditioning repeated for every frame of the (B*F) batch
        emb = b.move("emb_repeat", emb, (nf, cfg.time_embed_dim), what="repeat_interleave")
        if context is not None:
            context = b.move("context_repeat", context, (nf, *context.shape[1:]), what="repeat_interleave")
    net = _Net(b, cfg, emb, context, frames)
    ch = cfg.model_channels * cfg.channel_mult[0]
    x = net.conv3x3(x, ch, "input_blocks.0.0")
    skips, ds, index = [x], 1, 1
    for level, mult in enumerate(cfg.channel_mult):
        for _ in range(cfg.num_res_blocks):
            with b.scope("input_blocks", index):
                x = net.res_block("0", x, cfg.model_channels * mult)
                if ds in cfg.attention_ds:
                    x = net.attention("1", x)
            skips.append(x)
            index += 1
        if level < len(cfg.channel_mult) - 1:
            with b.scope("input_blocks", index):
                x = net.res_block("0", x, x.shape[1], resample="down")
            skips.append(x)
            ds, index = ds * 2, index + 1
    with b.scope("middle_block"):
        x = net.res_block("0", x, x.shape[1])
        if cfg.mid_attention:
            x = net.attention("1", x)
        x = net.res_block("2" if cfg.mid_attention else "1", x, x.shape[1])
    index = 0
    for level, mult in reversed(list(enumerate(cfg.channel_mult))):
        for i in range(cfg.num_res_blocks + 1):
            with b.scope("output_blocks", index):
                x = b.concat("skip_concat", [x, skips.pop()], dim=1)
                x = net.res_block("0", x, cfg.model_channels * mult)
                j = 1
                if ds in cfg.attention_ds:
                    x, j = net.attention("1", x), 2
                if level and i == cfg.num_res_blocks:
                    x = net.res_block(str(j), x, x.shape[1], resample="up")
                    ds //= 2
            index += 1
    x = b.group_norm("out.0", x, cfg.groups)
    x = b.activation("out.1", x, "silu")
    return net.conv3x3(x, cfg.out_channels, "out.2")


def _conditioning(b: GraphBuilder, cfg: ADMConfig, n: int, clip_emb: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Timestep embedding (+ CLIP embedding, + fps embedding) and the context tokens."""
    mc, ted = cfg.model_channels, cfg.time_embed_dim
    t = _blocks.sinusoidal_embedding(b, "timestep_embedding", b.input((n,)), mc)
    with b.scope("time_embed"):
        emb = b.linear("0", t, ted)
        emb = b.activation("1", emb, "silu")
        emb = b.linear("2", emb, ted)
    if cfg.fps_embedding:
        f = _blocks.sinusoidal_embedding(b, "fps_embedding", b.input((n,)), mc)
        with b.scope("fps_embed"):
            f = b.linear("0", f, ted)
            f = b.activation("1", f, "silu")
            f = b.linear("2", f, ted)
        emb = b.add("fps_add", emb, f)
    context = None
    if cfg.clip_dim:
        if clip_emb is None or clip_emb.shape != (n, cfg.clip_dim):
            raise InputError(f"ADM with CLIP conditioning needs a ({n}, {cfg.clip_dim}) image embedding")
        emb = b.add("clip_add", emb, b.linear("clip_to_time", clip_emb, ted))
        tokens = b.linear("clip_to_tokens", clip_emb, cfg.clip_tokens * cfg.context_channels)
        context = _blocks.view(tokens, (n, cfg.context_channels, cfg.clip_tokens))  # channels-first, as GLIDE's xf_out
    return emb, context


@dataclass(frozen=True)
class _Net:
    """Emits ADM blocks; holds what all of them share."""

    b: GraphBuilder
    cfg: ADMConfig
    emb: Tensor  # (N*F, time_embed_dim)
    context: Tensor | None  # (N*F, context_channels, tokens)
    frames: int

    @property
    def video(self) -> bool:
        return self.cfg.temporal and self.frames > 1

    def conv3x3(self, x: Tensor, out_ch: int, name: str) -> Tensor:
        """A 3x3 conv; with pseudo-3D layers followed by its temporal conv (`<name>.temporal.conv`)."""
        x = self.b.conv(name, x, out_ch, 3)
        if self.video:
            with self.b.scope(name, "temporal"):
                x = _temporal.pseudo3d_temporal_conv(self.b, x, self.frames, self.cfg.temporal_kernel)
        return x

    def res_block(self, name: str, x: Tensor, out_ch: int, resample: str = "") -> Tensor:
        """ADM `ResBlock` (use_scale_shift_norm; `resample` "down"/"up" as in resblock_updown)."""
        b, groups = self.b, self.cfg.groups
        n, c, hh, ww = x.shape
        with b.scope(name):
            h = b.group_norm("in_layers.0", x, groups)
            h = b.activation("in_layers.1", h, "silu")
            if resample:
                size = (hh // 2, ww // 2) if resample == "down" else (2 * hh, 2 * ww)
                mode = "avg_pool" if resample == "down" else "nearest"
                h = b.resample("h_upd", h, (n, c, *size), mode=mode)
                x = b.resample("x_upd", x, (n, c, *size), mode=mode)
            h = self.conv3x3(h, out_ch, "in_layers.2")
            e = b.activation("emb_layers.0", self.emb, "silu")
            e = b.linear("emb_layers.1", e, 2 * out_ch)
            h = b.group_norm("out_layers.0", h, groups)
            scale = shift = _blocks.view(e, (n, out_ch, 1, 1))  # emb_out.chunk(2, dim=1): views
            h = b.elementwise("scale_shift", [h, scale, shift], "scale_shift")
            h = b.activation("out_layers.1", h, "silu")
            h = self.conv3x3(h, out_ch, "out_layers.3")
            skip = b.conv("skip_connection", x, out_ch, 1, padding=0) if c != out_ch else x
            return b.add("residual_add", skip, h)

    def attention(self, name: str, x: Tensor) -> Tensor:
        """ADM `AttentionBlock` over the frame's pixels (+ context tokens); with pseudo-3D layers,
        followed by a temporal attention block over frames (`<name>.temporal`)."""
        b = self.b
        n, c, hh, ww = x.shape
        out = attention_block(b, name, _blocks.view(x, (n, c, hh * ww)), self.cfg, context=self.context, axis="spatial")
        x = _blocks.view(out, (n, c, hh, ww))
        if self.video:
            with b.scope(name):
                t = _temporal.frames_to_temporal_sequences(b, "temporal.to_temporal", x, self.frames)
                t = attention_block(b, "temporal", t, self.cfg, context=None, axis="temporal")
                x = _temporal.temporal_sequences_to_frames(b, "temporal.to_frames", t, (hh, ww))
        return x


def attention_block(
    b: GraphBuilder, name: str, x: Tensor, cfg: ADMConfig, *, context: Tensor | None, axis: str
) -> Tensor:
    """GLIDE `AttentionBlock` on channels-first tokens (N, C, T): norm, qkv (Conv1d), attention over
    the T tokens (keys/values extended by `encoder_kv(context)` when given), proj_out, residual.

    As in `_blocks.attention`, the attention op carries the block path `name` and the layers
    sit under it (`name.qkv`); heads are `head_channels` wide.
    """
    n, c, t = x.shape
    heads = max(1, c // cfg.head_channels)
    with b.scope(name):
        h = b.group_norm("norm", x, cfg.groups)
        qkv = b.conv("qkv", h, 3 * c, 1, padding=0)
        q = k = v = _blocks.view(qkv, (n, t, c))
        if context is not None:  # k = cat([ek, k]), v = cat([ev, v]) along the tokens
            kv = b.conv("encoder_kv", context, 2 * c, 1, padding=0)
            ekv = _blocks.view(kv, (n, context.shape[2], c))
            k = b.concat("cat_k", [ekv, k], dim=1)
            v = b.concat("cat_v", [ekv, v], dim=1)
    o = b.attention(name, q, k, v, heads, role="self", axis=axis)
    with b.scope(name):
        o = b.conv("proj_out", _blocks.view(o, (n, c, t)), c, 1, padding=0)
        return b.add("residual_add", x, o)
