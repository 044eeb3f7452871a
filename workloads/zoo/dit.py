"""DiT-XL/2 (Peebles & Xie, "Scalable Diffusion Models with Transformers", ICCV 2023):
class-conditional latent diffusion with a plain ViT denoiser, and its two components.

Reference: diffusers `DiTTransformer2DModel` built from the published
`facebook/DiT-XL-2-256` transformer config (28 blocks, hidden 1152, 16 heads x 72, patch 2,
adaLN-Zero, learned sigma: 8 output channels) and `DiTPipeline`; the VAE is
`stabilityai/sd-vae-ft-ema`, the Stable Diffusion `AutoencoderKL` architecture
(`sd15.VAE`). `facebook/DiT-XL-2-512` differs only in `sample_size` (a position-table buffer),
so `resolution=512` models it with the same parameters.

Parameters: 749,826,464, exactly diffusers' count. The paper's DiT-XL/2 has ~675M (the
original code: 674,834,720 trainable + a frozen 294,912-element position table): diffusers
gives every one of the 28 blocks its own `norm1.emb` (timestep MLP 256->1152->1152 and the
1001 x 1152 class table) where the original shares one embedder, 27 x 2,777,472 =
74,991,744 parameters more. Compute: 118.67 GMACs per image at 256px and 524.58 at 512px,
the paper's "118.6 / 524.6 Gflops" (it counts multiply-adds; Tables 1 and 4).

Pipeline (`DiTPipeline.__call__`): the loop carries the CFG-doubled latents; each step
duplicates the conditional half (a concat), runs the transformer on 2N (labels + the null
class 1000), guides only the 4 noise channels, re-concatenates them with the learned-sigma
channels, splits off the noise (a view) and updates all 2N latents. No text encoder.
Default 50 steps = `DiTPipeline`'s `num_inference_steps` default (as the other pipelines of
the zoo follow their diffusers defaults); the paper reports FID with 250 DDPM sampling steps
(Section 4, evaluation metrics) -- pass `steps=250` for that setting.

The output layer re-runs block 0's `norm1.emb` on (timestep, label) in diffusers
(`transformer_blocks[0].norm1.emb(...)`): modelled as weight-sharing `matmul` ops (class
"linear", no new parameters) so FLOPs match the reference exactly.
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
from .blocks.dit_blocks import DiTConfig
from .blocks.specs import family_specs
from .sd15 import VAE

# facebook/DiT-XL-2-256, transformer/config.json
TRANSFORMER_CONFIG = MappingProxyType(
    {
        "_class_name": "Transformer2DModel",
        "_diffusers_version": "0.12.0.dev0",
        "activation_fn": "gelu-approximate",
        "attention_bias": True,
        "attention_head_dim": 72,
        "cross_attention_dim": None,
        "dropout": 0.0,
        "in_channels": 4,
        "norm_elementwise_affine": False,
        "norm_num_groups": 32,
        "norm_type": "ada_norm_zero",
        "num_attention_heads": 16,
        "num_embeds_ada_norm": 1000,
        "num_layers": 28,
        "num_vector_embeds": None,
        "only_cross_attention": False,
        "out_channels": 8,
        "patch_size": 2,
        "sample_size": 32,
        "upcast_attention": False,
        "use_linear_projection": False,
    }
)

# DiTTransformer2DModel.__init__ defaults (diffusers 0.42).
_DEFAULTS: dict[str, Any] = {
    "num_attention_heads": 16,
    "attention_head_dim": 72,
    "in_channels": 4,
    "out_channels": None,
    "num_layers": 28,
    "attention_bias": True,
    "sample_size": 32,
    "patch_size": 2,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "norm_type": "ada_norm_zero",
    "norm_elementwise_affine": False,
}
NULL_CLASS_LABELS = 1  # CombinedTimestepLabelEmbeddings adds the CFG null class row


def transformer_config(path: str = "") -> DiTConfig:
    """The published config, or the diffusers transformer `config.json` at `path` instead."""
    cfg = _dit_blocks.read_config(path, TRANSFORMER_CONFIG, "DiT-XL/2", defaults=_DEFAULTS, norm_types=("ada_norm_zero",))
    if cfg.cross_attention_dim is not None:
        raise InputError(f"{path or 'DiT-XL/2'}: DiTTransformer2DModel has no cross-attention (cross_attention_dim: null)")
    return cfg


def dit_transformer(b: GraphBuilder, cfg: DiTConfig, x: Tensor) -> Tensor:
    """`DiTTransformer2DModel.forward` on latents (N, 4, h, w) -> (N, out_channels, h, w)."""
    n, _, h, w = x.shape
    grid = (_dit_blocks.latent_tokens(cfg, h, "DiT"), _dit_blocks.latent_tokens(cfg, w, "DiT"))
    t, labels = b.input((n,)), b.input((n,))
    x = _dit_blocks.patch_embed(b, x, cfg.inner_dim, cfg.patch_size)
    for i in range(cfg.num_layers):
        with b.scope("transformer_blocks", i):
            x = _dit_blocks.ada_norm_zero_block(b, cfg, x, t, labels)
    cond = _recomputed_conditioning(b, cfg, t, labels)
    mod = b.linear("proj_out_1", b.activation("conditioning_silu", cond, "silu"), 2 * cfg.inner_dim)
    x = b.layer_norm("norm_out", x, affine=False)
    x = _dit_blocks.modulate(b, "norm_out_modulate", x, _dit_blocks.rows(mod, 2), _dit_blocks.rows(mod, 2))
    x = b.linear("proj_out_2", x, cfg.patch_size**2 * cfg.out_channels)
    return _dit_blocks.unpatchify(b, x, grid, cfg.patch_size, cfg.out_channels)


def _recomputed_conditioning(b: GraphBuilder, cfg: DiTConfig, t: Tensor, labels: Tensor) -> Tensor:
    """`transformer_blocks[0].norm1.emb(timestep, class_labels)` run again for the output layer:
    the same weights, so products against them are `matmul`s (no parameters) and the label
    lookup is a gather."""
    (n,) = t.shape
    dim, feats = cfg.inner_dim, _dit_blocks.TIME_PROJ_DIM
    with b.scope("conditioning"):
        h = _blocks.sinusoidal_embedding(b, "time_proj", t, feats)
        with b.scope("timestep_embedder"):
            h = b.matmul("linear_1", h, b.input((feats, dim)))
            h = b.activation("act", h, "silu")
            h = b.matmul("linear_2", h, b.input((dim, dim)))
        label_emb = b.move("class_embedder", labels, (n, dim), what="gather")
        return b.add("add", h, label_emb)


def denoiser(cfg: DiTConfig) -> _diffusion.Emit:
    return lambda b, x: dit_transformer(b, cfg, x)


def denoise_step(name: str, latents_shape: tuple[int, ...], cfg: DiTConfig, guidance: bool) -> OpGraph:
    """One `DiTPipeline` step on the carried latents (2N with guidance, else N)."""
    b = GraphBuilder(name, pipe.STAGE)
    latents = b.input(latents_shape)
    n2, ch, h, w = latents_shape
    x = latents
    if guidance:
        half = _blocks.view(latents, (n2 // 2, ch, h, w))
        x = b.concat("guidance.concat_latents", [half, half], dim=0)
    with b.scope("transformer"):
        pred = dit_transformer(b, cfg, x)
    if pred.shape[1] not in (ch, 2 * ch):
        raise InputError(f"DiT predicts {pred.shape[1]} channels for {ch}-channel latents")
    eps_shape = (n2, ch, h, w)
    if guidance:
        half_eps = _diffusion.guidance_combine(b, pred, (n2 // 2, ch, h, w))  # eps split, then batch halves
        with b.scope("guidance"):
            eps = b.concat("concat_eps", [half_eps, half_eps], dim=0)
            if pred.shape[1] == 2 * ch:
                pred = b.concat("concat_rest", [eps, _blocks.view(pred, eps_shape)], dim=1)
            else:
                pred = eps
    eps = _blocks.view(pred, eps_shape)  # learned sigma: torch.split(noise_pred, C, dim=1)[0]
    _diffusion.scheduler_update(b, latents, eps)
    return b.build()


def build_pipeline(resolution: int, batch: int, steps: int, cfg: bool, config: str) -> OpGraph:
    """DiT-XL/2 class-to-image: transformer x steps (CFG: batch 2N), VAE decoder once."""
    tcfg = transformer_config(config)
    if tcfg.in_channels != VAE.latent_channels:
        raise InputError(f"transformer in_channels {tcfg.in_channels} != the VAE's {VAE.latent_channels} latent channels")
    side = pipe.latent_side(resolution, VAE.downscale, tcfg.patch_size)
    carried = (2 * batch if cfg else batch, VAE.latent_channels, side, side)
    step = denoise_step("dit_xl2.step", carried, tcfg, cfg)
    decode = _diffusion.decode_stage("dit_xl2.decode", (batch, VAE.latent_channels, side, side), VAE)
    return pipe.compose("dit_xl2", text=None, step=step, decode=decode, steps=steps)


def build_transformer(resolution: int, batch: int, config: str) -> OpGraph:
    """One DiT forward on (batch, 4, resolution/8, resolution/8) latents."""
    tcfg = transformer_config(config)
    side = pipe.latent_side(resolution, VAE.downscale, tcfg.patch_size)
    return _diffusion.component_graph(
        "dit_xl2_transformer", pipe.STAGE, denoiser(tcfg), (batch, tcfg.in_channels, side, side)
    )


def build_vae_decoder(resolution: int, batch: int) -> OpGraph:
    """sd-vae-ft-ema `AutoencoderKL.decode` (post_quant_conv + decoder)."""
    side = _diffusion.latent_size(resolution, VAE.downscale)
    return _diffusion.vae_decoder_graph("dit_xl2_vae_decoder", VAE, side, batch)


_REFERENCE = "diffusers DiTTransformer2DModel (facebook/DiT-XL-2-256) / AutoencoderKL (sd-vae-ft-ema), DiTPipeline"

MODELS = family_specs(
    "diffusion-tti",
    _REFERENCE,
    ("dit_xl2", build_pipeline, {"resolution": 256, "batch": 1, "steps": 50, "cfg": True, "config": ""},
     "DiT-XL/2 class-conditional image generation: transformer x steps (CFG), SD VAE decoder"),
    [
        ("dit_xl2_transformer", build_transformer, {"resolution": 256, "batch": 1, "config": ""},
         "DiT-XL/2 transformer, one denoising step (749.8M params in diffusers; paper ~675M)"),
        ("dit_xl2_vae_decoder", build_vae_decoder, {"resolution": 256, "batch": 1},
         "DiT-XL/2 VAE decoder (sd-vae-ft-ema AutoencoderKL.decode)"),
    ],
)
