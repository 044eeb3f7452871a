"""Phenaki (Villegas et al. 2022, "Phenaki: Variable Length Video Generation from Open Domain
Textual Descriptions", arXiv:2210.02399): a T5X text encoder, a 1.8B-parameter bidirectional
masked transformer (MaskGIT) over the C-ViViT tokens of a video clip, and the C-ViViT decoder.
No official implementation exists; every size below is the paper's or an assumption stated
here.

Pipeline and stages (Figure 2, Section 2): "text_encoder" (the prompts once; 2N with
classifier-free guidance), "transformer" (`steps` MaskGIT iterations over all (1 + (F-1)/2) x
16 x 16 video tokens at once, `_maskgit.iteration`) and "detokenizer" (the C-ViViT decoder,
once). The C-ViViT encoder (`phenaki_tokenizer`) is only needed to condition on given frames or
to continue a video, so text-to-video pipelines do not run it.

From the paper:
- C-ViViT (Section 2.1, Table 6, Appendix B.1.1): 11 frames of 128x128x3; the first frame cut
  into 8x8 patches, the others into 2x8x8 patches, linearly embedded (6 x 16 x 16 = 1536 tokens);
  4 spatial transformer layers (all-to-all within a token-frame, axis "spatial") then 4 causal
  temporal layers (across token-frames at one position, axis "temporal"); width 512, 8 heads,
  MLP 2048; factorized l2-normalized 32-d codes, 8192-entry codebook; the decoder mirrors it
  (temporal then spatial transformer) and ends in a single linear projection to pixels.
  "Approximately 50M parameters" for encoder plus decoder (B.1.1).
- Masked transformer (Table 7, B.3.1): 24 layers, width 2048, 32 heads, MLP 8192, sequence 1536,
  text conditioning by cross-attention to T5X embeddings, 1.8B parameters.
- Default clip: 11 frames at 128x128 (Table 6; "1.4 seconds at 8 fps", Section 1).
- Sampling: 48 MaskGIT iterations with guidance scale 12 for all videos in the paper (B.3.5;
  12 iterations against NUWA, B.3.3), hence `steps=48` and `cfg=True`.

Assumed (not stated in the paper):
- The T5X text encoder is T5-XXL (transformers' T5-XXL v1.1 encoder, 4096-d states): the
  masked transformer's cross-attention reads its keys and values straight from the 4096-d
  embeddings (`context_dim=4096`, no separate text projection). Only that choice reproduces
  the stated 1.8B: 24 x (16 x 2048^2 + 2 x 2048 x 2048) = 1.81B, while projecting the text to
  2048 first would give 1.64B.
- Pre-LayerNorm layers with biases and GELU MLPs, MaskGIT token / position embeddings and MLM
  head with tied logits (`_maskgit`).
- C-ViViT: learned spatial position embeddings (ViViT), no temporal position table (the causal
  temporal attention accepts any number of frames), a final LayerNorm after each transformer,
  separate output projections for first-frame (8x8x3) and video (2x8x8x3) patches.
- T5 prompts of 128 tokens (`prompt_len`; not stated); the unconditional CFG branch runs the
  same shapes.
- One pass generates one clip of `frames` frames: the masked transformer attends over all its
  tokens ("joint"); Phenaki's sliding-window extension to longer videos is not modeled.

Parameter counts vs the paper (tests/test_zoo_tokens.py): masked transformer 1,837,002,752
(+2.1% vs 1.8B); C-ViViT encoder + decoder 51,853,408 (+3.7% vs "approximately 50M"; each half
holds a copy of the 8192 x 32 codebook).
"""

from __future__ import annotations

from contextlib import nullcontext

from ..builder import GraphBuilder, Tensor
from ..ir import OpGraph
from .blocks import maskgit as _maskgit
from .blocks.specs import family_specs
from .blocks.token_transformer import StackConfig, embed_tokens, stack
from .blocks.vq import CViViTConfig, cvivit_decoder, cvivit_encoder

CVIVIT = CViViTConfig()
TRANSFORMER = StackConfig(
    layers=24, d_model=2048, heads=32, mlp=8192, cross=True, context_dim=_maskgit.T5_XXL.d_model, axis="joint"
)
STATED_TRANSFORMER_PARAMS = 1_800_000_000
STATED_CVIVIT_PARAMS = 50_000_000


def masked_transformer(prompt_len: int) -> _maskgit.Transformer:
    """The masked transformer on video token ids (B, T*h*w) with T5 states (B, prompt_len, 4096)."""

    def emit(b: GraphBuilder, ids: Tensor) -> Tensor:
        text = b.input((ids.shape[0], prompt_len, _maskgit.T5_XXL.d_model))
        x = embed_tokens(b, ids, CVIVIT.codebook + 1, TRANSFORMER.d_model)
        x = stack(b, TRANSFORMER, x, context=text)
        return _maskgit.mlm_head(b, x, CVIVIT.codebook)

    return emit


def _detokenizer_graph(name: str, batch: int, grid: tuple[int, int, int], *, prefix: bool) -> OpGraph:
    b = GraphBuilder(name, "detokenizer")
    with b.scope("cvivit") if prefix else nullcontext():
        cvivit_decoder(b, CVIVIT, b.input((batch, *grid)))
    return b.build()


def build_pipeline(frames: int, resolution: int, batch: int, steps: int, cfg: bool, prompt_len: int) -> OpGraph:
    """T5-XXL once, `steps` MaskGIT iterations over the clip's tokens (CFG), C-ViViT decoder once."""
    grid = CVIVIT.token_grid(frames, resolution)
    tokens = grid[0] * grid[1] * grid[2]
    text = _maskgit.t5_xxl_graph("phenaki.text_encoder", 2 * batch if cfg else batch, prompt_len, prefix=True)
    step = _maskgit.iteration(
        "phenaki.iteration", "transformer", (batch, tokens), masked_transformer(prompt_len), cfg=cfg
    )
    decode = _detokenizer_graph("phenaki.detokenizer", batch, grid, prefix=True)
    graph = OpGraph("phenaki")
    graph.extend(text)
    graph.extend(step, after=text.sinks(), repeat=steps)
    graph.extend(decode, after=step.sinks())
    return graph


def build_transformer(frames: int, resolution: int, batch: int, prompt_len: int) -> OpGraph:
    """One masked-transformer forward over all video tokens of a clip (1536 for 11 x 128^2)."""
    t, h, w = CVIVIT.token_grid(frames, resolution)
    b = GraphBuilder("phenaki_transformer", "transformer")
    masked_transformer(prompt_len)(b, b.input((batch, t * h * w)))
    return b.build()


def build_tokenizer(frames: int, resolution: int, batch: int) -> OpGraph:
    """The C-ViViT encoder and quantizer: video (batch, 3, frames, res, res) -> token ids."""
    b = GraphBuilder("phenaki_tokenizer", "tokenizer")
    cvivit_encoder(b, CVIVIT, b.input((batch, CVIVIT.channels, frames, resolution, resolution)))
    return b.build()


def build_detokenizer(frames: int, resolution: int, batch: int) -> OpGraph:
    """The C-ViViT decoder: token ids -> video (batch, 3, frames, res, res)."""
    return _detokenizer_graph("phenaki_detokenizer", batch, CVIVIT.token_grid(frames, resolution), prefix=False)


_REFERENCE = "paper: Villegas et al. 2022, arXiv:2210.02399 (no public implementation)"

MODELS = family_specs(
    "ttv",
    _REFERENCE,
    ("phenaki", build_pipeline,
     {"frames": 11, "resolution": 128, "batch": 1, "steps": 48, "cfg": True, "prompt_len": 128},
     "Phenaki text-to-video: T5-XXL, masked transformer x steps over C-ViViT tokens (CFG), C-ViViT decoder"),
    [
        ("phenaki_transformer", build_transformer, {"frames": 11, "resolution": 128, "batch": 1, "prompt_len": 128},
         "Phenaki masked transformer (24 layers, 2048 wide, 1.8B), one iteration over all video tokens"),
        ("phenaki_tokenizer", build_tokenizer, {"frames": 11, "resolution": 128, "batch": 1},
         "Phenaki C-ViViT encoder + quantizer (spatial then causal temporal transformer)"),
        ("phenaki_detokenizer", build_detokenizer, {"frames": 11, "resolution": 128, "batch": 1},
         "Phenaki C-ViViT decoder (causal temporal then spatial transformer, linear to pixels)"),
    ],
)
