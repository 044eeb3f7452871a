"""The models `validate_forward.py` runs, as *cases*: a model name with optional sizes.

A case is written `name` (the published default sizes below) or `name@token_token...` with tokens
`<N>px` (image side / video height), `b<N>` (batch), `f<N>` (video frames), `kv<N>` (LLaMA KV-cache
length), e.g. `sd15_unet@768px_b1`, `modelscope_unet@f24`, `llama2_7b_decode@kv2048_b8`. The label
written into the CSVs is the case in this canonical spelling (defaults dropped, so the cases of the
first runs keep their plain model names).

Configs are the zoo's published configs (workloads/zoo/*.py cite their sources) without private `_`
keys and without keys these diffusers / transformers classes do not take; weights are random fp16.
This module needs no torch to parse cases (validate_h200.py imports it).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from workloads.zoo import cogvideox, dit, latte, llama, modelscope, pixart, sd15, sd21, sdxl
from workloads.zoo.blocks.vae import SD_VAE_CONFIG


def _published(config: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_") and k not in drop
    }


_UNUSED_DIT = ("use_linear_projection", "num_vector_embeds", "only_cross_attention")
CONFIGS: dict[str, dict[str, Any]] = {
    "sd15_unet": _published(sd15.UNET_CONFIG),
    "sd21_unet": _published(sd21.UNET_CONFIG),
    "sdxl_unet": _published(sdxl.UNET_CONFIG),
    "sd15_vae_decoder": _published(SD_VAE_CONFIG),
    "dit_xl2": _published(dit.TRANSFORMER_CONFIG, (*_UNUSED_DIT, "cross_attention_dim")),
    "pixart_alpha": _published(pixart.TRANSFORMER_CONFIG, (*_UNUSED_DIT, "double_self_attention")),
    "modelscope_unet": _published(modelscope.UNET_CONFIG),
    "latte": _published(latte.TRANSFORMER_CONFIG),
    "cogvideox_2b": _published(cogvideox.TRANSFORMER_CONFIG),
    "llama2_7b_decode": _published(llama.LLAMA2_7B_CONFIG, ("architectures", "torch_dtype", "model_type")),
}
# shrunken configs for --smoke (a test of the script at tiny sizes)
SMOKE: dict[str, dict[str, Any]] = {
    "sd15_unet": {"block_out_channels": [32, 64, 64, 64], "cross_attention_dim": 32, "layers_per_block": 1},
    "sd21_unet": {
        "block_out_channels": [32, 64, 64, 64],
        "attention_head_dim": [2, 4, 4, 4],
        "cross_attention_dim": 32,
        "layers_per_block": 1,
    },
    "sdxl_unet": {
        "block_out_channels": [32, 64, 64],
        "attention_head_dim": [2, 4, 4],
        "transformer_layers_per_block": [1, 1, 1],
        "cross_attention_dim": 32,
        "layers_per_block": 1,
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 32 + 6 * 8,
    },
    "sd15_vae_decoder": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1},
    "dit_xl2": {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 32},
    "pixart_alpha": {
        "num_layers": 2,
        "num_attention_heads": 2,
        "attention_head_dim": 48,
        "cross_attention_dim": 96,
        "caption_channels": 32,
        "use_additional_conditions": True,
    },
    "modelscope_unet": {
        "block_out_channels": [32, 64, 64, 64],
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "layers_per_block": 1,
    },
    "latte": {
        "num_layers": 2,
        "num_attention_heads": 2,
        "attention_head_dim": 32,
        "cross_attention_dim": 64,
        "caption_channels": 32,
    },
    "cogvideox_2b": {
        "num_layers": 2,
        "num_attention_heads": 2,
        "text_embed_dim": 32,
        "time_embed_dim": 32,
        "max_text_seq_length": 8,
    },
    "llama2_7b_decode": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "num_hidden_layers": 2,
        "vocab_size": 1000,
    },
}
# published sizes of each model's validation case: res (px), batch, frames, kv
DEFAULTS: dict[str, dict[str, int]] = {
    "sd15_unet": {"res": 512, "batch": 2},
    "sd21_unet": {"res": 768, "batch": 2},
    "sdxl_unet": {"res": 1024, "batch": 2},
    "sd15_vae_decoder": {"res": 512, "batch": 1},
    "dit_xl2": {"res": 256, "batch": 2},
    "pixart_alpha": {"res": 1024, "batch": 2},
    "modelscope_unet": {"res": 256, "batch": 2, "frames": 16},
    "latte": {"res": 512, "batch": 2, "frames": 16},
    "cogvideox_2b": {"res": 480, "batch": 2, "frames": 49},
    "llama2_7b_decode": {"batch": 1, "kv": 512},
}
SMOKE_SIZES: dict[str, dict[str, int]] = {
    "modelscope_unet": {"res": 64, "frames": 4},
    "latte": {"res": 64, "frames": 4},
    "cogvideox_2b": {"res": 64, "frames": 9},
    "llama2_7b_decode": {"kv": 32},
}
MODELS = tuple(DEFAULTS)
_TOKEN = re.compile(r"^(?:(?P<res>\d+)px|b(?P<batch>\d+)|f(?P<frames>\d+)|kv(?P<kv>\d+))$")
_ORDER = (("res", "{}px"), ("batch", "b{}"), ("frames", "f{}"), ("kv", "kv{}"))


@dataclass(frozen=True)
class Case:
    """One measured configuration: a model and its sizes."""

    name: str
    res: int = 0
    batch: int = 1
    frames: int = 0
    kv: int = 0

    @property
    def label(self) -> str:
        """The canonical spelling (defaults dropped), used as the CSVs' `model` column."""
        d = DEFAULTS[self.name]
        tokens = [fmt.format(getattr(self, k)) for k, fmt in _ORDER if k in d and getattr(self, k) != d[k]]
        return self.name + ("@" + "_".join(tokens) if tokens else "")


def parse_case(spec: str) -> Case:
    """`name[@tokens]` -> Case; ValueError naming the bad part."""
    name, _, rest = spec.strip().partition("@")
    if name not in DEFAULTS:
        raise ValueError(f"unknown model {name!r} in case {spec!r}; choose from {', '.join(MODELS)}")
    sizes = dict(DEFAULTS[name])
    for tok in filter(None, rest.split("_")):
        m = _TOKEN.match(tok)
        key = next((k for k, v in m.groupdict().items() if v), None) if m else None
        if key is None or key not in sizes:
            raise ValueError(f"case {spec!r}: {tok!r} is not a size of {name} (sizes: {', '.join(sizes)})")
        sizes[key] = int(m.group(key))
        if sizes[key] <= 0:
            raise ValueError(f"case {spec!r}: {tok!r} must be positive")
    return Case(name, **sizes)


def _cfg(case: Case, smoke: bool) -> dict[str, Any]:
    c = dict(CONFIGS[case.name])
    if smoke:
        c.update(SMOKE[case.name])
    return c


def sized(case: Case, smoke: bool) -> Case:
    """The case at smoke sizes (tiny latents, few frames) when `smoke`."""
    if not smoke:
        return case
    small = {"res": 64, **SMOKE_SIZES.get(case.name, {})}
    return replace(case, **{k: v for k, v in small.items() if k in DEFAULTS[case.name]})


def temporal_attention_modules(model: Any) -> tuple[list[Any], list[Any]]:
    """(temporal, other) diffusers Attention modules: temporal ones sit in a TransformerTemporalModel
    (UNet3D's temp_attentions and transformer_in) or in Latte's temporal_transformer_blocks."""
    named = dict(model.named_modules())
    prefixes = tuple(
        n + "."
        for n, m in named.items()
        if n and (type(m).__name__ == "TransformerTemporalModel" or n == "temporal_transformer_blocks")
    )
    temporal, other = [], []
    for n, m in named.items():
        if hasattr(m, "set_processor") and hasattr(m, "processor"):
            (temporal if n.startswith(prefixes) else other).append(m)
    return temporal, other


def build(
    case: Case, torch: Any, device: str, dtype: Any, smoke: bool, channels_last: bool = False
) -> tuple[Any, Callable[[], Any], str]:
    """(diffusers module, forward closure, note) for a diffusion case."""
    import diffusers

    case = sized(case, smoke)
    cfg = _cfg(case, smoke)
    b, s = case.batch, case.res // 8

    def rnd(*shape):
        x = torch.randn(*shape, device=device, dtype=dtype)
        return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x

    def make(cls: Any) -> Any:
        with torch.device(device):
            m = cls.from_config(cfg)
        m = m.to(dtype).eval()
        return m.to(memory_format=torch.channels_last) if channels_last else m

    t = torch.full((b,), 999, device=device, dtype=torch.long)
    name = case.name
    if name in ("sd15_unet", "sd21_unet", "sdxl_unet"):
        m = make(diffusers.UNet2DConditionModel)
        x, c = rnd(b, 4, s, s), rnd(b, 77, cfg["cross_attention_dim"])
        kw: dict[str, Any] = {}
        if cfg.get("addition_embed_type") == "text_time":  # SDXL: pooled text embeds + 6 size/crop ids
            pooled = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
            ids = torch.tensor([[case.res, case.res, 0, 0, case.res, case.res]] * b, device=device, dtype=dtype)
            kw["added_cond_kwargs"] = {"text_embeds": rnd(b, pooled), "time_ids": ids}
        return m, lambda: m(x, t, encoder_hidden_states=c, return_dict=False, **kw)[0], f"latents {s}^2, context 77"
    if name == "sd15_vae_decoder":
        m = make(diffusers.AutoencoderKL)
        z = rnd(b, 4, s, s)
        return m, lambda: m.decode(z, return_dict=False)[0], f"latents {s}^2 -> {8 * s}^2"
    if name == "dit_xl2":  # DiT-XL/2-512 differs from -256 only in sample_size (a position-table buffer)
        cfg["sample_size"] = s
        m = make(diffusers.DiTTransformer2DModel)
        x = rnd(b, 4, s, s)
        y = torch.tensor([207, 1000] * (b // 2) + [207] * (b % 2), device=device)
        return m, lambda: m(x, timestep=t, class_labels=y, return_dict=False)[0], f"latents {s}^2"
    if name == "pixart_alpha":
        if case.res != 1024 and not smoke:
            raise ValueError("pixart_alpha: only the 1024px checkpoint's config is modelled (use b<N> only)")
        cfg["sample_size"] = s
        m = make(diffusers.PixArtTransformer2DModel)
        x, c = rnd(b, 4, s, s), rnd(b, 120, cfg["caption_channels"])
        add = {
            "resolution": torch.tensor([[8.0 * s, 8.0 * s]] * b, device=device, dtype=dtype),
            "aspect_ratio": torch.tensor([[1.0]] * b, device=device, dtype=dtype),
        }
        return (
            m,
            lambda: m(x, encoder_hidden_states=c, timestep=t, added_cond_kwargs=add, return_dict=False)[0],
            f"latents {s}^2, T5 context 120",
        )
    if name == "modelscope_unet":
        m = make(diffusers.UNet3DConditionModel)
        x, c = rnd(b, 4, case.frames, s, s), rnd(b, 77, cfg["cross_attention_dim"])
        return m, lambda: m(x, t, encoder_hidden_states=c, return_dict=False)[0], f"{case.frames} frames, latents {s}^2"
    if name == "latte":  # the temporal sin-cos table is sized by video_length (a buffer)
        cfg.update(sample_size=s, video_length=case.frames)
        m = make(diffusers.LatteTransformer3DModel)
        x, c = rnd(b, 4, case.frames, s, s), rnd(b, 120, cfg["caption_channels"])
        return (
            m,
            lambda: m(x, timestep=t, encoder_hidden_states=c, return_dict=False)[0],
            f"{case.frames} frames, latents {s}^2, T5 context 120",
        )
    if name == "cogvideox_2b":  # published 720x480 (3:2); position tables sized by sample_* (buffers)
        f = (case.frames - 1) // 4 + 1
        h, w = s, case.res * 3 // 2 // 8
        cfg.update(sample_frames=case.frames, sample_height=h, sample_width=w)
        m = make(diffusers.CogVideoXTransformer3DModel)
        x, c = rnd(b, f, cfg["in_channels"], h, w), rnd(b, cfg["max_text_seq_length"], cfg["text_embed_dim"])
        return (
            m,
            lambda: m(x, encoder_hidden_states=c, timestep=t, return_dict=False)[0],
            f"latents {f}x{h}x{w}, T5 context {cfg['max_text_seq_length']}",
        )
    raise KeyError(name)


def build_llama(case: Case, torch: Any, device: str, dtype: Any, smoke: bool) -> tuple[Any, dict[str, Any]]:
    """(LlamaForCausalLM, its config dict) for a decode case."""
    import transformers

    cfg = _cfg(case, smoke)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg))
    return model.to(dtype).eval(), cfg


# -- attention paths: the default processors (fused) or diffusers' classic AttnProcessor (unfused) --
@contextlib.contextmanager
def patched_sdpa(torch: Any):
    F = torch.nn.functional
    orig = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = unfused_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = orig


def unfused_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
    """The classic diffusers path (Attention.get_attention_scores + bmm) as an SDPA stand-in:
    baddbmm(beta=0) -> softmax -> bmm over [batch*heads, seq, dim]."""
    import torch

    *lead, sq, d = query.shape
    skv, dv = key.shape[-2], value.shape[-1]
    q, k, v = query.reshape(-1, sq, d), key.reshape(-1, skv, d), value.reshape(-1, skv, dv)
    if attn_mask is None:
        base, beta = torch.empty(q.shape[0], sq, skv, dtype=q.dtype, device=q.device), 0
    else:
        base, beta = attn_mask.expand(*lead, sq, skv).reshape(-1, sq, skv), 1
    scores = torch.baddbmm(base, q, k.transpose(-1, -2), beta=beta, alpha=scale or 1.0 / math.sqrt(d))
    del base
    probs = scores.softmax(dim=-1)
    del scores
    return torch.bmm(probs, v).reshape(*lead, sq, dv)


def _attention_modules(model: Any) -> list[Any]:
    """diffusers `Attention` modules (anything with a processor and set_processor)."""
    return [m for m in model.modules() if hasattr(m, "set_processor") and hasattr(m, "processor")]


def set_attention(model: Any, name: str, attention: str) -> tuple[str | None, str]:
    """Switch the model's attention processors; returns ("patch" or None, a note)."""
    from diffusers.models.attention_processor import AttnProcessor

    mods = _attention_modules(model)
    procs = sorted({type(m.processor).__name__ for m in mods})
    if attention == "fused":
        return None, f"{len(mods)} attention modules, default processors: " + "/".join(procs)
    if name == "cogvideox_2b":
        return "patch", f"{len(mods)} x {'/'.join(procs)} with SDPA -> baddbmm/softmax/bmm"
    for m in mods:
        m.set_processor(AttnProcessor())
    return None, f"{len(mods)} attention modules -> diffusers AttnProcessor (baddbmm/softmax/bmm)"
