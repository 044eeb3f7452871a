"""MaskGIT-style masked token transformers and their parallel decoding loop (Chang et al.
2022, "MaskGIT"), shared by Muse (Chang et al. 2023) and Phenaki (Villegas et al. 2022).

A masked transformer embeds token ids (the codebook plus one [MASK] id) with learned position
embeddings (`_token_transformer.embed_tokens`), runs a bidirectional transformer stack and maps
every token to codebook logits with MaskGIT's MLM head (dense, GELU, LayerNorm, then logits from the transposed token
embedding table: weights tied, so the product carries no parameters of its own).

Parallel decoding runs the whole transformer once per iteration on all tokens (MaskGIT's
sampler calls the model as a black box: nothing, not even the text projection or the
cross-attention keys/values, is cached across iterations). One iteration is built once and
appended with `repeat=steps`. With classifier-free guidance the token batch is doubled
(conditional and unconditional prompts together) and the two halves of the logits are
combined, l_g = (1 + t) l_c - t l_u (Muse Eq. 1). The sampler then takes a softmax over the
codebook, draws one code per token and keeps the most confident ones (the cosine schedule),
re-masking the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from ...builder import GraphBuilder, Tensor
from ...ir import OpGraph
from . import layers as _blocks
from .t5 import T5_V1_1_XXL, T5Config, t5_encoder

T5_XXL = T5Config.from_dict(T5_V1_1_XXL, "T5-XXL encoder")

# Emits a masked transformer on token ids (B, L) and returns its logits (B, L, codebook).
Transformer = Callable[[GraphBuilder, Tensor], Tensor]


def t5_xxl_graph(name: str, batch: int, prompt_len: int, *, prefix: bool) -> OpGraph:
    """The frozen T5-XXL encoder (4,762,310,656 params) on `batch` prompts, stage "text_encoder".

    With `prefix` the ops are named `text_encoder.<module path>` (inside a pipeline).
    """
    b = GraphBuilder(name, "text_encoder")
    with b.scope("text_encoder") if prefix else nullcontext():
        t5_encoder(b, T5_XXL, batch, prompt_len)
    return b.build()


def mlm_head(b: GraphBuilder, x: Tensor, codebook: int) -> Tensor:
    """MaskGIT's MLM head: dense, GELU, LayerNorm, logits tied to the token embedding."""
    d = x.shape[-1]
    with b.scope("head"):
        h = b.linear("dense", x, d)
        h = b.activation("act", h, "gelu")
        h = b.layer_norm("norm", h)
        return b.matmul("logits", h, b.input((d, codebook)))


def iteration(
    name: str, stage: str, tokens_shape: tuple[int, int], transformer: Transformer, *, cfg: bool, prefix: str = ""
) -> OpGraph:
    """One parallel-decoding iteration on token ids (N, L): [CFG concat], transformer, guidance, sampler.

    Ops are named `<prefix>.transformer.*`, `<prefix>.guidance.*` and `<prefix>.sampler.*`.
    """
    b = GraphBuilder(name, stage)
    ids = b.input(tokens_shape)
    n, tokens = tokens_shape
    with b.scope(prefix) if prefix else nullcontext():
        x = b.concat("guidance.concat_tokens", [ids, ids], dim=0) if cfg else ids
        with b.scope("transformer"):
            logits = transformer(b, x)
        codebook = logits.shape[-1]
        if cfg:  # logits.chunk(2): views of the two halves
            half = _blocks.view(logits, (n, tokens, codebook))
            logits = b.elementwise("guidance.combine", [half, half], "cfg_combine")
        with b.scope("sampler"):
            probs = b.softmax("softmax", logits)
            sampled = b.resample("sample", probs, (n, tokens), mode="categorical")
            b.elementwise("update_tokens", [sampled, ids], "confidence_mask")
    return b.build()
