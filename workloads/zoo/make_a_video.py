"""Make-A-Video (Singer et al. 2022, arXiv:2209.14792): the cascaded pixel-space T2V pipeline.

    video = SR_h o SR_l^t o ^F o D^t o P o (x_hat, C_x(x))          (paper eq. 1)

Stages: "text_encoder" (CLIP C_x), "prior" (P, optional), "decoder" (D^t: 16 frames at
64x64), "interpolation" (^F: 16 -> 76 frames), "super_resolution_1" (SR_l^t: 256x256,
pseudo-3D), "super_resolution_2" (SR_h: 768x768, 2D, per frame). Each diffusion stage is
one step graph appended with `repeat = its sampling steps`; CFG doubles the batch of the
prior, D^t and ^F.

No public implementation exists and the paper gives no layer-level details and, as far as we
know, no parameter count for any component. It says (Sec. 3.1) that its text-to-image
backbone shares the core components of DALL-E 2 (unCLIP; Ramesh et al. 2022,
arXiv:2204.06125), so every network is built from unCLIP's Table 3 hyperparameters and the
ADM/GLIDE architecture they refer to (Nichol et al. 2022, arXiv:2112.10741), and the spatial
part of each is compared with the size unCLIP/GLIDE state for it. Two of those stated sizes
cannot be met by the stated hyperparameters (P and SR_h, items 2 and 7): each is calibrated
through one choice the papers leave open, with the literal reading kept as an option.
Assumptions, each with its source:

1. C_x: the paper names "the CLIP text encoder" without saying which; unCLIP's ViT-H/16
   CLIP is unreleased, so the public OpenCLIP ViT-H/14 text tower stands in (24 layers,
   width 1024, 16 heads, 77 tokens, 1024-d projection; transformers
   `CLIPTextModelWithProjection`, 354,032,640 params, exact). It runs once on 2B prompts with CFG.
2. P (eq. 1 takes the BPE tokens x_hat and C_x(x)): the unCLIP diffusion prior, unCLIP
   Sec. 2.2 and Table 3 (width 2048, depth 24, 32 heads, text context 256, 64 sampling
   steps); block details in `_unclip`. unCLIP's Table 3 gives this column a "Model size" of
   "1B", but its own width and depth with the 4x MLP of GLIDE's identically sized text
   transformer (GLIDE Sec. 4: "roughly 1.2 billion" for 24 x 2048) give 1.21B for the
   transformer blocks alone, plus 0.10B for the BPE token embedding eq. 1's x_hat needs.
   CALIBRATED (option `prior_variant`, pipeline only):
   - "stated_size" (default): MLP hidden width 5120 (2.5 x 2048) instead of 4 x 2048. Table 3
     states width, depth, heads and context, not the MLP width, so this is the one open
     choice that reaches "1B" without changing a stated number; no other single open choice
     can (dropping the BPE table for CLIP token states still leaves 1.22B). 1,020,492,800
     params, +2.0% vs 1B (MLP 4096: 0.92B, -8.0%; 6144: 1.12B, +12%). The prior's GEMM
     FLOPs drop by 24.5% against the literal reading.
   - "table_3": the literal Table 3 + GLIDE 4x MLP reading, 1,322,556,416 params (+32%);
     its blocks (1,208,598,528) match GLIDE's "roughly 1.2B" within 1%.
   `prior: false` drops P and C_x (the CLIP image embedding is then a graph input, as when
   animating a given image).
3. D^t: unCLIP's 64x64 decoder (Table 3: ADM, 512 channels, 3 res blocks per level,
   multipliers 1,2,3,4, 64-channel heads, attention at 32/16/8, learned variance -> 6 output
   channels, 250 sampling steps), conditioned as in unCLIP Sec. 2.1 (CLIP image embedding
   projected onto the timestep embedding and into 4 context tokens of GLIDE's text width
   2048) but WITHOUT the GLIDE text-encoder pathway: Make-A-Video's eq. 1 and Sec. 3.1
   condition D only on the image embedding y_e. Its 2D part has 2,253,907,462 params vs
   the 2.3B GLIDE states for the visual part of the same 64x64 model (3.5B total - 1.2B
   text encoder; unCLIP Table 3 "3.5B"): -2.0%. Frame-rate conditioning (Sec. 3.2, form
   not stated): sinusoidal fps features + 2-layer MLP added to the timestep embedding.
4. Pseudo-3D layers (Sec. 3.2, eqs. 2-3): a 1D temporal conv after every 3x3 conv (kernel
   size not stated: 3 assumed, as in Video Diffusion Models / ModelScope) and a temporal
   attention block after every spatial attention block (form not stated: GLIDE's
   AttentionBlock over the F frames, 64-channel heads, no context, no positional bias),
   with the transposes around them as data movement. 1x1 convs are per-pixel FC layers and
   get none (Sec. 3.2: FC layers need no handling). D^t total: 2,932,899,960 params (no
   published figure).
5. ^F (Sec. 3.3): D^t's architecture with 4 extra input channels (3 masked RGB + 1 mask),
   run on the (F-1)*5+1 = 76-frame zero-padded video (frame skip 5, the paper's setting);
   same sampler steps and CFG as D^t (not stated). 2,932,918,392 params.
6. SR_l^t: unCLIP's 64->256 upsampler (Table 3: 320 channels, depth 3, multipliers
   1,2,3,4, no attention, 27 DDIM steps; unCLIP Sec. 2.1: not caption-conditioned, no
   guidance), conditioned like ADM's SuperResModel (bilinear upsampling of the low-res
   frames concatenated to the noisy input every step), 3 output channels (DDIM), with
   pseudo-3D convs (Sec. 3.2: SR_l^t works across space and time; it has no attention to
   extend). 2D part 729,702,083 vs unCLIP's stated 700M: +4.2%. Total 905,173,153.
7. SR_h: unCLIP's 256->1024 upsampler (192 channels, depth 2, multipliers 1,1,2,2,4,4, no
   attention, 15 DDIM steps) run at 768x768 on every frame as a 2D model (Sec. 3.2; the
   same noise initialisation per frame is free). unCLIP's Table 3 states "300M" for it; the
   standard ADM count for exactly those hyperparameters is 282,059,139 (-6.0%).
   CALIBRATED (option `sr768_variant`, on `make_a_video` and `make_a_video_sr768`):
   - "stated_size" (default): timestep-embedding width 6 x 192 = 1152 instead of ADM's
     4 x model_channels = 768 (`ADMConfig.time_embed_mult` 6). unCLIP states channels, depth,
     multipliers and "no attention layers" (Sec. 2.1, upsamplers use "only spatial
     convolutions"), so attention (e.g. at the lowest resolution: -2.0%) is ruled out, and
     width/depth/multipliers are stated; the embedding width is not stated anywhere. It
     feeds every ResBlock's scale-shift projection, so it is the one unstated knob with the
     leverage to close 6% (x5: -3.4%, x6: -0.7%, x8: +4.6%), and it acts on one vector per
     frame: GEMM FLOPs change by +0.0003%. 297,763,971 params, -0.7% vs 300M.
   - "table_3": ADM's 4 x model_channels, 282,059,139 params (-6.0%).
8. "No attention" in Table 3's upsampler columns is read as none at all, including ADM's
   middle-block attention.

Options: `frames` (D^t's output frames, 16), `steps` (D^t and ^F sampling steps, 250 per
unCLIP's decoder), `cfg`, `batch`, `prior`, `prior_variant` and `sr768_variant`
("stated_size" or "table_3", items 2 and 7).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TypeVar

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import diffusion as _diffusion
from .blocks import layers as _blocks
from .blocks.adm import ADMConfig, adm_unet
from .blocks.clip import OPENCLIP_VIT_H14_TEXT_CONFIG, CLIPTextConfig
from .blocks.specs import family_specs
from .blocks.unclip import PriorConfig, diffusion_prior

FRAME_SKIP = 5  # ^F's temporal upsampling: 16 -> (16 - 1) * 5 + 1 = 76 frames (Sec. 3.3)
RESOLUTIONS = (64, 256, 768)  # D^t, SR_l^t, SR_h (Sec. 3.1)
PRIOR_STEPS, SR256_STEPS, SR768_STEPS = 64, 27, 15  # unCLIP Table 3 sampling steps
RGB = 3

CLIP_TEXT = CLIPTextConfig.from_dict(
    # OpenCLIP ViT-H/14 text tower (laion2b_s32b_b79k), the public ViT-H CLIP: all 24 layers
    # and its 1024-wide projection (SD 2.x keeps 23 layers and no projection).
    {**OPENCLIP_VIT_H14_TEXT_CONFIG, "num_hidden_layers": 24, "projection_dim": 1024},
    "Make-A-Video CLIP text encoder",
)
# `prior_variant` / `sr768_variant` (module docstring, items 2 and 7): calibrated to the size
# unCLIP states ("stated_size", the default) or the literal Table 3 reading ("table_3").
VARIANTS = ("stated_size", "table_3")
DEFAULT_VARIANT = "stated_size"
PRIOR_VARIANTS = MappingProxyType(
    {
        "stated_size": PriorConfig(clip_dim=CLIP_TEXT.projection_dim, mlp_width=5120),
        "table_3": PriorConfig(clip_dim=CLIP_TEXT.projection_dim),
    }
)
PRIOR = PRIOR_VARIANTS[DEFAULT_VARIANT]
DECODER = ADMConfig(
    in_channels=RGB, out_channels=2 * RGB, model_channels=512, num_res_blocks=3, channel_mult=(1, 2, 3, 4),
    attention_ds=(2, 4, 8), context_channels=2048, clip_dim=CLIP_TEXT.projection_dim, fps_embedding=True,
    temporal=True,
)  # fmt: skip
INTERPOLATION = replace(DECODER, in_channels=RGB + RGB + 1)  # + masked RGB video + mask (Sec. 3.3)
SR256 = ADMConfig(
    in_channels=2 * RGB, out_channels=RGB, model_channels=320, num_res_blocks=3, channel_mult=(1, 2, 3, 4),
    mid_attention=False, temporal=True,
)  # fmt: skip
SR768_TABLE_3 = ADMConfig(
    in_channels=2 * RGB, out_channels=RGB, model_channels=192, num_res_blocks=2, channel_mult=(1, 1, 2, 2, 4, 4),
    mid_attention=False,
)  # fmt: skip
SR768_VARIANTS = MappingProxyType(
    {"stated_size": replace(SR768_TABLE_3, time_embed_mult=6), "table_3": SR768_TABLE_3}
)
SR768 = SR768_VARIANTS[DEFAULT_VARIANT]

Net = Callable[[GraphBuilder, Tensor], Tensor]
T = TypeVar("T")


def interpolated_frames(frames: int) -> int:
    """Frames after ^F with frame skip 5."""
    return (frames - 1) * FRAME_SKIP + 1


# -- networks as emitters on their noisy input ----------------------------------------------
def decoder_net(cfg: ADMConfig, frames: int, clip_dim: int) -> Net:
    """D^t / ^F on (N*frames, C, 64, 64); ^F's masked-video channels are a graph input concatenated
    to the noisy frames inside the forward. The CLIP image embedding (N, clip_dim) is a graph input."""

    def emit(b: GraphBuilder, x: Tensor) -> Tensor:
        nf, _, h, w = x.shape
        if cfg.in_channels > x.shape[1]:
            cond = b.input((nf, cfg.in_channels - x.shape[1], h, w))
            x = b.concat("masked_input_concat", [x, cond], dim=1)
        out = adm_unet(b, cfg, x, frames=frames, clip_emb=b.input((nf // frames, clip_dim)))
        return _blocks.view(out, (nf, RGB, h, w))  # eps; the learned-variance half is a view

    return emit


def super_res_net(cfg: ADMConfig, frames: int, low_res: int) -> Net:
    """ADM SuperResModel: bilinear upsampling of the low-res frames, channel concat, UNet."""

    def emit(b: GraphBuilder, x: Tensor) -> Tensor:
        nf, c, h, w = x.shape
        up = b.resample("low_res_upsample", b.input((nf, c, low_res, low_res)), (nf, c, h, w), mode="bilinear")
        x = b.concat("low_res_concat", [x, up], dim=1)
        return adm_unet(b, cfg, x, frames=frames)

    return emit


def prior_net(cfg: PriorConfig) -> Net:
    return lambda b, x: diffusion_prior(b, cfg, x)


def _variant(option: str, variants: Mapping[str, T], value: str) -> T:
    """The config `value` names in `variants` (the registry already restricts the choices)."""
    if value not in variants:
        raise InputError(f"{option} {value!r} is not one of {', '.join(variants)}")
    return variants[value]


# -- the cascade ----------------------------------------------------------------------------
def diffusion_step(name: str, stage: str, prefix: str, x_shape: tuple[int, ...], net: Net, *, cfg: bool) -> OpGraph:
    """One sampling step of a pixel-space stage, its ops under `prefix` and the network's
    under `prefix.model`: CFG concat (batch 2N) -> network -> guidance on eps -> scheduler."""
    return _diffusion.denoise_step(
        name, x_shape, net, cfg=cfg, attr="model", stage=stage, prefix=prefix, cfg_concat="concat"
    )


def _stage_prep(name: str, stage: str, what: str, shape: tuple[int, ...]) -> OpGraph:
    """A one-off copy before a stage's loop (^F's zero-padded masked video)."""
    b = GraphBuilder(name, stage)
    b.move(what, b.input(shape), shape, what="masked_video")
    return b.build()


def build_pipeline(
    frames: int, batch: int, steps: int, cfg: bool, prior: bool, prior_variant: str, sr768_variant: str
) -> OpGraph:
    """Text encoder, prior, D^t, ^F, SR_l^t, SR_h, in order (paper eq. 1)."""
    prior_cfg = _variant("prior_variant", PRIOR_VARIANTS, prior_variant)
    sr768 = _variant("sr768_variant", SR768_VARIANTS, sr768_variant)
    f_out = interpolated_frames(frames)
    r0, r1, r2 = RESOLUTIONS
    stages: list[tuple[OpGraph, int]] = []
    if prior:
        clip = _diffusion.TextEncoder("text_encoder", CLIP_TEXT, with_projection=True)
        text = _diffusion.text_encoder_graph("make_a_video.text_encoder", [clip], 2 * batch if cfg else batch)
        p_step = diffusion_step(
            "make_a_video.prior", "prior", "prior", (batch, prior_cfg.clip_dim), prior_net(prior_cfg), cfg=cfg
        )
        stages += [(text, 1), (p_step, PRIOR_STEPS)]
    decoder = decoder_net(DECODER, frames, PRIOR.clip_dim)
    interp = decoder_net(INTERPOLATION, f_out, PRIOR.clip_dim)
    masked = (batch * f_out, INTERPOLATION.in_channels - RGB, r0, r0)
    stages += [
        (diffusion_step("make_a_video.decoder", "decoder", "decoder", (batch * frames, RGB, r0, r0), decoder, cfg=cfg), steps),
        (_stage_prep("make_a_video.interpolation_input", "interpolation", "interpolation.masked_video", masked), 1),
        (diffusion_step("make_a_video.interpolation", "interpolation", "interpolation", (batch * f_out, RGB, r0, r0),
                        interp, cfg=cfg), steps),
        (diffusion_step("make_a_video.sr256", "super_resolution_1", "sr256", (batch * f_out, RGB, r1, r1),
                        super_res_net(SR256, f_out, r0), cfg=False), SR256_STEPS),
        (diffusion_step("make_a_video.sr768", "super_resolution_2", "sr768", (batch * f_out, RGB, r2, r2),
                        super_res_net(sr768, 1, r1), cfg=False), SR768_STEPS),
    ]  # fmt: skip
    graph = OpGraph("make_a_video")
    after: tuple[str, ...] = ()
    for stage, repeat in stages:
        graph.extend(stage, after=after, repeat=repeat)
        after = stage.sinks()
    return graph


# -- components -----------------------------------------------------------------------------
def _video_component(name: str, stage: str, net: Net, frames: int, res: int, batch: int) -> OpGraph:
    """One forward of a cascade network on `batch` videos of `frames` noisy RGB frames of `res`^2."""
    b = GraphBuilder(name, stage)
    net(b, b.input((batch * frames, RGB, res, res)))
    return b.build()


def build_decoder(frames: int, batch: int) -> OpGraph:
    """One D^t forward: `frames` noisy 64x64 frames per video, CLIP image embedding, fps."""
    net = decoder_net(DECODER, frames, PRIOR.clip_dim)
    return _video_component("make_a_video_decoder", "decoder", net, frames, RESOLUTIONS[0], batch)


def build_interpolation(frames: int, batch: int) -> OpGraph:
    """One ^F forward on the masked 64x64 video of (frames - 1) * 5 + 1 frames."""
    f = interpolated_frames(frames)
    net = decoder_net(INTERPOLATION, f, PRIOR.clip_dim)
    return _video_component("make_a_video_interpolation", "interpolation", net, f, RESOLUTIONS[0], batch)


def build_sr256(frames: int, batch: int) -> OpGraph:
    """One SR_l^t forward: 64 -> 256 on the interpolated video (pseudo-3D)."""
    f = interpolated_frames(frames)
    net = super_res_net(SR256, f, RESOLUTIONS[0])
    return _video_component("make_a_video_sr256", "super_resolution_1", net, f, RESOLUTIONS[1], batch)


def build_sr768(frames: int, batch: int, sr768_variant: str) -> OpGraph:
    """One SR_h forward: 256 -> 768 on every interpolated frame (2D, frames in the batch)."""
    f = interpolated_frames(frames)
    net = super_res_net(_variant("sr768_variant", SR768_VARIANTS, sr768_variant), 1, RESOLUTIONS[1])
    return _video_component("make_a_video_sr768", "super_resolution_2", net, f, RESOLUTIONS[2], batch)


_REFERENCE = "Singer et al. 2022 (arXiv:2209.14792) on unCLIP/GLIDE ADM networks; no public code (see module docstring)"

MODELS = family_specs(
    "ttv",
    _REFERENCE,
    ("make_a_video", build_pipeline,
     {"frames": 16, "batch": 1, "steps": 250, "cfg": True, "prior": True, "prior_variant": DEFAULT_VARIANT,
      "sr768_variant": DEFAULT_VARIANT},
     "Make-A-Video: CLIP + prior, D^t (16x64^2), ^F (76 frames), SR_l^t (256^2), SR_h (768^2, per frame)"),
    [
        ("make_a_video_decoder", build_decoder, {"frames": 16, "batch": 1},
         "Make-A-Video spatiotemporal decoder D^t, one step (pseudo-3D ADM, 64x64)"),
        ("make_a_video_interpolation", build_interpolation, {"frames": 16, "batch": 1},
         "Make-A-Video frame interpolation ^F, one step (D^t + mask channels, 76 frames)"),
        ("make_a_video_sr256", build_sr256, {"frames": 16, "batch": 1},
         "Make-A-Video spatiotemporal super-resolution SR_l^t, one step (64 -> 256, pseudo-3D convs)"),
        ("make_a_video_sr768", build_sr768, {"frames": 16, "batch": 1, "sr768_variant": DEFAULT_VARIANT},
         "Make-A-Video spatial super-resolution SR_h, one step (256 -> 768, 2D per frame)"),
    ],
    choices={"prior_variant": VARIANTS, "sr768_variant": VARIANTS},
)
