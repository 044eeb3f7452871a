"""LLaMA decoder (transformers `LlamaForCausalLM`) as an operator graph.

One forward over `new` tokens with `past` tokens already in the KV cache: token embedding,
rotary position features, `num_hidden_layers` pre-RMSNorm blocks (q/k/v projections, RoPE
on q and k as elementwise work, the KV-cache write, causal self-attention over
past + new keys, o_proj, residual; RMSNorm, SwiGLU MLP gate_proj/up_proj/down_proj,
residual), the final RMSNorm and the `lm_head`. Op names are the transformers module paths
(`model.layers.3.self_attn.q_proj`, `lm_head`).

KV cache (transformers `cache_utils`): "static" (`StaticCache`: `index_copy_` of the new keys
and values into a preallocated cache, a copy of the new tokens only; attention reads the
valid past + new entries, as paged/flash decoding kernels do) or "dynamic" (`DynamicCache`:
`torch.cat([cache, new])`, which re-copies the whole cache every step). Head split/merge
transposes are free for the fused attention kernels (as in `_blocks`); grouped-query
attention is not modeled (num_key_value_heads must equal num_attention_heads).

Two options of LLaMA-derived models (defaults off, the LLaMA layout): `qk_norm`, Chameleon's
per-head query/key LayerNorm (transformers `ChameleonLayerNorm`: statistics over each head's
`head_dim` values, then a per-head affine weight and bias of shape (heads, head_dim), applied
after the q/k projections and before RoPE), and `swin_norm`, the Swin-style norm placement
(`ChameleonSwinDecoderLayer`: each sublayer's RMSNorm is applied to its output before the
residual add instead of to its input).

The `lm_head` runs on the last position only by default, as `generate()` does
(`logits_to_keep=1`); `all_logits=True` gives a plain `forward()` (logits for every token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader

KV_CACHES = ("static", "dynamic")


@dataclass(frozen=True)
class LlamaConfig:
    """The structural fields of a transformers `LlamaConfig`."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    head_dim: int
    max_position_embeddings: int
    attention_bias: bool
    mlp_bias: bool
    act: str
    qk_norm: bool = False
    swin_norm: bool = False

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "LLaMA") -> LlamaConfig:
        """Read a transformers config dict (defaults as in `LlamaConfig`); unknown keys ignored."""
        r = ConfigReader(config, what)
        heads = r.positive("num_attention_heads", 32)
        hidden = r.positive("hidden_size", 4096)
        if r.positive("num_key_value_heads", heads) != heads:
            raise InputError(f"{what}: grouped-query attention (num_key_value_heads != num_attention_heads) is not supported")
        r.only("tie_word_embeddings", (False,), False)  # a tied lm_head would need shared params
        if hidden % heads:
            raise InputError(f"{what}: hidden_size {hidden} is not divisible by {heads} heads")
        return cls(
            vocab_size=r.positive("vocab_size", 32000),
            hidden_size=hidden,
            intermediate_size=r.positive("intermediate_size", 11008),
            num_hidden_layers=r.positive("num_hidden_layers", 32),
            num_attention_heads=heads,
            head_dim=r.positive("head_dim", hidden // heads),
            max_position_embeddings=r.positive("max_position_embeddings", 2048),
            attention_bias=r.flag("attention_bias", False),
            mlp_bias=r.flag("mlp_bias", False),
            act=_blocks.activation_fn(r.get("hidden_act", "silu"), what),
        )

    @property
    def inner(self) -> int:
        """Width of the concatenated attention heads."""
        return self.num_attention_heads * self.head_dim


def llama_causal_lm(
    b: GraphBuilder,
    cfg: LlamaConfig,
    batch: int,
    new: int,
    *,
    past: int = 0,
    kv_cache: str = "static",
    all_logits: bool = False,
) -> Tensor:
    """Emit one `LlamaForCausalLM` forward on `new` tokens after `past` cached ones; returns logits."""
    if kv_cache not in KV_CACHES:
        raise InputError(f"kv_cache must be one of {', '.join(KV_CACHES)}, got {kv_cache!r}")
    if past + new > cfg.max_position_embeddings:
        raise InputError(
            f"sequence length {past + new} exceeds max_position_embeddings {cfg.max_position_embeddings}"
        )
    with b.scope("model"):
        x = b.embedding("embed_tokens", b.input((batch, new)), cfg.vocab_size, cfg.hidden_size)
        rope = _rotary_embedding(b, cfg, batch, new)
        for i in range(cfg.num_hidden_layers):
            with b.scope("layers", i):
                x = _decoder_layer(b, cfg, x, rope, past=past, kv_cache=kv_cache)
        x = b.layer_norm("norm", x, bias=False, rms=True)
    if not all_logits:
        x = _blocks.view(x, (batch, 1, cfg.hidden_size))  # hidden_states[:, -1:, :]
    return b.linear("lm_head", x, cfg.vocab_size, bias=False)


def _rotary_embedding(b: GraphBuilder, cfg: LlamaConfig, batch: int, new: int) -> Tensor:
    """`LlamaRotaryEmbedding`: angles = positions x inv_freq (an outer product with K = 1,
    elementwise work), emb = cat(angles, angles), then cos and sin: (B, L, d) each, one op."""
    positions = b.input((batch, new, 1))
    inv_freq = b.input((1, 1, 2 * cfg.head_dim))
    return b.elementwise("rotary_emb", [positions, inv_freq], "rotary_cos_sin")


def _decoder_layer(b: GraphBuilder, cfg: LlamaConfig, x: Tensor, rope: Tensor, *, past: int, kv_cache: str) -> Tensor:
    """Pre-norm (`LlamaDecoderLayer`) or, with `swin_norm`, norm-after-sublayer residual blocks."""

    def norm(name: str, t: Tensor) -> Tensor:
        return b.layer_norm(name, t, bias=False, rms=True)

    h = x if cfg.swin_norm else norm("input_layernorm", x)
    h = _self_attention(b, cfg, h, rope, past=past, kv_cache=kv_cache)
    x = b.add("self_attn_add", x, norm("input_layernorm", h) if cfg.swin_norm else h)
    h = x if cfg.swin_norm else norm("post_attention_layernorm", x)
    with b.scope("mlp"):
        gate = b.linear("gate_proj", h, cfg.intermediate_size, bias=cfg.mlp_bias)
        gate = b.activation("act_fn", gate, cfg.act)
        up = b.linear("up_proj", h, cfg.intermediate_size, bias=cfg.mlp_bias)
        h = b.mul("gate_mul", gate, up)
        h = b.linear("down_proj", h, cfg.hidden_size, bias=cfg.mlp_bias)
    return b.add("mlp_add", x, norm("post_attention_layernorm", h) if cfg.swin_norm else h)


def _self_attention(b: GraphBuilder, cfg: LlamaConfig, x: Tensor, rope: Tensor, *, past: int, kv_cache: str) -> Tensor:
    """`LlamaAttention`: q/k/v, RoPE on q and k, cache write, SDPA over past + new keys, o_proj.

    The SDPA op carries the module path (`model.layers.3.self_attn`), the projections sit
    under it, as in `_blocks.attention`.
    """
    batch, new, _ = x.shape
    cos_sin = _blocks.view(rope, (batch, new, 1))
    with b.scope("self_attn"):
        q = b.linear("q_proj", x, cfg.inner, bias=cfg.attention_bias)
        k = b.linear("k_proj", x, cfg.inner, bias=cfg.attention_bias)
        v = b.linear("v_proj", x, cfg.inner, bias=cfg.attention_bias)
        if cfg.qk_norm:
            q, k = _head_norm(b, "q_norm", q, cfg), _head_norm(b, "k_norm", k, cfg)
        # apply_rotary_pos_emb: q * cos + rotate_half(q) * sin, one vector op per tensor
        q = b.elementwise("rope_q", [q, cos_sin], "rope")
        k = b.elementwise("rope_k", [k, cos_sin], "rope")
        k = _cache_update(b, "cache_keys", k, past, kv_cache)
        v = _cache_update(b, "cache_values", v, past, kv_cache)
    o = b.attention("self_attn", q, k, v, cfg.num_attention_heads, role="self", axis="text", causal=new > 1,
                    kv_growing=kv_cache == "dynamic" and past > 0)
    with b.scope("self_attn"):
        return b.linear("o_proj", o, cfg.hidden_size, bias=cfg.attention_bias)


def _head_norm(b: GraphBuilder, name: str, x: Tensor, cfg: LlamaConfig) -> Tensor:
    """`ChameleonLayerNorm((heads, head_dim))`: `F.layer_norm` over each head's values without
    affine, then `x * weight + bias` with per-head (heads, head_dim) weight and bias; the
    affine op carries the module's name and its 2 x heads x head_dim parameters."""
    batch, n, inner = x.shape
    heads = _blocks.view(x, (batch, n, cfg.num_attention_heads, cfg.head_dim))
    normed = b.layer_norm(f"{name}.layer_norm", heads, affine=False)
    out = b.elementwise(name, [normed], "affine", params=2 * inner)
    return _blocks.view(out, x.shape)


def _cache_update(b: GraphBuilder, name: str, new: Tensor, past: int, kv_cache: str) -> Tensor:
    """The cache write of one layer's keys or values; returns the (B, past + new, inner) cache."""
    batch, n, inner = new.shape
    if kv_cache == "dynamic" and past:
        return b.concat(name, [b.input((batch, past, inner)), new], dim=1)
    written = b.move(name, new, new.shape, what="kv_cache_write" if kv_cache == "static" else "kv_cache_cat")
    return _blocks.view(written, (batch, past + n, inner))
