"""LLaMA-2-7B, the LLM baseline: prefill, one decode step, and prefill + generation.

Config: the published `meta-llama/Llama-2-7b-hf` `config.json` (32 layers, hidden 4096,
32 heads, intermediate 11008, vocab 32000, RMSNorm, SwiGLU, RoPE). Parameters match
transformers `LlamaForCausalLM` exactly: 6,738,415,616.

- `llama2_7b_prefill`: one forward over `prompt_len` tokens (causal self-attention, axis
  "text"), stage "prefill"; the lm_head on the last position (what `generate()` computes).
- `llama2_7b_decode`: one forward of one new token whose attention reads `kv_len` keys (the
  `kv_len - 1` cached ones and its own): Lq = 1, Lk = kv_len; stage "decode". The KV-cache
  append is a data-movement op per layer for keys and values.
- `llama2_7b`: `generate(max_new_tokens=gen_tokens)`: the prefill yields the first token,
  then `gen_tokens - 1` decode steps, step i attending to prompt_len + i keys; a greedy
  argmax over the vocabulary follows every forward.

Approximation of `llama2_7b`: the decode steps differ only in their kv length, so they are
grouped into `kv_buckets` contiguous buckets of (nearly) equal size, each built once at the
bucket's mean kv length (rounded half up) and counted `repeat = bucket size` times. Only the
attention op and (with `kv_cache: dynamic`) the cache concat depend on the kv length and
both are linear in it, so decode-phase FLOPs and bytes are exact up to half a token per step;
`kv_buckets >= gen_tokens - 1` builds every step exactly. The graph has
(1 + buckets) x ~580 ops. Weights are shared by all phases, so decode ops carry params=0:
the pipeline's parameter count is the model's (the simulator's weight traffic comes from the
GEMM shapes, not from `params`).
"""

from __future__ import annotations

from contextlib import nullcontext
from types import MappingProxyType

from ..builder import GraphBuilder
from ..errors import InputError
from ..ir import OpGraph
from .blocks.config import option_config
from .blocks.llama import KV_CACHES, LlamaConfig, llama_causal_lm
from .blocks.specs import family_specs

LLAMA2_7B_CONFIG = MappingProxyType(
    {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": 32000,
    }
)


def llama_config(path: str = "") -> LlamaConfig:
    """The Llama-2-7B config, or the transformers `config.json` at `path` instead."""
    return LlamaConfig.from_dict(*option_config(path, LLAMA2_7B_CONFIG, what="Llama-2-7B", file_what=f"LLaMA config {path}"))


def forward_graph(
    name: str,
    stage: str,
    cfg: LlamaConfig,
    batch: int,
    new: int,
    past: int,
    kv_cache: str,
    *,
    prefix: str = "",
    sample: bool = False,
) -> OpGraph:
    """One `LlamaForCausalLM` forward (ops under `prefix`), optionally followed by greedy sampling."""
    b = GraphBuilder(name, stage)
    with b.scope(prefix) if prefix else nullcontext():
        logits = llama_causal_lm(b, cfg, batch, new, past=past, kv_cache=kv_cache)
        if sample:
            b.elementwise("sampling.argmax", [logits], "argmax")
    return b.build()


def decode_buckets(prompt_len: int, steps: int, buckets: int) -> list[tuple[int, int]]:
    """(kv length, repeat) per bucket for decode steps i = 1..steps attending to prompt_len + i keys."""
    k = min(buckets, steps)
    out, start = [], 1
    for j in range(k):
        size = steps // k + (1 if j < steps % k else 0)
        end = start + size - 1
        out.append((prompt_len + (start + end + 1) // 2, size))
        start = end + 1
    return out


def _check_cache(kv_cache: str) -> str:
    if kv_cache not in KV_CACHES:
        raise InputError(f"option 'kv_cache' must be one of {', '.join(KV_CACHES)}, got {kv_cache!r}")
    return kv_cache


def build_prefill(prompt_len: int, batch: int, kv_cache: str, config: str) -> OpGraph:
    """Prefill: one forward over `prompt_len` prompt tokens, writing their keys/values to the cache."""
    cfg = llama_config(config)
    return forward_graph("llama2_7b_prefill", "prefill", cfg, batch, prompt_len, 0, _check_cache(kv_cache))


def build_decode(kv_len: int, batch: int, kv_cache: str, config: str) -> OpGraph:
    """One decode step: a single new token attending to `kv_len` keys (kv_len - 1 cached + itself)."""
    cfg = llama_config(config)
    return forward_graph("llama2_7b_decode", "decode", cfg, batch, 1, kv_len - 1, _check_cache(kv_cache))


def build_pipeline(prompt_len: int, gen_tokens: int, batch: int, kv_buckets: int, kv_cache: str, config: str) -> OpGraph:
    """Prefill + (gen_tokens - 1) decode steps in `kv_buckets` kv-length buckets (see module docstring)."""
    cfg, kv_cache = llama_config(config), _check_cache(kv_cache)
    if prompt_len + gen_tokens - 1 > cfg.max_position_embeddings:
        raise InputError(
            f"prompt_len + gen_tokens - 1 = {prompt_len + gen_tokens - 1} exceeds max_position_embeddings "
            f"{cfg.max_position_embeddings}"
        )
    graph = OpGraph("llama2_7b")
    prefill = forward_graph(
        "llama2_7b.prefill", "prefill", cfg, batch, prompt_len, 0, kv_cache, prefix="prefill", sample=True
    )
    graph.extend(prefill)
    last = prefill.sinks()
    first = 0  # the first decode step of the bucket
    for kv_len, repeat in decode_buckets(prompt_len, gen_tokens - 1, kv_buckets):
        step = forward_graph(
            f"llama2_7b.decode_kv{kv_len}", "decode", cfg, batch, 1, kv_len - 1, kv_cache,
            prefix=f"decode_kv{kv_len}", sample=True,
        )  # fmt: skip
        graph.extend(step, after=last, repeat=repeat, steps=range(first, first + repeat), params=0)
        last, first = step.sinks(), first + repeat
    return graph


_REFERENCE = "transformers LlamaForCausalLM (meta-llama/Llama-2-7b-hf)"

MODELS = family_specs(
    "llm",
    _REFERENCE,
    ("llama2_7b", build_pipeline,
     {"prompt_len": 512, "gen_tokens": 128, "batch": 1, "kv_buckets": 4, "kv_cache": "static", "config": ""},
     "LLaMA-2-7B generation: prefill, then gen_tokens - 1 decode steps (kv lengths in buckets)"),
    [
        ("llama2_7b_prefill", build_prefill, {"prompt_len": 512, "batch": 1, "kv_cache": "static", "config": ""},
         "LLaMA-2-7B prefill over prompt_len tokens (causal self-attention, 6.74B params)"),
        ("llama2_7b_decode", build_decode, {"kv_len": 512, "batch": 1, "kv_cache": "static", "config": ""},
         "LLaMA-2-7B decode step: one token, attention over kv_len cached keys, KV-cache append"),
    ],
    choices={"kv_cache": KV_CACHES},
)
