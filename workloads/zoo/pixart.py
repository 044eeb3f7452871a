"""PixArt-alpha 1024px (Chen et al., "PixArt-alpha: Fast Training of Diffusion Transformer for
Photorealistic Text-to-Image Synthesis", ICLR 2024): the text-to-image pipeline and its three
components.

References: diffusers `PixArtTransformer2DModel` from the published
`PixArt-alpha/PixArt-XL-2-1024-MS` transformer config (28 `BasicTransformerBlock`s,
hidden 1152 = 16 heads x 72, patch 2, adaLN-single, cross-attention to T5 states projected
4096 -> 1152 by `caption_projection`, micro-conditions: resolution and aspect-ratio
embeddings, learned sigma: 8 output channels), transformers `T5EncoderModel` (T5-XXL v1.1,
`_t5.py`) and the sd-vae-ft-ema `AutoencoderKL` (the Stable Diffusion VAE, `sd15.VAE`).
Parameters match diffusers exactly: transformer 611,349,152 (the paper's "0.6B").

Pipeline (`PixArtAlphaPipeline.__call__`): T5 on the prompt and the negative prompt padded to
120 tokens (`max_sequence_length`), 20 steps (the pipeline default, with the
DPMSolverMultistepScheduler of the published checkpoint: the paper's DPM-Solver sampler),
CFG on batch 2N, learned-sigma split, one VAE decode.
Assumptions: square images (the pipeline's aspect-ratio binning snaps any request to a bin
of about 1024^2 pixels; only square bins are modelled); all 120 text tokens are attended
(the padding mask changes no FLOPs).
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
from .blocks.dit_blocks import DiTConfig
from .blocks.specs import family_specs
from .sd15 import VAE

TEXT_TOKENS = 120  # PixArtAlphaPipeline max_sequence_length

# PixArt-alpha/PixArt-XL-2-1024-MS, transformer/config.json
TRANSFORMER_CONFIG = MappingProxyType(
    {
        "_class_name": "Transformer2DModel",
        "_diffusers_version": "0.22.0.dev0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": 72,
        "attention_type": "default",
        "caption_channels": 4096,
        "cross_attention_dim": 1152,
        "double_self_attention": False,
        "dropout": 0.0,
        "in_channels": 4,
        "norm_elementwise_affine": False,
        "norm_eps": 1e-06,
        "norm_num_groups": 32,
        "norm_type": "ada_norm_single",
        "num_attention_heads": 16,
        "num_embeds_ada_norm": 1000,
        "num_layers": 28,
        "num_vector_embeds": None,
        "only_cross_attention": False,
        "out_channels": 8,
        "patch_size": 2,
        "sample_size": 128,
        "upcast_attention": False,
        "use_linear_projection": False,
    }
)

# PixArtTransformer2DModel.__init__ defaults (diffusers 0.42).
_DEFAULTS: dict[str, Any] = {
    "num_attention_heads": 16,
    "attention_head_dim": 72,
    "in_channels": 4,
    "out_channels": 8,
    "num_layers": 28,
    "cross_attention_dim": 1152,
    "attention_bias": True,
    "sample_size": 128,
    "patch_size": 2,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "norm_type": "ada_norm_single",
    "norm_elementwise_affine": False,
    "use_additional_conditions": None,
    "caption_channels": None,
    "attention_type": "default",
}


def transformer_config(path: str = "") -> DiTConfig:
    """The published config, or the diffusers transformer `config.json` at `path` instead."""
    cfg = _dit_blocks.read_config(
        path, TRANSFORMER_CONFIG, "PixArt-alpha XL/2 1024", defaults=_DEFAULTS, norm_types=("ada_norm_single",)
    )
    if cfg.cross_attention_dim is None:
        raise InputError(f"{path or 'PixArt-alpha'}: PixArt needs cross_attention_dim (the text cross-attention width)")
    return cfg


def pixart_transformer(b: GraphBuilder, cfg: DiTConfig, x: Tensor, caption: Tensor) -> Tensor:
    """`PixArtTransformer2DModel.forward`: latents (N, 4, h, w), T5 states (N, L, 4096)."""
    n, _, h, w = x.shape
    grid = (_dit_blocks.latent_tokens(cfg, h, "PixArt"), _dit_blocks.latent_tokens(cfg, w, "PixArt"))
    x = _dit_blocks.patch_embed(b, x, cfg.inner_dim, cfg.patch_size)
    mod, embedded = _dit_blocks.adaln_single(b, cfg, b.input((n,)))
    context = caption
    if cfg.caption_channels is not None:
        context = _dit_blocks.caption_projection(b, caption, cfg.inner_dim)
    if context.shape[-1] != cfg.cross_attention_dim:
        raise InputError(f"PixArt cross-attends to {cfg.cross_attention_dim}-wide states, got {context.shape[-1]}")
    for i in range(cfg.num_layers):
        with b.scope("transformer_blocks", i):
            x = _dit_blocks.ada_norm_single_block(b, cfg, x, mod, axis="spatial", context=context)
    x = _dit_blocks.output_layer_single(b, cfg, x, embedded)
    return _dit_blocks.unpatchify(b, x, grid, cfg.patch_size, cfg.out_channels)


def denoiser(cfg: DiTConfig, text_dim: int) -> _diffusion.Emit:
    """The transformer as an emitter on latents; the T5 states are a graph input."""

    def emit(b: GraphBuilder, x: Tensor) -> Tensor:
        return pixart_transformer(b, cfg, x, b.input((x.shape[0], TEXT_TOKENS, text_dim)))

    return emit


def _text_dim(cfg: DiTConfig) -> int:
    return cfg.caption_channels or cfg.cross_attention_dim or 0


def build_pipeline(resolution: int, batch: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """T5 once (2N prompts with CFG), transformer x steps (batch 2N), VAE decoder once."""
    tcfg = transformer_config(config)
    if _text_dim(tcfg) != pipe.T5_XXL.d_model:
        raise InputError(f"transformer text width {_text_dim(tcfg)} != T5-XXL's {pipe.T5_XXL.d_model}")
    side = pipe.latent_side(resolution, VAE.downscale, tcfg.patch_size)
    latents = (batch, VAE.latent_channels, side, side)
    return pipe.t5_pipeline(
        "pixart_alpha", latents=latents, denoiser=denoiser(tcfg, pipe.T5_XXL.d_model), tokens=TEXT_TOKENS, cfg=cfg,
        learned_sigma=tcfg.out_channels == 2 * tcfg.in_channels,
        decode=_diffusion.decode_stage("pixart_alpha.decode", latents, VAE), steps=steps,
    )  # fmt: skip


def build_transformer(resolution: int, batch: int, config: str) -> OpGraph:
    """One transformer forward on (batch, 4, resolution/8, resolution/8) latents, 120 T5 tokens."""
    tcfg = transformer_config(config)
    side = pipe.latent_side(resolution, VAE.downscale, tcfg.patch_size)
    return _diffusion.component_graph(
        "pixart_alpha_transformer", pipe.STAGE, denoiser(tcfg, _text_dim(tcfg)), (batch, tcfg.in_channels, side, side)
    )


def build_text_encoder(batch: int) -> OpGraph:
    """T5-XXL v1.1 encoder on `batch` prompts of 120 tokens."""
    return pipe.t5_text_encoder("pixart_alpha_text_encoder", batch, TEXT_TOKENS, prefix=False)


def build_vae_decoder(resolution: int, batch: int) -> OpGraph:
    """sd-vae-ft-ema `AutoencoderKL.decode` (post_quant_conv + decoder)."""
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return _diffusion.vae_decoder_graph("pixart_alpha_vae_decoder", VAE, side, batch)


_REFERENCE = (
    "diffusers PixArtTransformer2DModel (PixArt-alpha/PixArt-XL-2-1024-MS) / AutoencoderKL, "
    "transformers T5EncoderModel (t5-v1_1-xxl), PixArtAlphaPipeline"
)

MODELS = family_specs(
    "diffusion-tti",
    _REFERENCE,
    ("pixart_alpha", build_pipeline, {"resolution": 1024, "batch": 1, "steps": 20, "cfg": True, "config": ""},
     "PixArt-alpha 1024px text-to-image: T5-XXL, transformer x steps (CFG), SD VAE decoder"),
    [
        ("pixart_alpha_transformer", build_transformer, {"resolution": 1024, "batch": 1, "config": ""},
         "PixArt-alpha XL/2 transformer, one denoising step (611.3M params)"),
        ("pixart_alpha_text_encoder", build_text_encoder, {"batch": 1},
         "PixArt-alpha text encoder (T5-XXL v1.1 encoder, 120 tokens)"),
        ("pixart_alpha_vae_decoder", build_vae_decoder, {"resolution": 1024, "batch": 1},
         "PixArt-alpha VAE decoder (sd-vae-ft-ema AutoencoderKL.decode)"),
    ],
)
