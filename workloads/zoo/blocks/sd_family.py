"""The Stable Diffusion family as data: one `LatentDiffusionModel` gives a pipeline and its
three components (UNet, VAE decoder, text encoder(s)) as registry entries.

A family member is fully described by its published configs (diffusers unet/vae
`config.json`, transformers text-encoder `config.json`) and its default resolution; the
graphs are built by the shared builders (`_unet2d`, `_vae`, `_clip`) and composed by
`_diffusion.text_to_image`. Used by `sd15`, `sd21` and `sdxl`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...ir import OpGraph
from ...registry import ModelSpec
from . import diffusion as _diffusion
from .config import option_config
from .specs import family_specs
from .unet2d import UNetConfig
from .vae import VAEConfig

FAMILY = "diffusion-tti"
REFERENCE = "diffusers UNet2DConditionModel / AutoencoderKL, transformers CLIPTextModel(WithProjection)"


@dataclass(frozen=True)
class LatentDiffusionModel:
    """A Stable-Diffusion-style text-to-image model: configs, default size and names.

    `encoders` are the pipeline's text encoders in order; their final hidden states are
    concatenated (SDXL) into the UNet's `cross_attention_dim`.
    """

    name: str  # registry prefix: "sd21" -> sd21, sd21_unet, sd21_vae_decoder, sd21_text_encoder
    title: str  # "Stable Diffusion 2.1"
    unet: Mapping[str, Any]  # diffusers unet config.json
    vae: VAEConfig
    encoders: tuple[_diffusion.TextEncoder, ...]
    resolution: int
    reference: str = REFERENCE  # implementations the builders follow

    @property
    def context_dim(self) -> int:
        """Width of the text states the UNet cross-attends to (concatenated encoders)."""
        return sum(enc.config.hidden_size for enc in self.encoders)

    def unet_config(self, path: str = "") -> UNetConfig:
        """The published UNet config, or the diffusers unet `config.json` at `path` instead."""
        return UNetConfig.from_dict(
            *option_config(path, self.unet, what=f"{self.title} UNet", file_what=f"UNet config {path}", file="unet config.json")
        )

    # -- builders (registry entry points) ----------------------------------------------
    def build_pipeline(self, resolution: int, batch: int, steps: int, cfg: bool, config: str) -> OpGraph:
        """Text encoder(s) once, `steps` UNet steps (CFG: batch 2N), VAE decoder once."""
        return _diffusion.text_to_image(
            self.name,
            text_encoder=lambda n: _diffusion.text_encoder_graph(f"{self.name}.text_encoder", self.encoders, n),
            denoiser=_diffusion.unet_denoiser(self.unet_config(config), self.context_dim),
            vae=self.vae,
            resolution=resolution,
            batch=batch,
            steps=steps,
            cfg=cfg,
        )

    def build_unet(self, resolution: int, batch: int, config: str) -> OpGraph:
        """One UNet forward on (batch, C, resolution/8, resolution/8) latents and 77 text tokens."""
        unet = self.unet_config(config)
        side = _diffusion.latent_size(resolution, self.vae.downscale)
        return _diffusion.component_graph(
            f"{self.name}_unet", "unet", _diffusion.unet_denoiser(unet), (batch, unet.in_channels, side, side)
        )

    def build_vae_decoder(self, resolution: int, batch: int) -> OpGraph:
        """`AutoencoderKL.decode` (post_quant_conv + decoder): latents -> (batch, 3, resolution, resolution)."""
        side = _diffusion.latent_size(resolution, self.vae.downscale)
        return _diffusion.vae_decoder_graph(f"{self.name}_vae_decoder", self.vae, side, batch)

    def build_text_encoder(self, batch: int) -> OpGraph:
        """All text encoders on `batch` prompts of 77 tokens (bare module paths for a single one)."""
        return _diffusion.text_encoder_graph(
            f"{self.name}_text_encoder", self.encoders, batch, prefix=len(self.encoders) > 1
        )

    # -- registry ------------------------------------------------------------------------
    def specs(self, unet_params: str, encoder_summary: str, encoder_detail: str = "") -> tuple[ModelSpec, ...]:
        """The four registry entries: pipeline, `_unet`, `_vae_decoder`, `_text_encoder`.

        `encoder_summary` names the text encoder(s) in the pipeline's summary, `encoder_detail`
        (default: the same) in the text encoder's.
        """
        r = self.resolution
        return family_specs(
            FAMILY,
            self.reference,
            (
                self.name,
                self.build_pipeline,
                {"resolution": r, "batch": 1, "steps": 50, "cfg": True, "config": ""},
                f"{self.title} text-to-image: {encoder_summary}, UNet x steps (CFG), VAE decoder",
            ),
            [
                (
                    f"{self.name}_unet",
                    self.build_unet,
                    {"resolution": r, "batch": 1, "config": ""},
                    f"{self.title} UNet, one denoising step ({unet_params} params)",
                ),
                (
                    f"{self.name}_vae_decoder",
                    self.build_vae_decoder,
                    {"resolution": r, "batch": 1},
                    f"{self.title} VAE decoder (AutoencoderKL.decode)",
                ),
                (
                    f"{self.name}_text_encoder",
                    self.build_text_encoder,
                    {"batch": 1},
                    f"{self.title} text encoder ({encoder_detail or encoder_summary}, 77 tokens)",
                ),
            ],
        )
