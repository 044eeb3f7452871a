"""The unCLIP (DALL-E 2) diffusion prior: text -> CLIP image embedding, as an operator graph.

Ramesh et al. 2022 (arXiv:2204.06125), Sec. 2.2: a decoder-only Transformer with a causal
attention mask over, in order, the encoded text, the CLIP text embedding, an embedding of
the diffusion timestep, the noised CLIP image embedding, and a final embedding whose output
predicts the unnoised CLIP image embedding. Table 3 (diffusion prior column): text context
256, width 2048, depth 24, 32 heads, 64 sampling steps.

Assumptions (not stated in the paper): GLIDE-style pre-LN residual blocks (fused qkv with
bias, 4x GELU MLP; Nichol et al. 2022, arXiv:2112.10741, whose text transformer has the same
width and depth), a 50,257-entry BPE vocabulary (GPT-2/GLIDE BPE), learned positional
embeddings, one linear projection each for the CLIP text embedding, the sinusoidal timestep
features and the noised image embedding, a learned final query token, and a final
LayerNorm + linear projection of that token to the CLIP width. The MLP width is 4 x width
unless `mlp_width` says otherwise (Make-A-Video calibrates it to unCLIP's stated "1B": see
`make_a_video`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from . import layers as _blocks


@dataclass(frozen=True)
class PriorConfig:
    """unCLIP diffusion prior hyperparameters."""

    width: int = 2048
    layers: int = 24
    heads: int = 32
    text_ctx: int = 256
    vocab: int = 50257
    clip_dim: int = 1024
    mlp_width: int = 0  # MLP hidden width; 0: 4 x width (GLIDE/CLIP)

    @property
    def mlp(self) -> int:
        return self.mlp_width or 4 * self.width

    @property
    def seq_len(self) -> int:
        """Text tokens + CLIP text embedding + timestep + noised image embedding + final query."""
        return self.text_ctx + 4


def diffusion_prior(b: GraphBuilder, cfg: PriorConfig, noised: Tensor) -> Tensor:
    """One prior forward on noised CLIP image embeddings (N, clip_dim); returns (N, clip_dim).

    The BPE text tokens (N, text_ctx) and the CLIP text embedding (N, clip_dim) are graph inputs.
    """
    n, d = noised.shape[0], cfg.width
    text = b.embedding("token_embedding", b.input((n, cfg.text_ctx)), cfg.vocab, d)
    clip_text = b.linear("clip_text_proj", b.input((n, cfg.clip_dim)), d)
    t = _blocks.sinusoidal_embedding(b, "timestep_embedding", b.input((n,)), d)
    t = b.linear("time_proj", t, d)
    image = b.linear("image_proj", noised, d)
    final = b.embedding("final_query", b.input((n, 1)), 1, d)
    tokens = [text] + [_blocks.view(e, (n, 1, d)) for e in (clip_text, t, image)] + [final]
    x = b.concat("sequence_concat", tokens, dim=1)
    positions = b.embedding("positional_embedding", b.input((1, cfg.seq_len)), cfg.seq_len, d)
    x = b.add("positional_add", x, positions)
    for i in range(cfg.layers):
        with b.scope("resblocks", i):
            x = _residual_block(b, cfg, x)
    x = b.layer_norm("final_ln", _blocks.view(x, (n, 1, d)))  # the final query's output
    return _blocks.view(b.linear("out_proj", x, cfg.clip_dim), (n, cfg.clip_dim))


def _residual_block(b: GraphBuilder, cfg: PriorConfig, x: Tensor) -> Tensor:
    """GLIDE/CLIP `ResidualAttentionBlock`: pre-LN causal self-attention and a 4x GELU MLP."""
    d = x.shape[-1]
    h = b.layer_norm("ln_1", x)
    with b.scope("attn"):
        qkv = b.linear("c_qkv", h, 3 * d)
        q = k = v = _blocks.view(qkv, h.shape)
    o = b.attention("attn", q, k, v, cfg.heads, role="self", axis="text", causal=True)
    with b.scope("attn"):
        o = b.linear("c_proj", o, d)
    x = b.add("attn_add", x, o)
    h = b.layer_norm("ln_2", x)
    with b.scope("mlp"):
        h = b.linear("c_fc", h, cfg.mlp)
        h = b.activation("gelu", h, "gelu")
        h = b.linear("c_proj", h, d)
    return b.add("mlp_add", x, h)
