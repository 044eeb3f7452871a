"""Pipeline composition for the diffusion-transformer family (PixArt-alpha, Latte, CogVideoX).

Same shape as `_diffusion.text_to_image` (text encoder once, one denoising step appended with
`repeat=steps`, decoder once, one DAG), with the step semantics of the diffusers
transformer pipelines (`PixArtAlphaPipeline`, `LattePipeline`, `CogVideoXPipeline`):
classifier-free guidance combines the two halves of the *whole* prediction, and a
learned-sigma prediction (2x latent channels) is then split to its noise half (a view).
The denoising stage is named "transformer" and its component ops are prefixed
`transformer.` (the pipeline attribute), as diffusers names them.
"""

from __future__ import annotations

from ...builder import GraphBuilder
from ...errors import InputError
from ...ir import OpGraph
from . import layers as _blocks
from .diffusion import Emit, guidance_combine, scheduler_update
from .t5 import T5_V1_1_XXL, T5Config, t5_encoder

T5_XXL = T5Config.from_dict(T5_V1_1_XXL, "T5-XXL v1.1 encoder")
STAGE = "transformer"


def t5_text_encoder(name: str, batch: int, seq_len: int, *, prefix: bool = True) -> OpGraph:
    """T5-XXL v1.1 encoder (`T5EncoderModel`) on `batch` prompts padded to `seq_len` tokens.

    In a pipeline (`prefix`) the ops are named `text_encoder.<module path>`; standalone they
    carry the bare transformers module paths.
    """
    b = GraphBuilder(name, "text_encoder")
    if prefix:
        with b.scope("text_encoder"):
            t5_encoder(b, T5_XXL, batch, seq_len)
    else:
        t5_encoder(b, T5_XXL, batch, seq_len)
    return b.build()


def guided_step(
    name: str, latents_shape: tuple[int, ...], denoiser: Emit, *, cfg: bool, learned_sigma: bool, channel_dim: int = 1
) -> OpGraph:
    """One denoising step on the latents (batch first), in stage "transformer".

    CFG concat (batch 2N) -> transformer -> guidance `uncond + s * (text - uncond)` on the full
    prediction -> learned-sigma split along `channel_dim` (a view) -> scheduler update.
    """
    b = GraphBuilder(name, STAGE)
    latents = b.input(latents_shape)
    x = b.concat("guidance.concat_latents", [latents, latents], dim=0) if cfg else latents
    with b.scope("transformer"):
        pred = denoiser(b, x)
    half = (latents_shape[0], *pred.shape[1:])
    if cfg:
        pred = guidance_combine(b, pred, half)
    if learned_sigma:
        split = list(half)
        split[channel_dim] //= 2
        pred = _blocks.view(pred, tuple(split))  # noise_pred.chunk(2, dim=channel)[0]
    if pred.shape[1:] != tuple(latents_shape[1:]):
        raise InputError(f"transformer prediction {pred.shape[1:]} does not match the latents {tuple(latents_shape[1:])}")
    scheduler_update(b, latents, pred)
    return b.build()


def compose(name: str, *, text: OpGraph | None, step: OpGraph, decode: OpGraph, steps: int) -> OpGraph:
    """Text encoder once (if any), `steps` denoising steps, decoder once: one connected DAG."""
    graph = OpGraph(name)
    after: tuple[str, ...] = ()
    if text is not None:
        graph.extend(text)
        after = text.sinks()
    graph.extend(step, after=after, repeat=steps)
    graph.extend(decode, after=step.sinks())
    return graph


def t5_pipeline(
    name: str,
    *,
    latents: tuple[int, ...],
    denoiser: Emit,
    tokens: int,
    cfg: bool,
    learned_sigma: bool,
    decode: OpGraph,
    steps: int,
) -> OpGraph:
    """A T5-conditioned transformer pipeline: T5-XXL once on the prompts padded to `tokens`
    (2N with CFG), `guided_step` on `latents` (N first) x `steps`, `decode` once."""
    batch = latents[0]
    text = t5_text_encoder(f"{name}.text_encoder", 2 * batch if cfg else batch, tokens)
    step = guided_step(f"{name}.step", latents, denoiser, cfg=cfg, learned_sigma=learned_sigma)
    return compose(name, text=text, step=step, decode=decode, steps=steps)


def latent_side(value: int, downscale: int, patch: int, what: str = "resolution") -> int:
    """Latent side for `value` pixels; `value` must be a multiple of downscale x patch so the
    latent splits into whole patches."""
    factor = downscale * patch
    if value % factor:
        raise InputError(f"{what} {value} is not divisible by {factor} (VAE downscale {downscale} x patch size {patch})")
    return value // downscale
