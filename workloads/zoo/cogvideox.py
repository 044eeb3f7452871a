"""CogVideoX-2B (Yang et al., "CogVideoX: Text-to-Video Diffusion Models with An Expert
Transformer", ICLR 2025; checkpoint THUDM/CogVideoX-2b): text-to-video with full 3D attention
over the text and video tokens together, and its three components.

References: diffusers `CogVideoXTransformer3DModel` and `AutoencoderKLCogVideoX` from the
published THUDM/CogVideoX-2b configs, `CogVideoXPipeline`, transformers `T5EncoderModel`
(T5-XXL v1.1, `_t5.py`). Parameters match diffusers exactly: transformer 1,693,783,872,
VAE decoder 123,368,451.

Transformer (30 `CogVideoXBlock`s, 30 heads x 64 = 1920, patch 2, time embedding 512): the
226 T5 tokens (projected 4096 -> 1920) and the video patches are one sequence. Each block
normalises and modulates text and video separately (`CogVideoXLayerNormZero`: one LayerNorm
module applied to both, one 6-way modulation), concatenates them, runs self-attention with
per-head LayerNorm on q and k over all 226 + F*h*w/4 tokens (axis "joint"), splits, gates,
and does the same around one feed-forward over the concatenation. At 49 frames of 480x720:
13 latent frames x 30 x 45 patches = 17,550 video tokens, 17,776 in the attention.
CogVideoX-2b uses fixed 3D sin-cos position embeddings (no RoPE); a config with
`use_rotary_positional_embeddings` (CogVideoX-5b) adds RoPE on the video q/k instead.

Options: `resolution` is the video HEIGHT; the width follows the 3:2 aspect of the published
480x720 (`resolution * 3 / 2`), and both must split into whole 16-pixel patches (VAE 8 x
patch 2). `frames` are video frames; the causal VAE needs (frames - 1) % 4 == 0 (49 -> 13
latent frames). Pipeline defaults (`CogVideoXPipeline.__call__`): 50 steps, CFG (batch 2N,
static guidance), 226-token prompts. The VAE decode follows `_cogvideox_vae.py` (chunked,
conv caches).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import diffusion as _diffusion
from .blocks import dit_blocks as _dit_blocks
from .blocks import dit_pipeline as pipe
from .blocks import layers as _blocks
from .blocks.cogvideox_vae import CogVideoXVAEConfig, decode_graph
from .blocks.config import ConfigReader, option_config
from .blocks.specs import family_specs

# THUDM/CogVideoX-2b, transformer/config.json
TRANSFORMER_CONFIG = MappingProxyType(
    {
        "_class_name": "CogVideoXTransformer3DModel",
        "_diffusers_version": "0.30.0.dev0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": 64,
        "dropout": 0.0,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 16,
        "max_text_seq_length": 226,
        "norm_elementwise_affine": True,
        "norm_eps": 1e-05,
        "num_attention_heads": 30,
        "num_layers": 30,
        "out_channels": 16,
        "patch_size": 2,
        "sample_frames": 49,
        "sample_height": 60,
        "sample_width": 90,
        "spatial_interpolation_scale": 1.875,
        "temporal_compression_ratio": 4,
        "temporal_interpolation_scale": 1.0,
        "text_embed_dim": 4096,
        "time_embed_dim": 512,
        "timestep_activation_fn": "silu",
        "use_rotary_positional_embeddings": False,
    }
)

# THUDM/CogVideoX-2b, vae/config.json
VAE_CONFIG = MappingProxyType(
    {
        "_class_name": "AutoencoderKLCogVideoX",
        "_diffusers_version": "0.30.0.dev0",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 256, 512],
        "down_block_types": ["CogVideoXDownBlock3D"] * 4,
        "force_upcast": True,
        "in_channels": 3,
        "latent_channels": 16,
        "latents_mean": None,
        "latents_std": None,
        "layers_per_block": 3,
        "norm_eps": 1e-06,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_height": 480,
        "sample_width": 720,
        "scaling_factor": 1.15258426,
        "shift_factor": None,
        "temporal_compression_ratio": 4,
        "up_block_types": ["CogVideoXUpBlock3D"] * 4,
        "use_post_quant_conv": False,
        "use_quant_conv": False,
    }
)

VAE = CogVideoXVAEConfig.from_dict(VAE_CONFIG, "CogVideoX-2b VAE")
ASPECT = (3, 2)  # width : height of the published 720 x 480


@dataclass(frozen=True)
class CogVideoXConfig:
    """The structural fields of a diffusers `CogVideoXTransformer3DModel` config (1.0 layout:
    2D patches, no `ofs` embedding)."""

    num_attention_heads: int
    attention_head_dim: int
    in_channels: int
    out_channels: int
    time_embed_dim: int
    text_embed_dim: int
    num_layers: int
    attention_bias: bool
    patch_size: int
    text_tokens: int
    norm_elementwise_affine: bool
    rotary: bool

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "CogVideoX transformer") -> CogVideoXConfig:
        r = ConfigReader(config, what)
        r.only("activation_fn", ("gelu-approximate", "gelu"), "gelu-approximate")
        r.only("timestep_activation_fn", ("silu",), "silu")
        for key in ("patch_size_t", "ofs_embed_dim"):
            if r.get(key, None) is not None:
                raise InputError(f"{what}: config '{key}' (CogVideoX 1.5 / I2V layout) is not supported")
        if not r.flag("patch_bias", True):
            raise InputError(f"{what}: config 'patch_bias' = false is not supported")
        return cls(
            num_attention_heads=r.positive("num_attention_heads", 30),
            attention_head_dim=r.positive("attention_head_dim", 64),
            in_channels=r.positive("in_channels", 16),
            out_channels=r.positive("out_channels", 16),
            time_embed_dim=r.positive("time_embed_dim", 512),
            text_embed_dim=r.positive("text_embed_dim", 4096),
            num_layers=r.positive("num_layers", 30),
            attention_bias=r.flag("attention_bias", True),
            patch_size=r.positive("patch_size", 2),
            text_tokens=r.positive("max_text_seq_length", 226),
            norm_elementwise_affine=r.flag("norm_elementwise_affine", True),
            rotary=r.flag("use_rotary_positional_embeddings", False),
        )

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim


def transformer_config(path: str = "") -> CogVideoXConfig:
    """The CogVideoX-2b config, or the diffusers transformer `config.json` at `path` instead."""
    return CogVideoXConfig.from_dict(
        *option_config(
            path, TRANSFORMER_CONFIG, what="CogVideoX-2b", file_what=f"CogVideoX config {path}",
            file="transformer config.json",
        )
    )  # fmt: skip


# -- transformer ----------------------------------------------------------------------------
def cogvideox_transformer(b: GraphBuilder, cfg: CogVideoXConfig, x: Tensor, text: Tensor) -> Tensor:
    """`CogVideoXTransformer3DModel.forward`: latents (B, F, C, h, w), T5 states (B, L, 4096)
    -> prediction (B, F, out_channels, h, w)."""
    batch, frames, ch, h, w = x.shape
    p, dim = cfg.patch_size, cfg.inner_dim
    for side in (h, w):
        if side % p:
            raise InputError(f"CogVideoX latent side {side} is not divisible by the patch size {p}")
    video_tokens = frames * (h // p) * (w // p)
    t = b.input((batch,))
    feats = _blocks.sinusoidal_embedding(b, "time_proj", t, dim)
    with b.scope("time_embedding"):
        temb = _blocks.timestep_mlp(b, feats, cfg.time_embed_dim)
    with b.scope("patch_embed"):
        text = b.linear("text_proj", text, dim)
        video = b.conv("proj", _blocks.view(x, (batch * frames, ch, h, w)), dim, p, stride=p, padding=0)
        # flatten(3).transpose(2, 3).flatten(1, 2) is a view; torch.cat makes the copy.
        seq = b.concat("concat", [text, _blocks.view(video, (batch, video_tokens, dim))], dim=1)
        if not cfg.rotary:
            seq = b.elementwise("add_pos_embedding", [seq, b.input((1, seq.shape[1], dim))], "add")
    text_len = text.shape[1]
    text, video = _blocks.view(seq, (batch, text_len, dim)), _blocks.view(seq, (batch, video_tokens, dim))
    for i in range(cfg.num_layers):
        with b.scope("transformer_blocks", i):
            video, text = _block(b, cfg, video, text, temb)
    video = b.layer_norm("norm_final", video, affine=cfg.norm_elementwise_affine)
    with b.scope("norm_out"):
        mod = b.linear("linear", b.activation("silu", temb, "silu"), 2 * dim)
        video = b.layer_norm("norm", video, affine=cfg.norm_elementwise_affine)
        video = _dit_blocks.modulate(b, "modulate", video, _dit_blocks.rows(mod, 2), _dit_blocks.rows(mod, 2))
    video = b.linear("proj_out", video, p * p * cfg.out_channels)
    # reshape(B, F, h/p, w/p, C, p, p).permute(0, 1, 4, 2, 5, 3, 6).flatten: a copy.
    return b.move("unpatchify", video, (batch, frames, cfg.out_channels, h, w), what="unpatchify")


def _norm_zero(b: GraphBuilder, cfg: CogVideoXConfig, name: str, video: Tensor, text: Tensor, temb: Tensor):
    """`CogVideoXLayerNormZero`: one modulation linear, the same LayerNorm on video and text
    (its weights counted once), each modulated; returns both and the two gates."""
    with b.scope(name):
        mod = b.linear("linear", b.activation("silu", temb, "silu"), 6 * cfg.inner_dim)
        shift, scale, gate, enc_shift, enc_scale, enc_gate = (_dit_blocks.rows(mod, 6),) * 6
        video = b.layer_norm("norm", video, affine=cfg.norm_elementwise_affine)
        video = _dit_blocks.modulate(b, "modulate", video, shift, scale)
        text = b.layer_norm("norm_text", text, affine=False)  # same module: no new weights
        text = _dit_blocks.modulate(b, "modulate_text", text, enc_shift, enc_scale)
    return video, text, gate, enc_gate


def _joint_attention(b: GraphBuilder, cfg: CogVideoXConfig, seq: Tensor, text_len: int) -> Tensor:
    """`Attention` + `CogVideoXAttnProcessor2_0` over the concatenated [text, video] tokens:
    q/k/v, per-head LayerNorm on q and k, (RoPE on the video part of q and k), SDPA, out."""
    n, length, _ = seq.shape
    heads, d, inner = cfg.num_attention_heads, cfg.attention_head_dim, cfg.inner_dim
    with b.scope("attn1"):
        q = b.linear("to_q", seq, inner, bias=cfg.attention_bias)
        k = b.linear("to_k", seq, inner, bias=cfg.attention_bias)
        v = b.linear("to_v", seq, inner, bias=cfg.attention_bias)
        q = b.layer_norm("norm_q", _blocks.view(q, (n, length, heads, d)))
        k = b.layer_norm("norm_k", _blocks.view(k, (n, length, heads, d)))
        if cfg.rotary:
            video = (n, length - text_len, heads, d)
            q = b.elementwise("rope_q", [_blocks.view(q, video)], "rotary")
            k = b.elementwise("rope_k", [_blocks.view(k, video)], "rotary")
        q, k = _blocks.view(q, (n, length, inner)), _blocks.view(k, (n, length, inner))
    o = b.attention("attn1", q, k, v, heads, role="self", axis="joint")
    with b.scope("attn1"):
        return b.linear("to_out.0", o, seq.shape[-1])


def _block(b: GraphBuilder, cfg: CogVideoXConfig, video: Tensor, text: Tensor, temb: Tensor) -> tuple[Tensor, Tensor]:
    """`CogVideoXBlock`: joint attention, then a feed-forward over the joint sequence."""
    n, text_len, dim = text.shape
    video_len = video.shape[1]
    norm_video, norm_text, gate, enc_gate = _norm_zero(b, cfg, "norm1", video, text, temb)
    with b.scope("attn1"):
        seq = b.concat("concat", [norm_text, norm_video], dim=1)
    out = _joint_attention(b, cfg, seq, text_len)
    video = _dit_blocks.gated_residual(b, "attn1", video, _blocks.view(out, (n, video_len, dim)), gate)
    text = _dit_blocks.gated_residual(b, "attn1_text", text, _blocks.view(out, (n, text_len, dim)), enc_gate)
    norm_video, norm_text, gate, enc_gate = _norm_zero(b, cfg, "norm2", video, text, temb)
    seq = b.concat("ff_concat", [norm_text, norm_video], dim=1)
    out = _dit_blocks.feed_forward(b, seq, 4 * dim, "gelu")
    video = _dit_blocks.gated_residual(b, "ff", video, _blocks.view(out, (n, video_len, dim)), gate)
    text = _dit_blocks.gated_residual(b, "ff_text", text, _blocks.view(out, (n, text_len, dim)), enc_gate)
    return video, text


def denoiser(cfg: CogVideoXConfig) -> _diffusion.Emit:
    """The transformer as an emitter on (B, F, C, h, w) latents; the T5 states are a graph input."""

    def emit(b: GraphBuilder, x: Tensor) -> Tensor:
        return cogvideox_transformer(b, cfg, x, b.input((x.shape[0], cfg.text_tokens, cfg.text_embed_dim)))

    return emit


# -- pipeline -------------------------------------------------------------------------------
def video_size(resolution: int) -> tuple[int, int]:
    """(height, width) of the video for `resolution` = height at the 3:2 aspect (480 -> 720)."""
    if resolution * ASPECT[0] % ASPECT[1]:
        raise InputError(f"resolution (height) {resolution} gives no whole width at the 3:2 aspect")
    return resolution, resolution * ASPECT[0] // ASPECT[1]


def latents_shape(resolution: int, batch: int, frames: int, cfg: CogVideoXConfig) -> tuple[int, int, int, int, int]:
    """Transformer latents (B, F_latent, C, h, w) for a `frames` x height x width video."""
    height, width = video_size(resolution)
    h = pipe.latent_side(height, VAE.downscale, cfg.patch_size, "height (resolution)")
    w = pipe.latent_side(width, VAE.downscale, cfg.patch_size, "width (resolution * 3 / 2)")
    return (batch, VAE.latent_frames(frames), cfg.in_channels, h, w)


def decode_stage(name: str, latents: tuple[int, ...]) -> OpGraph:
    """`CogVideoXPipeline.decode_latents`: permute to (B, C, F, h, w) (a view), `/ scaling_factor`
    (the op that materialises it), then the chunked VAE decode (ops under `vae.`)."""
    batch, frames, ch, h, w = latents
    b = GraphBuilder(f"{name}.scale", "vae_decoder")
    z = b.elementwise("latents_scale", [b.input((batch, ch, frames, h, w))], "mul")
    head = b.build()
    graph = OpGraph(name)
    graph.extend(head)
    graph.extend(decode_graph(f"{name}.vae", VAE, z, prefix="vae"), after=head.sinks())
    return graph


def build_pipeline(resolution: int, batch: int, frames: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """T5 once (2N prompts with CFG), transformer x steps (batch 2N), causal VAE decode."""
    tcfg = transformer_config(config)
    if tcfg.text_embed_dim != pipe.T5_XXL.d_model or tcfg.in_channels != VAE.latent_channels:
        raise InputError("CogVideoX config does not match T5-XXL (4096-wide states) and the VAE (16 latent channels)")
    latents = latents_shape(resolution, batch, frames, tcfg)
    return pipe.t5_pipeline(
        "cogvideox_2b", latents=latents, denoiser=denoiser(tcfg), tokens=tcfg.text_tokens, cfg=cfg, learned_sigma=False,
        decode=decode_stage("cogvideox_2b.decode", latents), steps=steps,
    )  # fmt: skip


def build_transformer(resolution: int, batch: int, frames: int, config: str) -> OpGraph:
    """One transformer forward on (batch, latent frames, 16, height/8, width/8) latents."""
    tcfg = transformer_config(config)
    return _diffusion.component_graph(
        "cogvideox_2b_transformer", pipe.STAGE, denoiser(tcfg), latents_shape(resolution, batch, frames, tcfg)
    )


def build_text_encoder(batch: int) -> OpGraph:
    """T5-XXL v1.1 encoder on `batch` prompts of 226 tokens."""
    return pipe.t5_text_encoder("cogvideox_2b_text_encoder", batch, TRANSFORMER_CONFIG["max_text_seq_length"], prefix=False)


def build_vae_decoder(resolution: int, batch: int, frames: int) -> OpGraph:
    """`AutoencoderKLCogVideoX.decode` of (batch, 16, latent frames, height/8, width/8) latents."""
    height, width = video_size(resolution)
    h, w = (pipe.latent_side(s, VAE.downscale, 1, what) for s, what in ((height, "height"), (width, "width")))
    return decode_graph("cogvideox_2b_vae_decoder", VAE, (batch, VAE.latent_channels, VAE.latent_frames(frames), h, w))


_REFERENCE = (
    "diffusers CogVideoXTransformer3DModel / AutoencoderKLCogVideoX (THUDM/CogVideoX-2b), "
    "transformers T5EncoderModel (t5-v1_1-xxl), CogVideoXPipeline"
)

MODELS = family_specs(
    "ttv",
    _REFERENCE,
    ("cogvideox_2b", build_pipeline,
     {"resolution": 480, "batch": 1, "frames": 49, "steps": 50, "cfg": True, "config": ""},
     "CogVideoX-2B text-to-video: T5-XXL, joint text+video transformer x steps (CFG), 3D causal VAE decoder"),
    [
        ("cogvideox_2b_transformer", build_transformer, {"resolution": 480, "batch": 1, "frames": 49, "config": ""},
         "CogVideoX-2B transformer (full 3D attention over 226 text + 17,550 video tokens), one step (1.69B params)"),
        ("cogvideox_2b_text_encoder", build_text_encoder, {"batch": 1},
         "CogVideoX-2B text encoder (T5-XXL v1.1 encoder, 226 tokens)"),
        ("cogvideox_2b_vae_decoder", build_vae_decoder, {"resolution": 480, "batch": 1, "frames": 49},
         "CogVideoX-2B 3D causal VAE decoder (AutoencoderKLCogVideoX.decode, chunked with conv caches)"),
    ],
)
