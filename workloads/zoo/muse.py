"""Muse (Chang et al. 2023, "Muse: Text-To-Image Generation via Masked Generative Transformers",
arXiv:2301.00704): a frozen T5-XXL text encoder, a 3B-parameter base masked transformer over the
16x16 tokens of a 256x256 image, a super-resolution masked transformer translating them into the
64x64 tokens of a 512x512 image, and the f=8 VQGAN decoder. No official implementation exists;
every size below is the paper's or an assumption stated here.

Pipeline and stages (Figure 3, Section 2): "text_encoder" (T5-XXL once, on 2N prompts with
classifier-free guidance), "base_transformer" (`steps` parallel-decoding iterations, paper: 24,
Section 2.8), "superres_transformer" (`sr_steps` iterations, paper: 8, Section 2.8) and
"detokenizer" (the high-resolution VQGAN decoder, once). Each iteration is one MaskGIT step
(`_maskgit.iteration`): the whole transformer on all tokens, CFG logit combine (Eq. 1), sampler.

From the paper:
- T5-XXL encoder (4.6B in the paper; transformers' T5-XXL v1.1 encoder: 4,762,310,656 here),
  whose 4096-d embeddings are linearly projected to each transformer's width (Section 2.1).
- VQGAN tokenizers with an 8192-entry codebook (Table 5): f=16 for the base model (256x256 ->
  16x16 tokens) and f=8 for the super-res model (512x512 -> 64x64 tokens) (Section 2.2); fully
  convolutional, the non-local blocks of Esser et al. removed; the decoder used for the final
  images is the fine-tuned one with 4 residual blocks per resolution and base width 256
  (Section 2.5, Appendix A.2; `finetuned_decoder=False` gives the base VQGAN's 2 blocks, 128).
- Base transformer: 48 layers, hidden 2048, MLP 8192 (Table 4); each layer self-attention over
  the image tokens, cross-attention to the projected text, MLP (Sections 2.3 and 3); learned 2D
  position embeddings; an MLP output head to codebook logits (Section 2.3).
- Super-res transformer: a 16-layer self-attention encoder over the low-res tokens, whose
  outputs are concatenated with the projected text embeddings to form the cross-attention
  context of 32 multi-axis transformer layers over the high-res tokens; hidden 1024, MLP 4096
  (Table 6, Figure 4, Section 3).

Assumed (not stated in the paper):
- Heads: 32 (base) and 16 (super-res), i.e. 64-d heads as in Phenaki's 2048-wide MaskGIT
  (Villegas et al. 2022, Table 7). Attention FLOPs do not depend on the split.
- Pre-LayerNorm layers with biases and GELU MLPs, the MaskGIT embedding (codebook + [MASK])
  and MLM head with tied logits (Chang et al. 2022; see `_maskgit`, `_token_transformer`).
- Multi-axis attention (HiT, Zhao et al. 2021, cited in Section 3): half the heads attend within
  8x8 blocks, the other half across an 8x8 dilated grid (64-token sequences at 64x64 tokens);
  the q/k/v/out projections span all heads, so parameters equal a plain self-attention.
- T5 prompts of 128 tokens (`prompt_len`; the paper gives no length; Parti's maximum).
- No caching across iterations (MaskGIT's sampler calls the whole model each iteration): the
  text projection and the low-res encoder run every super-res iteration.
- VQGAN f=8 channel multipliers (1, 1, 2, 4), those of taming-transformers' f=8 8192-code
  VQGAN (Esser et al. 2021); 256-d codebook vectors (MaskGIT's VQGAN embedding_dim).
- The unconditional CFG branch encodes an empty prompt padded to `prompt_len` (same shapes).

Parameter counts vs the paper (tests/test_zoo_tokens.py). The abstract and Section 4 call the
base model "3B"; the super-res model has no stated size (its "632M + 268M" CC3M model is a
smaller, unstated configuration); ours has 765,518,848 parameters.

Base transformer, CALIBRATED to the stated 3B (option `base_variant`, on `muse` and
`muse_base_transformer`). Table 4's dims fix 48 x (4 + 8) x 2048^2 = 2.42B for self-attention
and MLPs; a cross-attention with its own q/k/v/out projections in every layer adds
48 x 4 x 2048^2 = 0.81B, so the usual reading is at least 3.22B, +7.4% over "3B", whatever
the heads, biases or embeddings. Table 4 states layers, width, MLP width and heads; what it
and Section 2 leave open is the form of the cross-attention: Section 2.1 says only that the
T5-XXL embeddings are "linearly projected to the hidden size" of the transformer.
- "stated_size" (default): that projection is followed by ONE key and ONE value projection
  (2048 -> 2048 each, `cross_attn_kv.k` / `.v`) whose keys and values every layer's
  cross-attention reads; each layer keeps its own LayerNorm, query and output projections.
  The text does not change from layer to layer, so per-layer key/value projections of it are
  the one place where a model can drop parameters without touching any dim Table 4 states.
  2,858,534,912 parameters, -4.7% vs 3B. GEMM FLOPs: the per-layer text K/V projections are
  the only thing removed (128 text tokens vs 256 image tokens per layer at 256x256: -6.5% of
  the base transformer's linear FLOPs at the defaults, none of its attention FLOPs).
  Other readings considered, all further from 3B or contradicting Table 4: excluding the
  token/position embeddings, text projection and head ("non-embedding" count): 3.227B
  (+7.6%); counting the 3B without the per-layer cross-attention keys/values: 2.850B
  (-5.0%); an MLP narrower than Table 4's 8192 (about 7,000 for 3.0B).
- "per_layer_kv": the literal reading, a standard cross-attention (q/k/v/out) in every layer,
  3,252,992,000 parameters (3,227,297,792 without token/position embeddings and text
  projection): +8.4% (+7.6%).
The super-res transformer keeps per-layer cross-attention projections (its context, text plus
the low-res encoder output, has no stated size to calibrate against).
"""

from __future__ import annotations

from contextlib import nullcontext
from types import MappingProxyType

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import layers as _blocks
from .blocks import maskgit as _maskgit
from .blocks.specs import family_specs
from .blocks.token_transformer import (
    PROJ,
    SelfAttention,
    StackConfig,
    embed_tokens,
    mlp,
    self_attention_block,
    stack,
)
from .blocks.vq import VQGANConfig, vqgan_decoder

CODEBOOK = 8192
BASE = StackConfig(layers=48, d_model=2048, heads=32, mlp=8192, cross=True, axis="spatial")
LOWRES_ENCODER = StackConfig(layers=16, d_model=1024, heads=16, mlp=4096, axis="spatial")
SUPERRES = StackConfig(layers=32, d_model=1024, heads=16, mlp=4096, cross=True, axis="spatial")
BASE_DOWNSCALE = 16  # f=16 VQGAN of the base model: only its token grid is used here
MULTI_AXIS_WINDOW = 8
DETOKENIZER = VQGANConfig(filters=256, channel_mult=(1, 1, 2, 4), res_blocks=4)
BASE_VQGAN_DECODER = VQGANConfig(filters=128, channel_mult=(1, 1, 2, 4), res_blocks=2)
# `base_variant` (module docstring): whether the cross-attention keys/values of the text are
# projected once for all layers (calibrated to the stated 3B) or in every layer (literal).
BASE_VARIANTS = MappingProxyType({"stated_size": True, "per_layer_kv": False})  # -> shared K/V
BASE_VARIANT = "stated_size"


# -- token grids --------------------------------------------------------------------------------
def base_side(resolution: int) -> int:
    """Base tokens per side for a base image of `resolution` pixels (256 -> 16)."""
    if resolution % BASE_DOWNSCALE:
        raise InputError(f"resolution {resolution} is not divisible by the base VQGAN factor {BASE_DOWNSCALE}")
    return resolution // BASE_DOWNSCALE


def superres_side(resolution: int) -> int:
    """High-res tokens per side for a final image of `resolution` pixels (512 -> 64).

    The base model works at half the final resolution (256 for 512), and the multi-axis
    windows must tile the high-res token grid.
    """
    step = DETOKENIZER.downscale * MULTI_AXIS_WINDOW  # 64, also a multiple of 2 x BASE_DOWNSCALE
    if resolution % step:
        raise InputError(
            f"resolution {resolution} must be a multiple of 64: the base model runs at half resolution "
            f"(f=16 tokens) and the super-res {MULTI_AXIS_WINDOW}x{MULTI_AXIS_WINDOW} multi-axis windows tile "
            f"the f=8 tokens"
        )
    return resolution // DETOKENIZER.downscale


# -- the transformers as emitters ------------------------------------------------------------------
def base_transformer(prompt_len: int, variant: str = BASE_VARIANT) -> _maskgit.Transformer:
    """The base masked transformer on ids (B, 256) with T5 states (B, prompt_len, 4096) as input."""
    if variant not in BASE_VARIANTS:
        raise InputError(f"base_variant {variant!r} is not one of {', '.join(BASE_VARIANTS)}")
    shared_kv = BASE_VARIANTS[variant]

    def emit(b: GraphBuilder, ids: Tensor) -> Tensor:
        text = b.input((ids.shape[0], prompt_len, _maskgit.T5_XXL.d_model))
        context = b.linear("text_proj", text, BASE.d_model)
        x = embed_tokens(b, ids, CODEBOOK + 1, BASE.d_model)
        x = shared_kv_stack(b, BASE, x, context) if shared_kv else stack(b, BASE, x, context=context)
        return _maskgit.mlm_head(b, x, CODEBOOK)

    return emit


def shared_kv_stack(b: GraphBuilder, cfg: StackConfig, x: Tensor, context: Tensor) -> Tensor:
    """`_token_transformer.stack` with the cross-attention keys/values of `context` projected once
    (`cross_attn_kv.k`, `.v`) and read by every layer; per layer: self-attention, cross-attention
    (its own LayerNorm, query and output projections), MLP, each pre-LN with a residual."""
    with b.scope("cross_attn_kv"):
        k = b.linear("k", context, cfg.d_model, bias=cfg.bias)
        v = b.linear("v", context, cfg.d_model, bias=cfg.bias)
    for i in range(cfg.layers):
        with b.scope("layers", i):
            h = self_attention_block(b, cfg, b.layer_norm("self_attn_norm", x, bias=cfg.bias))
            x = b.add("self_attn_residual", x, h)
            h = b.layer_norm("cross_attn_norm", x, bias=cfg.bias)
            with b.scope("cross_attn"):
                q = b.linear("q", h, cfg.d_model, bias=cfg.bias)
            o = b.attention("cross_attn", q, k, v, cfg.heads, role="cross", axis=cfg.axis)
            with b.scope("cross_attn"):
                h = b.linear("out", o, cfg.d_model, bias=cfg.bias)
            x = b.add("cross_attn_residual", x, h)
            h = b.layer_norm("mlp_norm", x, bias=cfg.bias)
            x = b.add("mlp_residual", x, mlp(b, cfg, h))
    return b.layer_norm("norm", x, bias=cfg.bias) if cfg.final_norm else x


def superres_transformer(prompt_len: int, lowres_tokens: int) -> _maskgit.Transformer:
    """The super-res transformer on high-res ids (B, 4096), low-res ids (B, 256) and T5 states."""

    def emit(b: GraphBuilder, ids: Tensor) -> Tensor:
        n, tokens = ids.shape
        d = SUPERRES.d_model
        text = b.input((n, prompt_len, _maskgit.T5_XXL.d_model))
        with b.scope("lowres_encoder"):
            low = embed_tokens(b, b.input((n, lowres_tokens)), CODEBOOK, LOWRES_ENCODER.d_model)
            low = stack(b, LOWRES_ENCODER, low)
        context = b.concat("context_concat", [b.linear("text_proj", text, d), low], dim=1)
        x = embed_tokens(b, ids, CODEBOOK + 1, d)
        side = _isqrt(tokens)
        attention = multi_axis_attention(SUPERRES, side, MULTI_AXIS_WINDOW)
        x = stack(b, SUPERRES, x, context=context, self_attention=attention)
        return _maskgit.mlm_head(b, x, CODEBOOK)

    return emit


def multi_axis_attention(cfg: StackConfig, side: int, window: int) -> SelfAttention:
    """HiT multi-axis self-attention over a side x side token grid.

    q/k/v over all channels; half the heads attend within window x window blocks, the other
    half across a window x window dilated grid; both halves are gathered into their windows
    (copies), attended, scattered back, concatenated and projected.
    """
    if side % window:
        raise InputError(f"a {side}x{side} token grid cannot be tiled by {window}x{window} multi-axis windows")
    groups = (side // window) ** 2

    def emit(b: GraphBuilder, h: Tensor) -> Tensor:
        n, tokens, d = h.shape
        half = d // 2
        with b.scope("self_attn"):
            q, k, v = (b.linear(p, h, d, bias=cfg.bias) for p in PROJ[:3])
            outs = []
            for branch in ("block", "grid"):
                packed = Tensor((n, tokens, 3 * half), q.src + k.src + v.src)
                windows = (n * groups, window * window, 3 * half)
                qkv = b.move(f"{branch}_partition", packed, windows, what=f"{branch}_partition")
                part = _blocks.view(qkv, (n * groups, window * window, half))
                o = b.attention(f"{branch}_attn", part, part, part, cfg.heads // 2, role="self", axis="spatial")
                outs.append(b.move(f"{branch}_unpartition", o, (n, tokens, half), what=f"{branch}_unpartition"))
            o = b.concat("concat_heads", outs, dim=2)
            return b.linear("out", o, d, bias=cfg.bias)

    return emit


def _isqrt(n: int) -> int:
    side = round(n**0.5)
    if side * side != n:
        raise InputError(f"{n} tokens do not form a square grid")
    return side


# -- stage graphs ---------------------------------------------------------------------------------
def _detokenizer_graph(name: str, batch: int, side: int, finetuned: bool, *, prefix: bool) -> OpGraph:
    b = GraphBuilder(name, "detokenizer")
    with b.scope("vqgan") if prefix else nullcontext():
        vqgan_decoder(b, DETOKENIZER if finetuned else BASE_VQGAN_DECODER, b.input((batch, side, side)))
    return b.build()


def build_pipeline(
    resolution: int,
    batch: int,
    steps: int,
    sr_steps: int,
    cfg: bool,
    prompt_len: int,
    finetuned_decoder: bool,
    base_variant: str,
) -> OpGraph:
    """T5-XXL once, `steps` base iterations, `sr_steps` super-res iterations, VQGAN decoder once."""
    sr = superres_side(resolution)
    low = base_side(resolution // 2)
    text = _maskgit.t5_xxl_graph("muse.text_encoder", 2 * batch if cfg else batch, prompt_len, prefix=True)
    base = _maskgit.iteration(
        "muse.base", "base_transformer", (batch, low * low), base_transformer(prompt_len, base_variant), cfg=cfg,
        prefix="base",
    )
    superres = _maskgit.iteration(
        "muse.superres", "superres_transformer", (batch, sr * sr), superres_transformer(prompt_len, low * low),
        cfg=cfg, prefix="superres",
    )  # fmt: skip
    decode = _detokenizer_graph("muse.detokenizer", batch, sr, finetuned_decoder, prefix=True)
    graph = OpGraph("muse")
    graph.extend(text)
    graph.extend(base, after=text.sinks(), repeat=steps)
    graph.extend(superres, after=base.sinks(), repeat=sr_steps)
    graph.extend(decode, after=superres.sinks())
    return graph


def build_text_encoder(batch: int, prompt_len: int) -> OpGraph:
    """T5-XXL encoder on `batch` prompts of `prompt_len` tokens."""
    return _maskgit.t5_xxl_graph("muse_text_encoder", batch, prompt_len, prefix=False)


def build_base_transformer(resolution: int, batch: int, prompt_len: int, base_variant: str) -> OpGraph:
    """One base-transformer forward on the tokens of a `resolution`^2 base image (256 -> 16x16)."""
    side = base_side(resolution)
    b = GraphBuilder("muse_base_transformer", "base_transformer")
    base_transformer(prompt_len, base_variant)(b, b.input((batch, side * side)))
    return b.build()


def build_superres_transformer(resolution: int, batch: int, prompt_len: int) -> OpGraph:
    """One super-res forward: 64x64 high-res tokens of a 512^2 image from 16x16 low-res tokens."""
    side = superres_side(resolution)
    low = base_side(resolution // 2)
    b = GraphBuilder("muse_superres_transformer", "superres_transformer")
    superres_transformer(prompt_len, low * low)(b, b.input((batch, side * side)))
    return b.build()


def build_detokenizer(resolution: int, batch: int, finetuned_decoder: bool) -> OpGraph:
    """The f=8 VQGAN decoder: 64x64 tokens -> a 512x512 image."""
    return _detokenizer_graph("muse_detokenizer", batch, superres_side(resolution), finetuned_decoder, prefix=False)


_REFERENCE = "paper: Chang et al. 2023, arXiv:2301.00704 (no public implementation)"

MODELS = family_specs(
    "transformer-tti",
    _REFERENCE,
    ("muse", build_pipeline,
     {"resolution": 512, "batch": 1, "steps": 24, "sr_steps": 8, "cfg": True, "prompt_len": 128, "finetuned_decoder": True,
      "base_variant": BASE_VARIANT},
     "Muse text-to-image: T5-XXL, base masked transformer x steps, super-res x sr_steps (CFG), VQGAN decoder"),
    [
        ("muse_base_transformer", build_base_transformer,
         {"resolution": 256, "batch": 1, "prompt_len": 128, "base_variant": BASE_VARIANT},
         ("Muse base masked transformer (48 layers, 2048 wide), one iteration over 16x16 tokens "
          "(2.86B params; base_variant=per_layer_kv: 3.25B)")),
        ("muse_superres_transformer", build_superres_transformer, {"resolution": 512, "batch": 1, "prompt_len": 128},
         "Muse super-res transformer (16 + 32 multi-axis layers, 1024 wide), one iteration over 64x64 tokens"),
        ("muse_detokenizer", build_detokenizer, {"resolution": 512, "batch": 1, "finetuned_decoder": True},
         "Muse f=8 VQGAN decoder (fine-tuned: 4 residual blocks per level, base width 256)"),
        ("muse_text_encoder", build_text_encoder, {"batch": 1, "prompt_len": 128},
         "Muse text encoder (frozen T5-XXL v1.1 encoder)"),
    ],
    choices={"base_variant": tuple(BASE_VARIANTS)},
)
