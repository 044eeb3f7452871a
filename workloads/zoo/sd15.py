"""Stable Diffusion 1.5: the text-to-image pipeline and its three components.

Configs are the published `runwayml/stable-diffusion-v1-5` `config.json` files (unet, vae =
the SD `AutoencoderKL` in `_vae.SD_VAE_CONFIG`, text_encoder = openai/clip-vit-large-patch14
in `_clip.CLIP_VIT_L14_TEXT_CONFIG`). Parameter counts match diffusers / transformers
exactly: UNet 859,520,964; VAE 83,653,863 (decoder + post_quant_conv 49,490,199); text
encoder 123,060,480.
"""

from __future__ import annotations

from types import MappingProxyType

from .blocks import diffusion as _diffusion
from .blocks.clip import CLIP_VIT_L14_TEXT_CONFIG, CLIPTextConfig
from .blocks.sd_family import LatentDiffusionModel
from .blocks.vae import SD_VAE_CONFIG, VAEConfig

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
VAE_CONFIG = SD_VAE_CONFIG
TEXT_ENCODER_CONFIG = CLIP_VIT_L14_TEXT_CONFIG

VAE = VAEConfig.from_dict(VAE_CONFIG, "SD 1.5 VAE")
TEXT_ENCODER = _diffusion.TextEncoder("text_encoder", CLIPTextConfig.from_dict(TEXT_ENCODER_CONFIG, "SD 1.5 text encoder"))

SD15 = LatentDiffusionModel(
    name="sd15",
    title="Stable Diffusion 1.5",
    unet=UNET_CONFIG,
    vae=VAE,
    encoders=(TEXT_ENCODER,),
    resolution=512,
    reference="diffusers UNet2DConditionModel / AutoencoderKL, transformers CLIPTextModel",
)

MODELS = SD15.specs("859.5M", "CLIP text encoder", "CLIP ViT-L/14 text transformer")
