"""CLIP text encoder (transformers `CLIPTextModel` / `CLIPTextModelWithProjection`).

Built from a `CLIPTextConfig` dict, so the same code serves SD 1.x (CLIP ViT-L/14), SD 2.x
(OpenCLIP ViT-H) and both SDXL encoders (the second one with `with_projection=True`).
Op names follow the transformers module paths (`encoder.layers.3.self_attn.q_proj`);
with a projection the model is wrapped as in transformers (`text_model.` prefix plus
`text_projection`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ...builder import GraphBuilder, Tensor
from ...errors import InputError
from . import layers as _blocks
from .config import ConfigReader

SEQ_LEN = 77  # CLIP tokenizer context length used by every Stable Diffusion pipeline

# Published text-encoder `config.json` files, kept here once and shared by the pipelines.
# openai/clip-vit-large-patch14 (SD 1.x `text_encoder`, SDXL `text_encoder`).
CLIP_VIT_L14_TEXT_CONFIG = MappingProxyType(
    {
        "_name_or_path": "openai/clip-vit-large-patch14",
        "architectures": ["CLIPTextModel"],
        "hidden_act": "quick_gelu",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "vocab_size": 49408,
    }
)

# OpenCLIP ViT-H/14's text tower as converted for SD 2.x and ModelScope T2V: 23 of its 24
# layers are kept, so the last hidden state is OpenCLIP's penultimate layer.
OPENCLIP_VIT_H14_TEXT_CONFIG = MappingProxyType(
    {
        "architectures": ["CLIPTextModel"],
        "hidden_act": "gelu",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 23,
        "projection_dim": 512,
        "vocab_size": 49408,
    }
)


@dataclass(frozen=True)
class CLIPTextConfig:
    """The structural fields of a transformers `CLIPTextConfig`."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    max_position_embeddings: int
    hidden_act: str
    projection_dim: int

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], what: str = "CLIP text encoder") -> CLIPTextConfig:
        """Read a transformers config dict (defaults as in `CLIPTextConfig`); unknown keys ignored."""
        r = ConfigReader(config, what)
        cfg = cls(
            vocab_size=r.positive("vocab_size", 49408),
            hidden_size=r.positive("hidden_size", 512),
            intermediate_size=r.positive("intermediate_size", 2048),
            num_hidden_layers=r.positive("num_hidden_layers", 12),
            num_attention_heads=r.positive("num_attention_heads", 8),
            max_position_embeddings=r.positive("max_position_embeddings", 77),
            hidden_act=_blocks.activation_fn(r.get("hidden_act", "quick_gelu"), what),
            projection_dim=r.positive("projection_dim", 512),
        )
        if cfg.hidden_size % cfg.num_attention_heads:
            raise InputError(f"{what}: hidden_size {cfg.hidden_size} is not divisible by {cfg.num_attention_heads} heads")
        return cfg


def clip_text_encoder(
    b: GraphBuilder,
    config: CLIPTextConfig,
    batch: int,
    *,
    seq_len: int = SEQ_LEN,
    with_projection: bool = False,
) -> tuple[Tensor, Tensor]:
    """Emit a CLIP text transformer at `batch` prompts of `seq_len` tokens.

    Returns (last_hidden_state (B, L, hidden), pooled output): the pooled output is the EOS
    token's state (B, hidden), or its `text_projection` (B, projection_dim) with a projection.
    """
    if seq_len > config.max_position_embeddings:
        raise InputError(f"sequence length {seq_len} exceeds max_position_embeddings {config.max_position_embeddings}")
    if not with_projection:
        return _text_model(b, config, batch, seq_len)
    with b.scope("text_model"):
        hidden, pooled = _text_model(b, config, batch, seq_len)
    return hidden, b.linear("text_projection", pooled, config.projection_dim, bias=False)


def _text_model(b: GraphBuilder, cfg: CLIPTextConfig, batch: int, seq_len: int) -> tuple[Tensor, Tensor]:
    d = cfg.hidden_size
    with b.scope("embeddings"):
        tokens = b.embedding("token_embedding", b.input((batch, seq_len)), cfg.vocab_size, d)
        positions = b.embedding("position_embedding", b.input((1, seq_len)), cfg.max_position_embeddings, d)
        x = b.add("add", tokens, positions)
    for i in range(cfg.num_hidden_layers):
        with b.scope("encoder", "layers", i):
            x = _encoder_layer(b, cfg, x)
    x = b.layer_norm("final_layer_norm", x)
    # pooler_output: the hidden state at each prompt's EOS position (an index gather).
    pooled = b.move("pooler", x, (batch, d), what="gather")
    return x, pooled


def _encoder_layer(b: GraphBuilder, cfg: CLIPTextConfig, x: Tensor) -> Tensor:
    """`CLIPEncoderLayer`: pre-LN causal self-attention and a two-layer MLP, each residual."""
    h = b.layer_norm("layer_norm1", x)
    h = _blocks.attention(
        b,
        "self_attn",
        h,
        heads=cfg.num_attention_heads,
        inner=cfg.hidden_size,
        qkv_bias=True,
        axis="text",
        causal=True,
        proj=_blocks.CLIP_PROJ,
    )
    x = b.add("self_attn_add", x, h)
    h = b.layer_norm("layer_norm2", x)
    with b.scope("mlp"):
        h = b.linear("fc1", h, cfg.intermediate_size)
        h = b.activation("act", h, cfg.hidden_act)
        h = b.linear("fc2", h, cfg.hidden_size)
    return b.add("mlp_add", x, h)
