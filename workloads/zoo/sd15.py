"""Stable Diffusion 1.5: the text-to-image pipeline and its three components.

Configs are the published `runwayml/stable-diffusion-v1-5` `config.json` files (unet, vae,
text_encoder = openai/clip-vit-large-patch14). Parameter counts match diffusers /
transformers exactly: UNet 859,520,964; VAE 83,653,863 (decoder + post_quant_conv
49,490,199); text encoder 123,060,480.
"""

from __future__ import annotations

from types import MappingProxyType

from ..errors import InputError
from ..ir import OpGraph
from ..registry import ModelSpec
from . import _diffusion
from ._clip import CLIPTextConfig
from ._config import load_json_config
from ._unet2d import UNetConfig
from ._vae import VAEConfig

UNET_CONFIG = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.6.0",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    }
)

VAE_CONFIG = MappingProxyType(
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

TEXT_ENCODER_CONFIG = MappingProxyType(
    {
        "_name_or_path": "openai/clip-vit-large-patch14",
        "architectures": ["CLIPTextModel"],
        "hidden_act": "quick_gelu",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "vocab_size": 49408,
    }
)

VAE = VAEConfig.from_dict(VAE_CONFIG, "SD 1.5 VAE")
TEXT_ENCODER = _diffusion.TextEncoder("text_encoder", CLIPTextConfig.from_dict(TEXT_ENCODER_CONFIG, "SD 1.5 text encoder"))


def unet_config(path: str = "") -> UNetConfig:
    """The SD 1.5 UNet config, or the diffusers unet `config.json` at `path` instead."""
    if not isinstance(path, str):
        raise InputError(f"option 'config' expects a path to a unet config.json, got {path!r}")
    if not path:
        return UNetConfig.from_dict(UNET_CONFIG, "SD 1.5 UNet")
    return UNetConfig.from_dict(load_json_config(path), f"UNet config {path}")


def build_pipeline(resolution: int, batch: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """Text encoder once, `steps` UNet steps (with CFG: batch 2N), VAE decoder once."""
    return _diffusion.text_to_image(
        "sd15",
        text_encoder=lambda n: _diffusion.text_encoder_graph("sd15.text_encoder", [TEXT_ENCODER], n),
        denoiser=_diffusion.unet_denoiser(unet_config(config), TEXT_ENCODER.config.hidden_size),
        vae=VAE,
        resolution=resolution,
        batch=batch,
        steps=steps,
        cfg=cfg,
    )


def build_unet(resolution: int, batch: int, config: str) -> OpGraph:
    """One UNet forward on (batch, 4, resolution/8, resolution/8) latents and 77 text tokens."""
    unet = unet_config(config)
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return _diffusion.component_graph(
        "sd15_unet", "unet", _diffusion.unet_denoiser(unet), (batch, unet.in_channels, side, side)
    )


def build_vae_decoder(resolution: int, batch: int) -> OpGraph:
    """`AutoencoderKL.decode`: post_quant_conv + decoder, latents -> (batch, 3, resolution, resolution)."""
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return _diffusion.component_graph(
        "sd15_vae_decoder", "vae_decoder", _diffusion.vae_decode(VAE), (batch, VAE.latent_channels, side, side)
    )


def build_text_encoder(batch: int) -> OpGraph:
    """CLIP ViT-L/14 text transformer on `batch` prompts of 77 tokens."""
    return _diffusion.text_encoder_graph("sd15_text_encoder", [TEXT_ENCODER], batch, prefix=False)


_FAMILY = "diffusion-tti"
_REFERENCE = "diffusers UNet2DConditionModel / AutoencoderKL, transformers CLIPTextModel"

MODELS = (
    ModelSpec(
        "sd15",
        build_pipeline,
        MappingProxyType({"resolution": 512, "batch": 1, "steps": 50, "cfg": True, "config": ""}),
        "Stable Diffusion 1.5 text-to-image: CLIP text encoder, UNet x steps (CFG), VAE decoder",
        _FAMILY,
        _REFERENCE,
    ),
    ModelSpec(
        "sd15_unet",
        build_unet,
        MappingProxyType({"resolution": 512, "batch": 1, "config": ""}),
        "Stable Diffusion 1.5 UNet, one denoising step (859.5M params)",
        _FAMILY,
        _REFERENCE,
        component=True,
    ),
    ModelSpec(
        "sd15_vae_decoder",
        build_vae_decoder,
        MappingProxyType({"resolution": 512, "batch": 1}),
        "Stable Diffusion 1.5 VAE decoder (AutoencoderKL.decode)",
        _FAMILY,
        _REFERENCE,
        component=True,
    ),
    ModelSpec(
        "sd15_text_encoder",
        build_text_encoder,
        MappingProxyType({"batch": 1}),
        "Stable Diffusion 1.5 text encoder (CLIP ViT-L/14 text transformer, 77 tokens)",
        _FAMILY,
        _REFERENCE,
        component=True,
    ),
)
