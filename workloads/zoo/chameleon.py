"""Chameleon-7B (Chameleon Team 2024, arXiv:2405.09818): an early-fusion token model that
generates images as 1,024 VQ tokens, autoregressively, with the LLaMA-2 decoder of its LM.

Config: the published `facebook/chameleon-7b` `config.json` (transformers 4.44 conversion):
32 layers, hidden 4096, 32 heads, intermediate 11008, vocabulary 65,536 (text BPE and the 8,192
image codes share it), RoPE (theta 10,000), RMSNorm, SwiGLU, untied lm_head, and the two
changes the paper makes to LLaMA-2 for training stability (Section 2.3): QK-norm (a per-head
LayerNorm on queries and keys, `ChameleonLayerNorm`) in every layer, and `swin_norm` false (the
7B model keeps pre-norm; the norm-reordering is the 34B's). The LM is `blocks.llama` with
`qk_norm=True`; its parameters match transformers `ChameleonForConditionalGeneration` minus its
VQ encoder (`model.vqmodel`): 7,013,666,816. The VQ tokenizer is `blocks.chameleon_vq`.

Models:
- `chameleon_7b` (text-to-image): prefill over `prompt_len` prompt tokens (the reference
  `ImageDecoder` appends the begin-of-image token to the prompt; `prompt_len` counts it), whose
  forward yields the first image token, then `image_tokens - 1` decode steps, step i attending to
  prompt_len + i keys (bucketed as in `llama2_7b`: `kv_buckets`), then the VQ decoder turns the
  32x32 tokens into a 512x512 image. Stages "prefill", "decode", "vq_decoder".
- `chameleon_7b_prefill` / `chameleon_7b_decode`: one forward, as `llama2_7b_prefill/_decode`.
- `chameleon_vq_encoder` (image -> tokens, for image inputs) and `chameleon_vq_decoder`.

Classifier-free guidance (`guidance`; the zoo's boolean `cfg` means two-row CFG, Chameleon's
reference uses three rows): the reference inference code (facebookresearch/chameleon,
`chameleon/inference/chameleon.py`, `ImageDecoder`) runs image generation with in-batch
"instruct" CFG: every prompt becomes three rows (full prompt, the prompt reduced to its image
tokens, and the unconditional `<bos><begin-image>`), left-padded to the longest
(`AlignPromptRight`), decoded together and combined by `InBatchInstructCFGLogitsProcessor`
(text scale 3.0, image scale 1.2): `guidance="instruct"`, 3 rows per image, the default. `"text"` is
the common two-row CFG (conditional + unconditional, as in Lumina-mGPT/Anole), `"none"` one row.
Prefill and decode run `batch x rows` sequences; only the first row's tokens are decoded to pixels.
After every forward the logits pass the processors of the reference `ImageDecoder`: the CFG
combination of the rows (vector work over rows x vocabulary), the allow-only-image-tokens mask,
temperature and top-p (a softmax over the vocabulary) and multinomial sampling. The component
forwards (`_prefill`, `_decode`) end like `ChameleonForConditionalGeneration.forward`: the
logits of the last position with the image tokens masked (one masked fill).

Weights are shared by all phases, so decode ops carry params=0 (as in `llama2_7b`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace
from types import MappingProxyType

from ..builder import GraphBuilder, Tensor
from ..errors import InputError
from ..ir import OpGraph
from .blocks import layers as _blocks
from .blocks.chameleon_vq import VQConfig, image_tokens_side, vq_decoder, vq_encoder
from .blocks.config import ConfigReader, option_config
from .blocks.llama import KV_CACHES, LlamaConfig, llama_causal_lm
from .blocks.specs import family_specs
from .llama import decode_buckets

CHAMELEON_VQ_CONFIG = MappingProxyType(
    {
        "attn_resolutions": None,
        "attn_type": "vanilla",
        "base_channels": 128,
        "channel_multiplier": [1, 1, 2, 2, 4],
        "double_latent": False,
        "dropout": 0.0,
        "embed_dim": 256,
        "in_channels": 3,
        "initializer_range": 0.02,
        "latent_channels": 256,
        "model_type": "chameleon_vqgan",
        "num_embeddings": 8192,
        "num_res_blocks": 2,
        "out_channels": 3,
        "resolution": 512,
    }
)

# facebook/chameleon-7b config.json without its 65,536-entry `vocabulary_map` (token names only).
CHAMELEON_7B_CONFIG = MappingProxyType(
    {
        "architectures": ["ChameleonForConditionalGeneration"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "image_token_id": 8711,
        "initializer_range": 0.02,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
        "mlp_bias": False,
        "model_parallel_size": 1,
        "model_type": "chameleon",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "pad_token_id": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "swin_norm": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 65536,
        "vq_config": CHAMELEON_VQ_CONFIG,
    }
)

# Rows per generated image under each guidance mode (see the module docstring).
GUIDANCE_ROWS = MappingProxyType({"instruct": 3, "text": 2, "none": 1})


def chameleon_config(path: str = "") -> tuple[LlamaConfig, VQConfig]:
    """The Chameleon-7B LM and VQ configs, or those of the transformers `config.json` at `path`."""
    config, what = option_config(path, CHAMELEON_7B_CONFIG, what="Chameleon-7B", file_what=f"Chameleon config {path}")
    r = ConfigReader(config, what)
    lm = replace(LlamaConfig.from_dict(config, what), qk_norm=True, swin_norm=r.flag("swin_norm", False))
    vq = r.get("vq_config", {})
    if not isinstance(vq, Mapping):
        raise r.error("vq_config", vq, "a mapping")
    return lm, VQConfig.from_dict(vq, f"{what} vq_config")


def _rows(guidance: str) -> int:
    if guidance not in GUIDANCE_ROWS:
        raise InputError(f"option 'guidance' must be one of {', '.join(GUIDANCE_ROWS)}, got {guidance!r}")
    return GUIDANCE_ROWS[guidance]


def _check_cache(kv_cache: str) -> str:
    if kv_cache not in KV_CACHES:
        raise InputError(f"option 'kv_cache' must be one of {', '.join(KV_CACHES)}, got {kv_cache!r}")
    return kv_cache


def _image_sampling(b: GraphBuilder, logits: Tensor, batch: int, rows: int) -> None:
    """The reference `ImageDecoder`'s logits processors and sampler on (batch x rows, 1, vocab)."""
    with b.scope("sampling"):
        vocab = logits.shape[-1]
        if rows > 1:  # cond + scale_text (cond - img) + scale_image (img - uncond), per image
            parts = [_blocks.view(logits, (batch, 1, vocab))] * rows
            logits = b.elementwise("cfg_combine", parts, "cfg")
        logits = b.elementwise("allow_image_tokens", [logits], "masked_fill")
        probs = b.softmax("temperature_top_p", logits)
        b.elementwise("multinomial", [probs], "sample")


def forward_graph(
    name: str, stage: str, cfg: LlamaConfig, batch: int, new: int, past: int, kv_cache: str,
    *, rows: int = 0, prefix: str = "",
) -> OpGraph:  # fmt: skip
    """One Chameleon LM forward (ops under `prefix`) on `batch` sequences; with `rows` > 0 it is a
    text-to-image step over batch / rows images (guidance and sampling follow), else a plain
    `ChameleonForConditionalGeneration.forward` (image tokens masked in the logits)."""
    b = GraphBuilder(name, stage)
    with b.scope(prefix) if prefix else nullcontext():
        logits = llama_causal_lm(b, cfg, batch, new, past=past, kv_cache=kv_cache)
        if rows:
            _image_sampling(b, logits, batch // rows, rows)
        else:
            b.elementwise("mask_image_logits", [logits], "masked_fill")
    return b.build()


def build_pipeline(
    prompt_len: int, image_tokens: int, batch: int, guidance: str, kv_buckets: int, kv_cache: str, config: str
) -> OpGraph:
    """Text-to-image: prefill, image_tokens - 1 decode steps in kv buckets, VQ decode (see module)."""
    lm, vq = chameleon_config(config)
    rows, kv_cache, side = _rows(guidance), _check_cache(kv_cache), image_tokens_side(image_tokens)
    if prompt_len + image_tokens - 1 > lm.max_position_embeddings:
        raise InputError(
            f"prompt_len + image_tokens - 1 = {prompt_len + image_tokens - 1} exceeds max_position_embeddings "
            f"{lm.max_position_embeddings}"
        )
    seqs = batch * rows
    graph = OpGraph("chameleon_7b")
    prefill = forward_graph(
        "chameleon_7b.prefill", "prefill", lm, seqs, prompt_len, 0, kv_cache, rows=rows, prefix="prefill"
    )
    graph.extend(prefill)
    last, first = prefill.sinks(), 0
    for kv_len, repeat in decode_buckets(prompt_len, image_tokens - 1, kv_buckets):
        step = forward_graph(
            f"chameleon_7b.decode_kv{kv_len}", "decode", lm, seqs, 1, kv_len - 1, kv_cache, rows=rows,
            prefix=f"decode_kv{kv_len}",
        )  # fmt: skip
        graph.extend(step, after=last, repeat=repeat, steps=range(first, first + repeat), params=0)
        last, first = step.sinks(), first + repeat
    b = GraphBuilder("chameleon_7b.vq_decoder", "vq_decoder")
    vq_decoder(b, vq, b.input((batch, side, side)))
    graph.extend(b.build(), after=last)
    return graph


def build_prefill(prompt_len: int, batch: int, kv_cache: str, config: str) -> OpGraph:
    """One forward over `prompt_len` tokens (logits of the last position)."""
    lm, _ = chameleon_config(config)
    return forward_graph("chameleon_7b_prefill", "prefill", lm, batch, prompt_len, 0, _check_cache(kv_cache))


def build_decode(kv_len: int, batch: int, kv_cache: str, config: str) -> OpGraph:
    """One decode step: a single new token attending to `kv_len` keys (kv_len - 1 cached + itself)."""
    lm, _ = chameleon_config(config)
    return forward_graph("chameleon_7b_decode", "decode", lm, batch, 1, kv_len - 1, _check_cache(kv_cache))


def build_vq_encoder(resolution: int, batch: int, config: str) -> OpGraph:
    """Image (batch, 3, resolution, resolution) -> (resolution / 16)^2 tokens per image."""
    _, vq = chameleon_config(config)
    vq.token_side(resolution)
    b = GraphBuilder("chameleon_vq_encoder", "vq_encoder")
    vq_encoder(b, vq, b.input((batch, vq.in_channels, resolution, resolution)))
    return b.build()


def build_vq_decoder(image_tokens: int, batch: int, config: str) -> OpGraph:
    """image_tokens (a square grid) per image -> pixels (16 per token along each axis)."""
    _, vq = chameleon_config(config)
    side = image_tokens_side(image_tokens)
    b = GraphBuilder("chameleon_vq_decoder", "vq_decoder")
    vq_decoder(b, vq, b.input((batch, side, side)))
    return b.build()


_REFERENCE = "transformers ChameleonForConditionalGeneration (facebook/chameleon-7b); VQ decoder: facebookresearch/chameleon"

MODELS = family_specs(
    "transformer-tti",
    _REFERENCE,
    ("chameleon_7b", build_pipeline,
     {"prompt_len": 64, "image_tokens": 1024, "batch": 1, "guidance": "instruct", "kv_buckets": 4, "kv_cache": "static",
      "config": ""},
     "Chameleon-7B text-to-image: prefill, 1,023 decode steps with in-batch CFG rows, VQGAN decode to 512x512"),
    [
        ("chameleon_7b_prefill", build_prefill, {"prompt_len": 512, "batch": 1, "kv_cache": "static", "config": ""},
         "Chameleon-7B LM prefill over prompt_len tokens (QK-norm LLaMA-2, vocab 65,536)"),
        ("chameleon_7b_decode", build_decode, {"kv_len": 512, "batch": 1, "kv_cache": "static", "config": ""},
         "Chameleon-7B LM decode step: one token, attention over kv_len cached keys"),
        ("chameleon_vq_encoder", build_vq_encoder, {"resolution": 512, "batch": 1, "config": ""},
         "Chameleon VQGAN encoder: 512x512 image -> 32x32 tokens (codebook 8192)"),
        ("chameleon_vq_decoder", build_vq_decoder, {"image_tokens": 1024, "batch": 1, "config": ""},
         "Chameleon VQGAN decoder: 32x32 tokens -> 512x512 image"),
    ],
    choices={"kv_cache": KV_CACHES, "guidance": tuple(GUIDANCE_ROWS)},
)
