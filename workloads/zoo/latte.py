"""Latte-1 (Ma et al., "Latte: Latent Diffusion Transformer for Video Generation",
arXiv 2401.03048, TMLR; checkpoint maxin-cn/Latte-1): text-to-video with interleaved spatial and temporal
transformer blocks, and its three components.

References: diffusers `LatteTransformer3DModel` from the published Latte-1 transformer config
(`num_layers` 28, hidden 1152 = 16 heads x 72, patch 2, adaLN-single, T5 caption projection
4096 -> 1152, learned sigma: 8 output channels, `video_length` 16), `LattePipeline`,
transformers `T5EncoderModel` (T5-XXL v1.1, `_t5.py`, 120 tokens) and the Stable Diffusion
`AutoencoderKL` decoder (`sd15.VAE`) applied frame by frame. Transformer parameters:
1,057,246,880, exactly diffusers' count.

Structure (the paper's "Variant 1", spatial and temporal blocks interleaved): diffusers
builds `num_layers` spatial blocks (`transformer_blocks`, self-attention over the H*W patches
of each frame + cross-attention to the text) AND `num_layers` temporal blocks
(`temporal_transformer_blocks`, self-attention over the F frames at each patch position) and
runs them in pairs: 28 + 28 = 56 blocks for Latte-1's `num_layers: 28`. (The class-conditional
Latte-XL of the paper's Table 1 instead alternates 28 blocks in total.)

Between the two blocks of each pair the tokens are regrouped: (B*F, H*W, C) -> (B*H*W, F, C)
and back, each a `reshape(...).permute(0, 2, 1, 3).reshape(...)`, i.e. a real copy: emitted
as `move` ops. So are the `repeat_interleave` copies of the text states and timestep
modulation to the spatial (B*F) and temporal (B*H*W) batches.

Options: `frames` is the number of video frames = latent frames (this VAE has no temporal
compression). diffusers only runs `frames` equal to the config's `video_length` (16) or 1,
because the temporal sin-cos table is a fixed (16, C) buffer; other values model the same
network built with `video_length=frames` (a buffer, so parameters are unchanged).
Pipeline: 50 DDIM steps (`LattePipeline` default; the Latte-1 sample config), CFG batch 2N,
all 120 T5 tokens attended (`mask_feature` would trim the text to the longest prompt: the
model keeps the maximum), the VAE decodes B*F frames as one batch (diffusers decodes in
chunks of 14 frames: same work per frame, then one `torch.cat` copy, emitted).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import diffusion as _diffusion
from .blocks import dit_blocks as _dit_blocks
from .blocks import dit_pipeline as pipe
from .blocks import layers as _blocks
from .blocks import vae as _vae
from .blocks.dit_blocks import DiTConfig
from .blocks.specs import family_specs
from .sd15 import VAE

TEXT_TOKENS = 120  # LattePipeline max_sequence_length
DECODE_CHUNK = 14  # LattePipeline decode_chunk_size default

# maxin-cn/Latte-1, transformer/config.json
TRANSFORMER_CONFIG = MappingProxyType(
    {
        "_class_name": "LatteTransformer3DModel",
        "_diffusers_version": "0.30.0.dev0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": 72,
        "caption_channels": 4096,
        "cross_attention_dim": 1152,
        "dropout": 0.0,
        "in_channels": 4,
        "norm_elementwise_affine": False,
        "norm_eps": 1e-06,
        "norm_type": "ada_norm_single",
        "num_attention_heads": 16,
        "num_embeds_ada_norm": 1000,
        "num_layers": 28,
        "out_channels": 8,
        "patch_size": 2,
        "sample_size": 64,
        "video_length": 16,
    }
)

# LatteTransformer3DModel.__init__ defaults (diffusers 0.42).
_DEFAULTS: dict[str, Any] = {
    "num_attention_heads": 16,
    "attention_head_dim": 88,
    "in_channels": None,
    "out_channels": None,
    "num_layers": 1,
    "cross_attention_dim": None,
    "attention_bias": False,
    "sample_size": 64,
    "patch_size": None,
    "activation_fn": "geglu",
    "num_embeds_ada_norm": None,
    "norm_type": "layer_norm",
    "norm_elementwise_affine": True,
    "caption_channels": None,
    "use_additional_conditions": False,  # LatteTransformer3DModel's adaln_single never uses them
}


def transformer_config(path: str = "") -> DiTConfig:
    """The Latte-1 config, or the diffusers transformer `config.json` at `path` instead."""
    cfg = _dit_blocks.read_config(path, TRANSFORMER_CONFIG, "Latte-1", defaults=_DEFAULTS, norm_types=("ada_norm_single",))
    if cfg.cross_attention_dim is None or cfg.caption_channels is None:
        raise InputError(f"{path or 'Latte-1'}: Latte needs cross_attention_dim and caption_channels")
    return cfg


def latte_transformer(b: GraphBuilder, cfg: DiTConfig, x: Tensor, caption: Tensor) -> Tensor:
    """`LatteTransformer3DModel.forward`: latents (B, C, F, h, w), T5 states (B, L, 4096)
    -> prediction (B, out_channels, F, h, w)."""
    batch, ch, frames, h, w = x.shape
    grid = (_dit_blocks.latent_tokens(cfg, h, "Latte"), _dit_blocks.latent_tokens(cfg, w, "Latte"))
    patches, dim = grid[0] * grid[1], cfg.inner_dim
    spatial_n, temporal_n = batch * frames, batch * patches
    x = b.move("to_frames", x, (spatial_n, ch, h, w), what="permute")  # permute(0, 2, 1, 3, 4).reshape
    x = _dit_blocks.patch_embed(b, x, dim, cfg.patch_size)
    mod, embedded = _dit_blocks.adaln_single(b, cfg, b.input((batch,)))
    text = _dit_blocks.caption_projection(b, caption, dim)
    text = b.move("encoder_hidden_states_spatial", text, (spatial_n, *text.shape[1:]), what="repeat_interleave")
    mod_spatial = b.move("timestep_spatial", mod, (spatial_n, mod.shape[1]), what="repeat_interleave")
    mod_temporal = b.move("timestep_temp", mod, (temporal_n, mod.shape[1]), what="repeat_interleave")
    for i in range(cfg.num_layers):
        with b.scope("transformer_blocks", i):
            x = _dit_blocks.ada_norm_single_block(b, cfg, x, mod_spatial, axis="spatial", context=text)
        x = b.move(f"spatial_to_temporal.{i}", x, (temporal_n, frames, dim), what="frames_to_sequence")
        if i == 0 and frames > 1:
            x = b.elementwise("temp_pos_embed_add", [x, b.input((1, frames, dim))], "add")
        with b.scope("temporal_transformer_blocks", i):
            x = _dit_blocks.ada_norm_single_block(b, cfg, x, mod_temporal, axis="temporal")
        x = b.move(f"temporal_to_spatial.{i}", x, (spatial_n, patches, dim), what="sequence_to_frames")
    embedded = b.move("embedded_timestep_spatial", embedded, (spatial_n, dim), what="repeat_interleave")
    x = _dit_blocks.output_layer_single(b, cfg, x, embedded)
    x = _dit_blocks.unpatchify(b, x, grid, cfg.patch_size, cfg.out_channels)
    # reshape(B, F, C, H, W).permute(0, 2, 1, 3, 4): a view, read strided by the next op.
    return _blocks.view(x, (batch, cfg.out_channels, frames, h, w))


def denoiser(cfg: DiTConfig) -> _diffusion.Emit:
    """The transformer as an emitter on video latents; the T5 states are a graph input."""

    def emit(b: GraphBuilder, x: Tensor) -> Tensor:
        return latte_transformer(b, cfg, x, b.input((x.shape[0], TEXT_TOKENS, cfg.caption_channels)))

    return emit


def decode_stage(name: str, latents_shape: tuple[int, ...]) -> OpGraph:
    """`LattePipeline.decode_latents`: (B, C, F, h, w) -> frames (B*F, C, h, w) (a permute copy),
    `/ scaling_factor`, the image VAE decoder on all B*F frames, `torch.cat` of the chunks."""
    batch, ch, frames, h, w = latents_shape
    b = GraphBuilder(name, "vae_decoder")
    z = b.move("latents_to_frames", b.input(latents_shape), (batch * frames, ch, h, w), what="permute")
    z = b.elementwise("latents_scale", [z], "mul")
    with b.scope("vae"):
        image = _vae.vae_decoder(b, VAE, z)
    if batch * frames > DECODE_CHUNK:
        b.move("frames_concat", image, image.shape, what="concat")
    return b.build()


def _latents(resolution: int, batch: int, frames: int, cfg: DiTConfig) -> tuple[int, int, int, int, int]:
    side = pipe.latent_side(resolution, VAE.downscale, cfg.patch_size)
    return (batch, cfg.in_channels, frames, side, side)


def build_pipeline(resolution: int, batch: int, frames: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """T5 once (2N prompts with CFG), transformer x steps (batch 2N), per-frame VAE decode."""
    tcfg = transformer_config(config)
    if tcfg.caption_channels != pipe.T5_XXL.d_model or tcfg.in_channels != VAE.latent_channels:
        raise InputError("Latte config does not match T5-XXL (4096-wide states) and the SD VAE (4 latent channels)")
    latents = _latents(resolution, batch, frames, tcfg)
    return pipe.t5_pipeline(
        "latte", latents=latents, denoiser=denoiser(tcfg), tokens=TEXT_TOKENS, cfg=cfg,
        learned_sigma=tcfg.out_channels == 2 * tcfg.in_channels, decode=decode_stage("latte.decode", latents), steps=steps,
    )  # fmt: skip


def build_transformer(resolution: int, batch: int, frames: int, config: str) -> OpGraph:
    """One transformer forward on (batch, 4, frames, resolution/8, resolution/8) latents."""
    tcfg = transformer_config(config)
    return _diffusion.component_graph(
        "latte_transformer", pipe.STAGE, denoiser(tcfg), _latents(resolution, batch, frames, tcfg)
    )


def build_text_encoder(batch: int) -> OpGraph:
    """T5-XXL v1.1 encoder on `batch` prompts of 120 tokens."""
    return pipe.t5_text_encoder("latte_text_encoder", batch, TEXT_TOKENS, prefix=False)


def build_vae_decoder(resolution: int, batch: int, frames: int) -> OpGraph:
    """The SD VAE decoder on every frame (`AutoencoderKL.decode` on batch*frames latents)."""
    side = pipe.latent_side(resolution, VAE.downscale, 1)
    return _diffusion.vae_decoder_graph("latte_vae_decoder", VAE, side, batch * frames)


_REFERENCE = (
    "diffusers LatteTransformer3DModel (maxin-cn/Latte-1) / AutoencoderKL, transformers T5EncoderModel "
    "(t5-v1_1-xxl), LattePipeline"
)

MODELS = family_specs(
    "ttv",
    _REFERENCE,
    ("latte", build_pipeline, {"resolution": 512, "batch": 1, "frames": 16, "steps": 50, "cfg": True, "config": ""},
     "Latte-1 text-to-video: T5-XXL, spatial/temporal transformer x steps (CFG), per-frame SD VAE decoder"),
    [
        ("latte_transformer", build_transformer, {"resolution": 512, "batch": 1, "frames": 16, "config": ""},
         "Latte-1 transformer (28 spatial + 28 temporal blocks), one denoising step (1.06B params)"),
        ("latte_text_encoder", build_text_encoder, {"batch": 1},
         "Latte-1 text encoder (T5-XXL v1.1 encoder, 120 tokens)"),
        ("latte_vae_decoder", build_vae_decoder, {"resolution": 512, "batch": 1, "frames": 16},
         "Latte-1 VAE decoder (SD AutoencoderKL.decode on every frame)"),
    ],
)
