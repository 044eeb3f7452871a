"""Imagen (Saharia et al. 2022, arXiv:2205.11487): a pixel-space cascade of a frozen T5-XXL
text encoder, a 64x64 text-to-image diffusion model and two text-conditional
super-resolution diffusion models, 64->256 and 256->1024 (Sec. 2, Fig. A.4).

Stages: "text_encoder" (T5-XXL encoder, once), "base_unet" (`steps` denoising steps at
64x64), "super_resolution_1" (upsample + noise-augment the 64x64 image once, then `sr_steps`
steps at 256x256) and "super_resolution_2" (the same at 1024x1024). Every diffusion model uses
classifier-free guidance (Sec. 1, 2.2), run as one batch of 2N (unconditional + conditional).

Text encoder: T5 v1.1 XXL encoder (`_t5`, 4,762,310,656 parameters; the paper's "T5-XXL
(4.6B)", Sec. 4.4) over `prompt_len` tokens. The paper gives no token count; 128 is assumed
(imagen-pytorch's and NeMo's maximum text length). It runs once on the N prompts: the
unconditional branch of classifier-free guidance is the ZEROED text embedding (Sec. 4.1: "we
joint-train unconditionally via zeroing out the text embeddings"), so no negative prompt is
encoded; the zeros are concatenated in front of the text once (`cfg.concat_null_text`).

Base 64x64 model (Sec. 2.5, App. F.1: `attn_resolutions [32, 16, 8]`, `channel_mult [1, 2, 3,
4]`, `embed_dim 512`, `num_res_blocks 3`, `per_head_channels 64`, `res_block_type biggan`,
`text_cross_attn_res [32, 16, 8]`, `feature_pooling_type attention`, `use_scale_shift_norm
True`; "We adapt the architecture used in [16]", i.e. ADM). It is written as a diffusers
`UNet2DConditionModel` config with the ADM-style blocks diffusers ported for unCLIP and
DeepFloyd IF (see `_unet2d_added_kv`), so its parameters and GEMM FLOPs are checked EXACTLY against
diffusers on the meta device:
- block_out_channels [512, 1024, 1536, 2048], layers_per_block 3 (up path 3 + 1, as ADM);
  ResnetDownsample/ResnetUpsample blocks at 64x64, simple cross-attention blocks at 32, 16, 8
  and in the middle; BigGAN-style resampling inside residual blocks; scale-shift norm.
- attention after every residual block at 32/16/8 with 64-channel heads (16, 24, 32 heads),
  the text keys/values concatenated to the image keys/values (App. D.3.1).
- text: LayerNorm on the text in every attention layer (Sec. 2.5; diffusers can only build
  the same-sized GroupNorm with added K/V, which the torch test uses), attention pooling of
  the T5 states added to the timestep embedding (`addition_embed_type: text`).
- ASSUMED (conditioning widths the paper does not give): the T5 states are projected once to
  `cond_dim` 512 (`encoder_hid_proj`, imagen-pytorch's `cond_dim`) and the timestep /
  conditioning embedding is `emb_dim` 1024 wide. ADM's usual widths (4 x 512 = 2048 and the
  raw 4096-wide T5 states in every attention layer) give 2.44B, 22% above the paper's 2B;
  these give 2,088,252,931 (+4.4%). They act on N vectors and 128 text tokens only: ADM's
  widths would add 4.1% to the base model's GEMM FLOPs at 64x64 (the per-layer text key/value
  projections), 2.1% to the 64->256 model's and 0.1% to the 256->1024 model's.
- eps-prediction with 3 output channels (App. A: "We use the eps-prediction
  parameterization"; no learned variance is mentioned).

Super-resolution models: Efficient U-Nets (App. B.1, F.2, F.3; assumptions in
`_efficient_unet`), with the same `cond_dim` and `emb_dim`. 64->256: 581,760,771 parameters
(paper: 600M, -3.0%).

256->1024, CALIBRATED to Sec. 4.1's stated size (option `sr1024_variant`, on `imagen` and
`imagen_sr1024_unet`). The paper is inconsistent about this model: Sec. 4.1 says "400M", and
App. F.3 says "the same configuration as the 64x64 -> 256x256 super-resolution model, except
we do not use self-attention layers but rather have cross-attention layers". Read literally,
F.3 gives 573,363,971 parameters (+43% over 400M): removing the two self-attention layers of
the 600M model removes only their image key/value projections (8.4M), so F.3's sentence
cannot describe a 400M model and some part of the F.2 configuration must be smaller.
- "stated_size" (default): F.2's levels with the ResNetBlocks of the deepest (1024-channel,
  cross-attention) level halved, 8 -> 4: levels (128, 2), (256, 4), (512, 8), (1024, 4).
  397,129,475 parameters, -0.7% vs 400M. Why this knob: every channel width and the level
  count stay as F.2/F.3 and Figs. A.30/A.31 give them; the number of ResNetBlocks per block
  (`numResNetBlocksPerBlock`, Figs. A.28/A.29) is the knob App. B.1 itself uses to size the
  Efficient U-Net ("shift the model parameters from the high resolution blocks to the low
  resolution blocks by adding more residual blocks"), and the deepest level holds 71% of the
  F.3 parameters (8 x 2 ResNetBlocks at 1024 channels, ~22M each), so it is the one place a
  single change of that knob lands on 400M. The deepest level runs at 1/16 of the output side
  (64x64 at 1024x1024), so this removes 16% of the model's conv MACs, not the bulk of them
  (which sit in the high-resolution levels).
  Other readings considered: (1024, 5) blocks: 441M (+10%); halving the 512 level too:
  349M (-13%); a 768-channel deepest level with 8 blocks: 410M (+2.4%), but that changes a
  width F.2/F.3 state explicitly and breaks the doubling channel pattern.
- "appendix_f3": the literal F.3 reading (F.2 with the self-attention removed),
  573,363,971 parameters.
Sampling: the paper states no step count (App. A: ancestral sampler and DDIM; F.3 trains
the 1024 model on a 1000-step schedule). `steps` (base) and `sr_steps` (both super-resolution
models) default to 256, an assumption. Each step: guidance combine on the eps prediction,
x0 prediction, dynamic thresholding (Sec. 2.3: a per-sample percentile of |x0|, clip and
rescale) and the sampler update. Each super-resolution stage first resizes the previous
image to its resolution and applies the noise-conditioning augmentation (Sec. 2.4) once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from types import MappingProxyType

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import diffusion as _diffusion
from .blocks import layers as _blocks
from .blocks.efficient_unet import EfficientBlock, EfficientUNetConfig, efficient_unet
from .blocks.specs import family_specs
from .blocks.t5 import T5_V1_1_XXL, T5Config, t5_encoder
from .blocks.unet2d_added_kv import AddedKVUNetConfig, unet2d_added_kv

PROMPT_LEN = 128
EMB_DIM = 1024  # conditioning embedding width (assumed, see module docstring)
COND_DIM = 512  # projected text width (assumed, see module docstring)
SR_FACTORS = (4, 4)  # 64 -> 256 -> 1024

BASE_UNET_CONFIG = MappingProxyType(
    {
        "_class_name": "UNet2DConditionModel",
        "sample_size": 64,
        "in_channels": 3,
        "out_channels": 3,
        "block_out_channels": [512, 1024, 1536, 2048],
        "layers_per_block": 3,
        "down_block_types": ["ResnetDownsampleBlock2D"] + ["SimpleCrossAttnDownBlock2D"] * 3,
        "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
        "up_block_types": ["SimpleCrossAttnUpBlock2D"] * 3 + ["ResnetUpsampleBlock2D"],
        "attention_head_dim": 64,
        "cross_attention_dim": COND_DIM,
        "encoder_hid_dim": 4096,
        "encoder_hid_dim_type": "text_proj",
        "cross_attention_norm": "layer_norm",
        "addition_embed_type": "text",
        "addition_embed_type_num_heads": 64,
        "time_embedding_dim": EMB_DIM,
        "resnet_time_scale_shift": "scale_shift",
        "norm_num_groups": 32,
        "act_fn": "silu",
    }
)

BASE_UNET = AddedKVUNetConfig.from_dict(BASE_UNET_CONFIG, "Imagen base UNet")
# App. F.2 / F.3 `blocks`: (channels, num_res_blocks) per level, attention at the last one.
_SR_LEVELS = tuple(EfficientBlock(c, n) for c, n in ((128, 2), (256, 4), (512, 8)))
SR256_UNET = EfficientUNetConfig(
    blocks=(*_SR_LEVELS, EfficientBlock(1024, 8, self_attention=True, text_cross_attention=True)),
    cond_dim=COND_DIM,
    emb_dim=EMB_DIM,
)
# 256->1024 by `sr1024_variant` (module docstring): the literal App. F.3 configuration, or the
# calibration to Sec. 4.1's 400M (ResNetBlocks of the deepest level halved, 8 -> 4).
SR1024_VARIANTS = MappingProxyType(
    {
        "stated_size": EfficientUNetConfig(
            blocks=(*_SR_LEVELS, EfficientBlock(1024, 4, text_cross_attention=True)), cond_dim=COND_DIM, emb_dim=EMB_DIM
        ),
        "appendix_f3": EfficientUNetConfig(
            blocks=(*_SR_LEVELS, EfficientBlock(1024, 8, text_cross_attention=True)), cond_dim=COND_DIM, emb_dim=EMB_DIM
        ),
    }
)
SR1024_VARIANT = "stated_size"
SR1024_UNET = SR1024_VARIANTS[SR1024_VARIANT]
T5_XXL = T5Config.from_dict(T5_V1_1_XXL, "T5-XXL encoder")

# A denoiser emitter: (builder, image input, text states) -> prediction.
Denoiser = Callable[[GraphBuilder, Tensor, Tensor], Tensor]


def _base(b: GraphBuilder, x: Tensor, text: Tensor) -> Tensor:
    return unet2d_added_kv(b, BASE_UNET, x, text)


def _sr(cfg: EfficientUNetConfig) -> Denoiser:
    return lambda b, x, text: efficient_unet(b, cfg, x, text)


def sr1024_config(variant: str) -> EfficientUNetConfig:
    """The 256->1024 Efficient U-Net of `sr1024_variant` ("stated_size" or "appendix_f3")."""
    if variant not in SR1024_VARIANTS:
        raise InputError(f"sr1024_variant {variant!r} is not one of {', '.join(SR1024_VARIANTS)}")
    return SR1024_VARIANTS[variant]


def _stages(sr1024_variant: str) -> tuple[tuple[str, str, Denoiser, int], ...]:
    """(scope, stage, denoiser, in_channels): base, then the two super-resolution models."""
    sr1024 = sr1024_config(sr1024_variant)
    return (
        ("base", "base_unet", _base, BASE_UNET.in_channels),
        ("sr256", "super_resolution_1", _sr(SR256_UNET), SR256_UNET.in_channels),
        ("sr1024", "super_resolution_2", _sr(sr1024), sr1024.in_channels),
    )


def cascade_sides(resolution: int) -> tuple[int, int, int]:
    """Image sides of the three stages for a final side `resolution` (1024 -> 64, 256, 1024)."""
    base = resolution // (SR_FACTORS[0] * SR_FACTORS[1])
    sides = (base, base * SR_FACTORS[0], resolution)
    exact = base * SR_FACTORS[0] * SR_FACTORS[1] == resolution
    if not exact or base % BASE_UNET.downscale or sides[1] % SR256_UNET.downscale or resolution % SR1024_UNET.downscale:
        raise InputError(f"resolution {resolution} must be a multiple of 128 (64x64 base -> x4 -> x4)")
    return sides


def _check_side(side: int, multiple: int) -> int:
    if side % multiple:
        raise InputError(f"resolution {side} is not divisible by the UNet's downsampling factor {multiple}")
    return side


# -- stages ------------------------------------------------------------------------------
def text_stage(name: str, batch: int, prompt_len: int, cfg: bool, *, prefix: bool = True) -> OpGraph:
    """T5-XXL on the N prompts; with CFG, zeros are concatenated in front (batch 2N)."""
    b = GraphBuilder(name, "text_encoder")
    with b.scope("text_encoder") if prefix else nullcontext():
        text = t5_encoder(b, T5_XXL, batch, prompt_len)
    if cfg:
        b.concat("cfg.concat_null_text", [b.input(text.shape), text], dim=0)
    return b.build()


def upsample_stage(name: str, scope: str, stage: str, batch: int, low: int, high: int) -> OpGraph:
    """Once per super-resolution stage: resize the previous image, then noise-augment it."""
    b = GraphBuilder(name, stage)
    with b.scope(scope):
        x = b.resample("resize_lowres", b.input((batch, 3, low, low)), (batch, 3, high, high), mode="bilinear")
        b.elementwise("noise_augmentation", [x, b.input((batch, 3, high, high))], "axpby")
    return b.build()


def denoise_step(
    name: str,
    scope: str,
    stage: str,
    denoiser: Denoiser,
    image: tuple[int, ...],
    prompt_len: int,
    *,
    cfg: bool,
    lowres: bool,
) -> OpGraph:
    """One pixel-space denoising step of a cascade stage on the image z_t (N, 3, H, W).

    [concat the augmented low-res image as channels] -> [CFG batch concat] -> UNet ->
    [guidance combine] -> x0 prediction -> dynamic thresholding -> sampler update.
    """
    b = GraphBuilder(name, stage)
    n = image[0]
    with b.scope(scope):
        z = b.input(image)
        x = b.concat("concat_lowres", [z, b.input(image)], dim=1) if lowres else z
        if cfg:
            x = b.concat("guidance.concat_batch", [x, x], dim=0)
        text = b.input((x.shape[0], prompt_len, T5_XXL.d_model))
        with b.scope("unet"):
            eps = denoiser(b, x, text)
        if cfg:
            eps = _diffusion.guidance_combine(b, eps, image)
        with b.scope("scheduler"):
            x0 = b.elementwise("pred_original_sample", [z, eps], "axpby")
            with b.scope("dynamic_thresholding"):
                s = b.elementwise("percentile", [x0], "quantile")  # per-sample |x0| percentile
                x0 = b.elementwise("clip_rescale", [x0, _blocks.view(s, (n, 1, 1, 1))], "clip_div")
            b.elementwise("prev_sample", [x0, z, b.input(image)], "ancestral_update")
    return b.build()


def build_pipeline(
    resolution: int, batch: int, steps: int, sr_steps: int, cfg: bool, prompt_len: int, sr1024_variant: str
) -> OpGraph:
    """Text encoder once, then the base and the two super-resolution models, each for its steps."""
    sides = cascade_sides(resolution)
    graph = OpGraph("imagen")
    text = text_stage("imagen.text_encoder", batch, prompt_len, cfg)
    graph.extend(text)
    after = text.sinks()
    for k, ((scope, stage, denoiser, _), side) in enumerate(zip(_stages(sr1024_variant), sides)):
        image = (batch, 3, side, side)
        if k:
            prologue = upsample_stage(f"imagen.{scope}.upsample", scope, stage, batch, sides[k - 1], side)
            graph.extend(prologue, after=after)
            after = prologue.sinks()
        step = denoise_step(f"imagen.{scope}.step", scope, stage, denoiser, image, prompt_len, cfg=cfg, lowres=k > 0)
        graph.extend(step, after=after, repeat=sr_steps if k else steps)
        after = step.sinks()
    return graph


# -- components ---------------------------------------------------------------------------
def _component(
    index: int, name: str, side: int, batch: int, prompt_len: int, sr1024_variant: str = SR1024_VARIANT
) -> OpGraph:
    _, stage, denoiser, in_channels = _stages(sr1024_variant)[index]
    b = GraphBuilder(name, stage)
    denoiser(b, b.input((batch, in_channels, side, side)), b.input((batch, prompt_len, T5_XXL.d_model)))
    return b.build()


def build_base_unet(resolution: int, batch: int, prompt_len: int) -> OpGraph:
    """One base-model forward on (batch, 3, resolution, resolution) images and T5 states."""
    return _component(0, "imagen_base_unet", _check_side(resolution, BASE_UNET.downscale), batch, prompt_len)


def build_sr256_unet(resolution: int, batch: int, prompt_len: int) -> OpGraph:
    """One 64->256 Efficient U-Net forward at `resolution` (noisy image + upsampled low-res: 6 channels)."""
    return _component(1, "imagen_sr256_unet", _check_side(resolution, SR256_UNET.downscale), batch, prompt_len)


def build_sr1024_unet(resolution: int, batch: int, prompt_len: int, sr1024_variant: str) -> OpGraph:
    """One 256->1024 Efficient U-Net forward at `resolution` (`sr1024_variant`: see the module docstring)."""
    side = _check_side(resolution, sr1024_config(sr1024_variant).downscale)
    return _component(2, "imagen_sr1024_unet", side, batch, prompt_len, sr1024_variant)


def build_text_encoder(batch: int, prompt_len: int) -> OpGraph:
    """T5-XXL encoder on `batch` prompts of `prompt_len` tokens."""
    return text_stage("imagen_text_encoder", batch, prompt_len, cfg=False, prefix=False)


_REFERENCE = (
    "Imagen paper (arXiv:2205.11487) App. B.1/F; base UNet = diffusers UNet2DConditionModel (ADM blocks); T5 v1.1 XXL"
)

MODELS = family_specs(
    "diffusion-tti",
    _REFERENCE,
    ("imagen", build_pipeline,
     {"resolution": 1024, "batch": 1, "steps": 256, "sr_steps": 256, "cfg": True, "prompt_len": PROMPT_LEN,
      "sr1024_variant": SR1024_VARIANT},
     "Imagen cascade: T5-XXL, 64x64 base UNet x steps, 64->256 and 256->1024 Efficient U-Nets x sr_steps (CFG)"),
    [
        ("imagen_base_unet", build_base_unet, {"resolution": 64, "batch": 1, "prompt_len": PROMPT_LEN},
         "Imagen 64x64 base text-to-image UNet (ADM + text cross-attention), one step (2.09B params)"),
        ("imagen_sr256_unet", build_sr256_unet, {"resolution": 256, "batch": 1, "prompt_len": PROMPT_LEN},
         "Imagen 64->256 super-resolution Efficient U-Net, one step (582M params)"),
        ("imagen_sr1024_unet", build_sr1024_unet,
         {"resolution": 1024, "batch": 1, "prompt_len": PROMPT_LEN, "sr1024_variant": SR1024_VARIANT},
         ("Imagen 256->1024 super-resolution Efficient U-Net (text cross-attention only), one step "
          "(397M params; sr1024_variant=appendix_f3: 573M)")),
        ("imagen_text_encoder", build_text_encoder, {"batch": 1, "prompt_len": PROMPT_LEN},
         "Imagen text encoder (frozen T5 v1.1 XXL encoder, 4.76B params)"),
    ],
    choices={"sr1024_variant": tuple(SR1024_VARIANTS)},
)
