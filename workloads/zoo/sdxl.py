"""Stable Diffusion XL 1.0 (base): the text-to-image pipeline and its three components.

Configs are the published `stabilityai/stable-diffusion-xl-base-1.0` `config.json` files:
- unet: three levels (320, 640, 1280 channels), no attention at the first level, 1/2/10
  transformer layers per block at the other two, 2048-wide cross-attention and the
  `text_time` added embedding (micro-conditioning: sinusoidal `add_time_proj` of the six
  original-size / crop / target-size ids, concatenated with the pooled text embedding,
  then `add_embedding`); 2,567,463,684 parameters.
- text_encoder: CLIP ViT-L/14 (`CLIPTextModel`, 123,060,480 parameters).
- text_encoder_2: OpenCLIP ViT-bigG/14 with its projection (`CLIPTextModelWithProjection`:
  hidden 1280, 32 layers, 20 heads, GELU MLP of 5120, projection 1280; 694,659,840
  parameters). Its projected pooled output is the UNet's `text_embeds`.
- vae: the SD VAE architecture retrained for SDXL (scaling factor 0.13025).

The pipeline takes each encoder's penultimate hidden states and concatenates them to 2048
channels. transformers still runs every layer (and `final_layer_norm`, whose output feeds
the pooled embedding), so the work is that of full forwards; in this graph the concat
depends on each encoder's last op rather than on its penultimate layer, which changes no
cost. diffusers upcasts this VAE to fp32 (`force_upcast`); the simulator prices every op at
the architecture's word size, so that is not modeled.

Default resolution 1024 (128x128 latents), 50 steps, classifier-free guidance.
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
        "_diffusers_version": "0.19.0.dev0",
        "act_fn": "silu",
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280],
        "center_input_sample": False,
        "class_embed_type": None,
        "class_embeddings_concat": False,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "cross_attention_dim": 2048,
        "cross_attention_norm": None,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "encoder_hid_dim": None,
        "encoder_hid_dim_type": None,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_only_cross_attention": None,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_attention_heads": None,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "projection_class_embeddings_input_dim": 2816,
        "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": False,
        "resnet_time_scale_shift": "default",
        "sample_size": 128,
        "time_cond_proj_dim": None,
        "time_embedding_act_fn": None,
        "time_embedding_dim": None,
        "time_embedding_type": "positional",
        "timestep_post_act": None,
        "transformer_layers_per_block": [1, 2, 10],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "upcast_attention": None,
        "use_linear_projection": True,
    }
)


TEXT_ENCODER_2_CONFIG = MappingProxyType(
    {
        "architectures": ["CLIPTextModelWithProjection"],
        "hidden_act": "gelu",
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 20,
        "num_hidden_layers": 32,
        "projection_dim": 1280,
        "vocab_size": 49408,
    }
)

VAE_CONFIG = MappingProxyType(
    {**SD_VAE_CONFIG, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
)

SDXL = LatentDiffusionModel(
    name="sdxl",
    title="Stable Diffusion XL",
    unet=UNET_CONFIG,
    vae=VAEConfig.from_dict(VAE_CONFIG, "SDXL VAE"),
    encoders=(
        _diffusion.TextEncoder(
            "text_encoder", CLIPTextConfig.from_dict(CLIP_VIT_L14_TEXT_CONFIG, "SDXL text encoder (CLIP ViT-L/14)")
        ),
        _diffusion.TextEncoder(
            "text_encoder_2",
            CLIPTextConfig.from_dict(TEXT_ENCODER_2_CONFIG, "SDXL text encoder 2 (OpenCLIP ViT-bigG/14)"),
            with_projection=True,
        ),
    ),
    resolution=1024,
)

MODELS = SDXL.specs("2.57B", "CLIP ViT-L/14 + OpenCLIP ViT-bigG/14 text encoders")
