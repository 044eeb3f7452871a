"""Latent-diffusion pipelines composed from their components (diffusers pipeline semantics).

A text-to-image pipeline runs the text encoder(s) once, the denoiser `steps` times and the
VAE decoder once. One denoising step is built once and appended with `repeat=steps`, so
identical steps are evaluated once and counted `steps` times. With classifier-free
guidance the denoiser runs on the unconditional and conditional batch together (batch
2N), the text encoder encodes both the negative and the positive prompts (batch 2N), and
the guidance combine `uncond + scale * (text - uncond)` runs on the latents every step.

Stages: "text_encoder", "unet" (the whole denoising step: CFG concat, denoiser, guidance,
scheduler update) and "vae_decoder". Component op names are prefixed with the pipeline's
attribute names (`text_encoder.`, `unet.`, `vae.`), as in diffusers.

Not modeled: drawing the initial noise, `scheduler.scale_model_input` (the identity for
DDIM/PNDM) and the image post-processing after the decoder. The scheduler update is a
DDIM-style step (two fused multiply-adds over the latents).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from ...ir import OpGraph
from . import layers as _blocks
from .clip import SEQ_LEN, CLIPTextConfig, clip_text_encoder
from .unet2d import UNetConfig, unet2d_condition
from .vae import VAEConfig, vae_decoder

# Emits a network on its input inside a builder and returns its output.
Emit = Callable[[GraphBuilder, Tensor], Tensor]


def latent_size(resolution: int, downscale: int) -> int:
    """Latent side for an image side of `resolution` pixels (512 -> 64 for the SD VAE)."""
    if resolution % downscale:
        raise InputError(f"resolution {resolution} is not divisible by the VAE downscale factor {downscale}")
    return resolution // downscale


def component_graph(name: str, stage: str, emit: Emit, input_shape: tuple[int, ...]) -> OpGraph:
    """A standalone component (UNet, decoder) on a graph input of `input_shape`."""
    b = GraphBuilder(name, stage)
    emit(b, b.input(input_shape))
    return b.build()


# -- components as emitters --------------------------------------------------------------
@dataclass(frozen=True)
class TextEncoder:
    """One text encoder of a pipeline: its attribute name, config and projection head."""

    attr: str  # "text_encoder", "text_encoder_2"
    config: CLIPTextConfig
    with_projection: bool = False


def text_encoder_graph(
    name: str, encoders: Sequence[TextEncoder], batch: int, *, prefix: bool = True, seq_len: int = SEQ_LEN
) -> OpGraph:
    """All text encoders on `batch` prompts; SDXL-style pipelines concat their hidden states.

    With `prefix` the ops are named `<attr>.<module path>` as in a pipeline; a standalone
    encoder (one encoder, prefix=False) has the bare transformers module paths.
    """
    b = GraphBuilder(name, "text_encoder")
    hidden = []
    for enc in encoders:
        with b.scope(enc.attr) if prefix else nullcontext():
            h, _ = clip_text_encoder(b, enc.config, batch, seq_len=seq_len, with_projection=enc.with_projection)
        hidden.append(h)
    if len(hidden) > 1:
        b.concat("prompt_embeds_concat", hidden, dim=2)
    return b.build()


def unet_denoiser(cfg: UNetConfig, context_dim: int | None = None, seq_len: int = SEQ_LEN) -> Emit:
    """The UNet as an emitter on text states (N, seq_len, context_dim), a graph input.

    `context_dim` is the text encoders' hidden width (default: the UNet's
    cross_attention_dim); a mismatch with the UNet config raises `InputError`.
    """

    def emit(b: GraphBuilder, sample: Tensor) -> Tensor:
        context = b.input((sample.shape[0], seq_len, context_dim or cfg.cross_attention_dim))
        return unet2d_condition(b, cfg, sample, context)

    return emit


def vae_decode(cfg: VAEConfig) -> Emit:
    """`AutoencoderKL.decode` (post_quant_conv + decoder) as an emitter."""
    return lambda b, latents: vae_decoder(b, cfg, latents)


def vae_decoder_graph(name: str, vae: VAEConfig, side: int, images: int) -> OpGraph:
    """Standalone `AutoencoderKL.decode` in stage "vae_decoder" on `images` latents of `side`^2
    (a video's frames are decoded as one batch of images)."""
    return component_graph(name, "vae_decoder", vae_decode(vae), (images, vae.latent_channels, side, side))


# -- the pipeline ---------------------------------------------------------------------------
def guidance_combine(b: GraphBuilder, pred: Tensor, half_shape: tuple[int, ...]) -> Tensor:
    """Classifier-free guidance on a 2N-batch prediction, ops under `guidance.`:
    `uncond + scale * (cond - uncond)` over its two halves of `half_shape` (chunk(2): views)."""
    uncond = cond = _blocks.view(pred, half_shape)
    with b.scope("guidance"):
        diff = b.elementwise("sub", [cond, uncond], "sub")
        diff = b.elementwise("scale", [diff], "mul")
        return b.add("add", uncond, diff)


def scheduler_update(b: GraphBuilder, latents: Tensor, eps: Tensor) -> Tensor:
    """DDIM-style scheduler step under `scheduler.`: predicted x0, then the previous sample."""
    with b.scope("scheduler"):
        x0 = b.elementwise("pred_original_sample", [latents, eps], "axpby")
        return b.elementwise("prev_sample", [x0, eps], "axpby")


def denoise_step(
    name: str,
    latents_shape: tuple[int, ...],
    denoiser: Emit,
    *,
    cfg: bool,
    attr: str = "unet",
    stage: str = "unet",
    prefix: str = "",
    cfg_concat: str = "concat_latents",
) -> OpGraph:
    """One denoising step on latents (N, C, ...), in `stage` ("unet" by default).

    CFG concat of the latents (batch 2N, op `guidance.<cfg_concat>`) -> denoiser (ops under
    `attr`) -> guidance combine on the two halves of its prediction -> scheduler update
    (DDIM-style: predicted x0, then the previous sample). With `prefix` every op name is
    nested under it (one stage of a cascade, e.g. `decoder.`).
    """
    b = GraphBuilder(name, stage)
    latents = b.input(latents_shape)
    with b.scope(prefix) if prefix else nullcontext():
        x = b.concat(f"guidance.{cfg_concat}", [latents, latents], dim=0) if cfg else latents
        with b.scope(attr):
            eps = denoiser(b, x)
        if eps.shape[1:] != latents.shape[1:]:
            raise InputError(f"denoiser output {eps.shape[1:]} does not match the latents {latents.shape[1:]}")
        if cfg:
            eps = guidance_combine(b, eps, latents.shape)
        scheduler_update(b, latents, eps)
    return b.build()


def decode_stage(name: str, latents_shape: tuple[int, ...], vae: VAEConfig, attr: str = "vae") -> OpGraph:
    """Stage "vae_decoder": `latents / scaling_factor (+ shift_factor)`, then the decoder."""
    b = GraphBuilder(name, "vae_decoder")
    z = b.elementwise("latents_scale", [b.input(latents_shape)], "mul")
    if vae.shift_factor is not None:
        z = b.elementwise("latents_shift", [z], "add")
    with b.scope(attr):
        vae_decoder(b, vae, z)
    return b.build()


def text_to_image(
    name: str,
    *,
    text_encoder: Callable[[int], OpGraph],
    denoiser: Emit,
    vae: VAEConfig,
    resolution: int,
    batch: int,
    steps: int,
    cfg: bool,
) -> OpGraph:
    """The whole pipeline: `text_encoder(prompt_batch)` once, `steps` denoising steps, decode.

    The three stages are one DAG: the denoising steps depend on the text encoder's outputs,
    the decoder on the last step.
    """
    side = latent_size(resolution, vae.downscale)
    latents = (batch, vae.latent_channels, side, side)
    text = text_encoder(2 * batch if cfg else batch)
    step = denoise_step(f"{name}.step", latents, denoiser, cfg=cfg)
    decode = decode_stage(f"{name}.decode", latents, vae)
    graph = OpGraph(name)
    graph.extend(text)
    graph.extend(step, after=text.sinks(), repeat=steps)
    graph.extend(decode, after=step.sinks())
    return graph
