"""Stable Diffusion 2.1 (768-v): the text-to-image pipeline and its three components.

Configs are the published `stabilityai/stable-diffusion-2-1` `config.json` files:
- unet: like SD 1.5's but with 64-channel heads (`attention_head_dim` [5, 10, 20, 20]
  heads), linear proj_in/proj_out and 1024-wide cross-attention; 865,910,724 parameters.
  It is a v-prediction model, which changes the scheduler's arithmetic, not the network.
- text_encoder: OpenCLIP ViT-H/14's text tower as a transformers `CLIPTextModel` (hidden
  1024, 16 heads, GELU MLP of 4096). The pipeline uses the penultimate layer of OpenCLIP,
  which the conversion to transformers realizes by keeping 23 of the 24 layers (the last
  hidden state after `final_layer_norm` is then the penultimate layer's).
- vae: the SD VAE (`AutoencoderKL`, same config as SD 1.5's; scaling factor 0.18215).

Default resolution 768 (96x96 latents), 50 steps, classifier-free guidance.
"""

from __future__ import annotations

from types import MappingProxyType

from .blocks import diffusion as _diffusion
from .blocks.clip import OPENCLIP_VIT_H14_TEXT_CONFIG, CLIPTextConfig
from .blocks.sd_family import LatentDiffusionModel
from .blocks.vae import SD_VAE_CONFIG, VAEConfig

UNET_CONFIG = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.10.0.dev0",
        "act_fn": "silu",
        "attention_head_dim": [5, 10, 20, 20],
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 1024,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "sample_size": 96,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "upcast_attention": True,
        "use_linear_projection": True,
    }
)


VAE_CONFIG = MappingProxyType({**SD_VAE_CONFIG, "sample_size": 768})

SD21 = LatentDiffusionModel(
    name="sd21",
    title="Stable Diffusion 2.1",
    unet=UNET_CONFIG,
    vae=VAEConfig.from_dict(VAE_CONFIG, "SD 2.1 VAE"),
    encoders=(
        _diffusion.TextEncoder(
            "text_encoder", CLIPTextConfig.from_dict(OPENCLIP_VIT_H14_TEXT_CONFIG, "SD 2.1 text encoder (OpenCLIP ViT-H/14)")
        ),
    ),
    resolution=768,
)

MODELS = SD21.specs("865.9M", "OpenCLIP ViT-H/14 text encoder")
