"""ModelScope text-to-video (damo-vilab/text-to-video-ms-1.7b): pipeline and components.

diffusers `TextToVideoSDPipeline`: the OpenCLIP ViT-H text encoder (transformers
`CLIPTextModel`, 23 layers: the penultimate-layer text tower as published) runs once on the
prompts, the `UNet3DConditionModel` denoises (B, 4, F, h, w) video latents `steps` times
(with CFG on a 2B batch), and the SD VAE decoder decodes every frame (`decode_latents`
reshapes the latents to (B*F, 4, h, w) and decodes them as one batch). Default: 16 frames
at 256x256 (32x32 latents), 50 steps, CFG.

Configs are the published `unet/`, `text_encoder/` and `vae/` `config.json` files of the
model repository. Parameter counts match diffusers / transformers exactly (see
`tests/test_torch_video_llm.py`): UNet 1,411,233,860; text encoder 340,387,840; VAE decoder
(+ post_quant_conv) 49,490,199.

Pipeline layout notes: the scheduler's `permute(0, 2, 1, 3, 4).reshape(B*F, ...)` of the
latents and the noise prediction, and the same permute before decoding, act on tensors that
are already frame-major in memory (the UNet output and the scheduler output are permuted
views), so they are free views and not ops; the UNet's own layout copies are ops (see
`_unet3d`).
"""

from __future__ import annotations

from types import MappingProxyType

from ..ir import OpGraph
from .blocks import diffusion as _diffusion
from .blocks.clip import OPENCLIP_VIT_H14_TEXT_CONFIG, CLIPTextConfig
from .blocks.config import option_config
from .blocks.specs import family_specs
from .blocks.unet3d import UNet3DConfig, unet3d_condition
from .blocks.vae import SD_VAE_CONFIG, VAEConfig

UNET_CONFIG = MappingProxyType(
    {
        "_class_name": "UNet3DConditionModel",
        "_diffusers_version": "0.15.0.dev0",
        "act_fn": "silu",
        "attention_head_dim": 64,
        "block_out_channels": [320, 640, 1280, 1280],
        "cross_attention_dim": 1024,
        "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
        "downsample_padding": 1,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 32,
        "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    }
)


# The repository's vae/config.json is the Stable Diffusion AutoencoderKL (sample_size 256).
VAE_CONFIG = MappingProxyType({**SD_VAE_CONFIG, "sample_size": 256})

VAE = VAEConfig.from_dict(VAE_CONFIG, "ModelScope VAE")
TEXT_ENCODER = _diffusion.TextEncoder(
    "text_encoder", CLIPTextConfig.from_dict(OPENCLIP_VIT_H14_TEXT_CONFIG, "ModelScope text encoder")
)


def unet_config(path: str = "") -> UNet3DConfig:
    """The ModelScope UNet3D config, or the diffusers unet `config.json` at `path` instead."""
    return UNet3DConfig.from_dict(
        *option_config(path, UNET_CONFIG, what="ModelScope UNet3D", file_what=f"UNet3D config {path}", file="unet config.json")
    )


def unet_denoiser(cfg: UNet3DConfig, seq_len: int = 77) -> _diffusion.Emit:
    """The UNet3D as an emitter on video latents, with the text states as a graph input."""

    def emit(b, sample):
        context = b.input((sample.shape[0], seq_len, cfg.cross_attention_dim))
        return unet3d_condition(b, cfg, sample, context)

    return emit


def latents_shape(resolution: int, frames: int, batch: int, channels: int) -> tuple[int, int, int, int, int]:
    """(B, C, F, h, w) video latents for `frames` frames of `resolution` pixels."""
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return (batch, channels, frames, side, side)


def text_to_video(
    name: str, *, text_encoder: OpGraph, denoiser: _diffusion.Emit, latents: tuple[int, ...], steps: int, cfg: bool
) -> OpGraph:
    """Text encoder once, `steps` denoising steps on (B, C, F, h, w) latents, per-frame VAE decode."""
    n, c, f, h, w = latents
    step = _diffusion.denoise_step(f"{name}.step", latents, denoiser, cfg=cfg)
    decode = _diffusion.decode_stage(f"{name}.decode", (n * f, c, h, w), VAE)
    graph = OpGraph(name)
    graph.extend(text_encoder)
    graph.extend(step, after=text_encoder.sinks(), repeat=steps)
    graph.extend(decode, after=step.sinks())
    return graph


def build_pipeline(resolution: int, frames: int, batch: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """TextToVideoSDPipeline: CLIP text encoder, UNet3D x steps (CFG: batch 2B), per-frame VAE decoder."""
    unet = unet_config(config)
    text = _diffusion.text_encoder_graph("modelscope_t2v.text_encoder", [TEXT_ENCODER], 2 * batch if cfg else batch)
    return text_to_video(
        "modelscope_t2v",
        text_encoder=text,
        denoiser=unet_denoiser(unet),
        latents=latents_shape(resolution, frames, batch, unet.in_channels),
        steps=steps,
        cfg=cfg,
    )


def build_unet(resolution: int, frames: int, batch: int, config: str) -> OpGraph:
    """One UNet3D forward on (batch, 4, frames, resolution/8, resolution/8) latents and 77 text tokens."""
    unet = unet_config(config)
    return _diffusion.component_graph(
        "modelscope_t2v_unet", "unet", unet_denoiser(unet), latents_shape(resolution, frames, batch, unet.in_channels)
    )


def build_vae_decoder(resolution: int, frames: int, batch: int) -> OpGraph:
    """`AutoencoderKL.decode` on batch*frames latent frames -> (batch*frames, 3, resolution, resolution)."""
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return _diffusion.vae_decoder_graph("modelscope_t2v_vae_decoder", VAE, side, batch * frames)


def build_text_encoder(batch: int) -> OpGraph:
    """OpenCLIP ViT-H text tower (23 layers as published) on `batch` prompts of 77 tokens."""
    return _diffusion.text_encoder_graph("modelscope_t2v_text_encoder", [TEXT_ENCODER], batch, prefix=False)


_REFERENCE = "diffusers UNet3DConditionModel / AutoencoderKL, transformers CLIPTextModel (damo-vilab/text-to-video-ms-1.7b)"

MODELS = family_specs(
    "ttv",
    _REFERENCE,
    ("modelscope_t2v", build_pipeline,
     {"resolution": 256, "frames": 16, "batch": 1, "steps": 50, "cfg": True, "config": ""},
     "ModelScope text-to-video 1.7B: CLIP ViT-H text encoder, UNet3D x steps (CFG), per-frame VAE decoder"),
    [
        ("modelscope_t2v_unet", build_unet, {"resolution": 256, "frames": 16, "batch": 1, "config": ""},
         "ModelScope UNet3D, one denoising step (spatial + temporal attention and convs, 1.41B params)"),
        ("modelscope_t2v_vae_decoder", build_vae_decoder, {"resolution": 256, "frames": 16, "batch": 1},
         "ModelScope VAE decoder (SD AutoencoderKL.decode) applied to every frame"),
        ("modelscope_t2v_text_encoder", build_text_encoder, {"batch": 1},
         "ModelScope text encoder (OpenCLIP ViT-H text tower, 23 layers, 77 tokens)"),
    ],
)
