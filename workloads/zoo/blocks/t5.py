"""T5 encoder (transformers `T5EncoderModel`), the text encoder of Imagen, PixArt-alpha and
CogVideoX (T5-XXL v1.1: 4,762,310,656 parameters).

Built from a `T5Config` dict. Each block is pre-RMSNorm self-attention (q/k/v/o without
bias, no 1/sqrt(d) scaling) then a feed-forward (gated-gelu: wi_0, wi_1, wo; relu: wi, wo).
The relative position bias table lives in block 0 and its (heads, L, L) bias is computed once
and added to the scores of every layer (inside the attention op here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader

T5_PROJ = ("q", "k", "v", "o")

# google/t5-v1_1-xxl encoder config (the T5-XXL used by Imagen, PixArt-alpha, CogVideoX).
T5_V1_1_XXL: Mapping[str, Any] = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
}


@dataclass(frozen=True)
class T5Config:
    """The structural fields of a transformers `T5Config` (encoder side)."""

    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_heads: int
    buckets: int
    gated: bool
    act: str

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "T5 encoder") -> T5Config:
        r = ConfigReader(config, what)
        proj = r.only("feed_forward_proj", ("gated-gelu", "relu", "gated-relu"), "relu")
        return cls(
            vocab_size=r.positive("vocab_size", 32128),
            d_model=r.positive("d_model", 512),
            d_kv=r.positive("d_kv", 64),
            d_ff=r.positive("d_ff", 2048),
            num_layers=r.positive("num_layers", 6),
            num_heads=r.positive("num_heads", 8),
            buckets=r.positive("relative_attention_num_buckets", 32),
            gated=proj.startswith("gated"),
            act="gelu" if proj.endswith("gelu") else "relu",
        )


def t5_encoder(b: GraphBuilder, cfg: T5Config, batch: int, seq_len: int) -> Tensor:
    """Emit a T5 encoder over `batch` prompts of `seq_len` tokens; returns (B, L, d_model)."""
    if seq_len <= 0:
        raise InputError(f"T5 sequence length must be positive, got {seq_len}")
    ids = b.input((batch, seq_len))
    x = b.embedding("shared", ids, cfg.vocab_size, cfg.d_model)
    inner = cfg.num_heads * cfg.d_kv
    with b.scope("encoder"):
        for i in range(cfg.num_layers):
            with b.scope("block", i):
                x = _block(b, cfg, x, inner, first=i == 0)
        return b.layer_norm("final_layer_norm", x, bias=False, rms=True)


def _block(b: GraphBuilder, cfg: T5Config, x: Tensor, inner: int, *, first: bool) -> Tensor:
    seq_len = x.shape[1]
    with b.scope("layer", 0):
        h = b.layer_norm("layer_norm", x, bias=False, rms=True)
        if first:  # bucketed relative positions -> (1, heads, L, L) bias, reused by all layers
            positions = b.input((seq_len, seq_len))
            with b.scope("SelfAttention"):
                b.embedding("relative_attention_bias", positions, cfg.buckets, cfg.num_heads)
        h = _blocks.attention(b, "SelfAttention", h, heads=cfg.num_heads, inner=inner, qkv_bias=False, out_bias=False, role="self", axis="text", proj=T5_PROJ)
        x = b.add("residual_add", x, h)
    with b.scope("layer", 1):
        h = b.layer_norm("layer_norm", x, bias=False, rms=True)
        with b.scope("DenseReluDense"):
            if cfg.gated:
                gate = b.activation("act", b.linear("wi_0", h, cfg.d_ff, bias=False), cfg.act)
                h = b.mul("gate_mul", gate, b.linear("wi_1", h, cfg.d_ff, bias=False))
            else:
                h = b.activation("act", b.linear("wi", h, cfg.d_ff, bias=False), cfg.act)
            h = b.linear("wo", h, cfg.d_model, bias=False)
        return b.add("residual_add", x, h)
