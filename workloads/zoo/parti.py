"""Parti (Yu et al. 2022, "Scaling Autoregressive Models for Content-Rich Text-to-Image
Generation", arXiv:2206.10789): an encoder-decoder transformer that reads up to 128 text tokens
and generates the 32x32 = 1024 ViT-VQGAN tokens of a 256x256 image one at a time, then the
ViT-VQGAN decoder turns them into pixels. No official implementation exists; every size below
is the paper's or an assumption stated here.

Pipeline and stages: "text_encoder" (the Parti encoder on the prompts, once; 2N prompts with
classifier-free guidance, Section 2.4), "transformer" (the decoder: the cross-attention keys and
values of the encoder output projected once, then 1024 decoding steps with a KV cache, each
followed by the guidance combine on the logits and sampling) and "detokenizer" (the ViT-VQGAN
decoder, once).

Decoding steps are not emitted 1024 times. Step t runs every decoder op on one token and
attends over t + 1 cached keys; only the self-attention depends on t. The pipeline emits one
step whose ops repeat once per image token, except each layer's self-attention, which is split
into `kv_buckets` ops (default 8), one per contiguous group of steps, each attending over its
group's mean cache length and repeated once per step of the group (`_token_transformer.
kv_buckets`; attention work is linear in the cache length, so the bucketed total is exact up to
half a key per step). The bucket ops of a layer run one after another. The 20B pipeline has
about 2,400 ops.

From the paper:
- Sizes (Table 1): encoder / decoder layers, model dim, MLP dim, heads: 350M 12/12, 1024, 4096,
  16; 750M 12/36, 1024, 4096, 16; 3B 12/36, 2048, 8192, 32; 20B 16/64, 4096, 16384, 64.
- Text: a 16,000-token SentencePiece vocabulary, at most 128 tokens (Section 2.2). Image: the
  ViT-VQGAN's 8192 codes, 32x32 tokens for 256x256 (8x8 patches) (Sections 2.1, 2.2).
- The decoder's self-attention is causally masked (Table 1); a final LayerNorm closes both the
  encoder and the decoder (Section 3); classifier-free guidance (Section 2.4).
- Detokenizer: the fine-tuned ViT-VQGAN decoder, 32 blocks, 16 heads, model dim 1280, MLP
  5120, "about 600M parameters" (Section 2.1).

Assumed (not stated in the paper):
- Pre-LayerNorm Transformer layers (the final LayerNorms only make sense with pre-LN) with
  biases and ReLU MLPs (Lingvo's default feed-forward layer; Parti is built in Lingvo,
  Section 3); learned absolute position embeddings for the 128 text and 1024 image positions;
  the start token is one extra row of the image-token table; an untied output layer to the
  8192 codes.
- Conv-shaped masked sparse attention (Section 2.2, DALL-E) is modeled as dense causal
  attention over the whole cache: the mask selects scores, the dense TPU kernel still computes
  them.
- The unconditional CFG branch runs the same shapes (a padded empty prompt).
- The ViT-VQGAN decoder layout of `_vq.vit_vqgan_decoder` (GELU MLPs, learned position
  embeddings, a tanh feed-forward head with a hidden width of 1280).
- Left out: the optional text-independent super-resolution module (Section 2.1, Figure 4); the
  paper's 256x256 results do not use it and its layers are not specified beyond "WDSR-style".

Parameter counts vs Table 1 (tests/test_zoo_tokens.py): the table's sizes match the
transformer layers and final norms without embeddings and output layer (the usual
non-embedding count): 352.7M, 755.8M, 3.022B and 20.41B (+0.7% to +2.0%). With the text /
image / position embeddings and the output layer the totals are 387.1M, 790.2M, 3.090B and
20.54B (+10.6%, +5.4%, +3.0%, +2.7%). The ViT-VQGAN decoder has 633.2M parameters against
"about 600M" (+5.5%): its 32 blocks alone hold 629.7M (+4.9%).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from types import MappingProxyType

from ..builder import GraphBuilder
from ..errors import InputError
from ..ir import OpGraph
from .blocks import layers as _blocks
from .blocks.specs import family_specs
from .blocks.token_transformer import (
    KVBucket,
    StackConfig,
    append,
    cross_kv,
    decode_step,
    embed_tokens,
    stack,
)
from .blocks.token_transformer import kv_buckets as split_steps
from .blocks.vq import ViTVQGANConfig, vit_vqgan_decoder


@dataclass(frozen=True)
class PartiSize:
    """One row of Parti Table 1."""

    encoder_layers: int
    decoder_layers: int
    d_model: int
    mlp: int
    heads: int
    stated_params: int

    @property
    def encoder(self) -> StackConfig:
        return StackConfig(self.encoder_layers, self.d_model, self.heads, self.mlp, act="relu", axis="text")

    @property
    def decoder(self) -> StackConfig:
        return StackConfig(
            self.decoder_layers, self.d_model, self.heads, self.mlp, act="relu", cross=True, axis="spatial", causal=True
        )


SIZES: MappingProxyType[str, PartiSize] = MappingProxyType(
    {
        "350m": PartiSize(12, 12, 1024, 4096, 16, 350_000_000),
        "750m": PartiSize(12, 36, 1024, 4096, 16, 750_000_000),
        "3b": PartiSize(12, 36, 2048, 8192, 32, 3_000_000_000),
        "20b": PartiSize(16, 64, 4096, 16384, 64, 20_000_000_000),
    }
)
TEXT_VOCAB = 16_000
MAX_TEXT_TOKENS = 128
CODEBOOK = 8192
PATCH = 8
DETOKENIZER = ViTVQGANConfig(StackConfig(layers=32, d_model=1280, heads=16, mlp=5120, axis="spatial"), patch=PATCH)
DETOKENIZER_STATED_PARAMS = 600_000_000


def token_side(resolution: int) -> int:
    """Image tokens per side (256 -> 32)."""
    if resolution % PATCH:
        raise InputError(f"resolution {resolution} is not divisible by the ViT-VQGAN patch size {PATCH}")
    return resolution // PATCH


def _check_prompt(prompt_len: int) -> None:
    if prompt_len > MAX_TEXT_TOKENS:
        raise InputError(f"prompt_len {prompt_len} exceeds Parti's maximum of {MAX_TEXT_TOKENS} text tokens")


# -- stage graphs ----------------------------------------------------------------------------------
def encoder_graph(name: str, size: PartiSize, batch: int, prompt_len: int) -> OpGraph:
    """The text encoder on (batch, prompt_len) SentencePiece ids, stage "text_encoder"."""
    _check_prompt(prompt_len)
    b = GraphBuilder(name, "text_encoder")
    with b.scope("encoder"):
        x = embed_tokens(b, b.input((batch, prompt_len)), TEXT_VOCAB, size.d_model)
        stack(b, size.encoder, x)
    return b.build()


def cross_kv_graph(name: str, size: PartiSize, batch: int, prompt_len: int) -> OpGraph:
    """Every decoder layer's cross-attention keys and values of the encoder output (once per prompt)."""
    b = GraphBuilder(name, "transformer")
    with b.scope("decoder"):
        cross_kv(b, size.decoder, b.input((batch, prompt_len, size.d_model)))
    return b.build()


def decode_step_graph(
    name: str, size: PartiSize, batch: int, prompt_len: int, buckets: tuple[KVBucket, ...], tokens: int, *, cfg: bool
) -> tuple[OpGraph, dict[str, int]]:
    """One decoding step: embed the last token, decoder layers with KV cache, logits, [guidance], sample.

    Returns the graph and the per-op repeats of its bucketed self-attention ops.
    """
    _check_prompt(prompt_len)
    n = 2 * batch if cfg else batch
    d = size.d_model
    b = GraphBuilder(name, "transformer")
    with b.scope("decoder"):
        x = b.embedding("token_embedding", b.input((n, 1)), CODEBOOK + 1, d)  # codes + start token
        x = b.add("add_position", x, b.embedding("position_embedding", b.input((1, 1)), tokens, d))
        cross = [(b.input((n, prompt_len, d)), b.input((n, prompt_len, d))) for _ in range(size.decoder_layers)]
        x, repeats = decode_step(b, size.decoder, x, buckets, cross)
        logits = b.linear("logits", x, CODEBOOK)
    if cfg:  # logits.chunk(2): views of the conditional and unconditional halves
        half = _blocks.view(logits, (batch, 1, CODEBOOK))
        logits = b.elementwise("guidance.combine", [half, half], "cfg_combine")
    with b.scope("sampler"):
        b.resample("sample", b.softmax("softmax", logits), (batch, 1), mode="categorical")
    return b.build(), repeats


def detokenizer_graph(name: str, batch: int, side: int, *, prefix: bool) -> OpGraph:
    """The ViT-VQGAN decoder: (batch, side, side) tokens -> (batch, 3, 8 side, 8 side) pixels."""
    b = GraphBuilder(name, "detokenizer")
    with b.scope("vit_vqgan") if prefix else nullcontext():
        vit_vqgan_decoder(b, DETOKENIZER, b.input((batch, side, side)))
    return b.build()


# -- models ------------------------------------------------------------------------------------------
def build_pipeline(size: str, resolution: int, batch: int, cfg: bool, prompt_len: int, kv_buckets: int) -> OpGraph:
    """Encoder once, cross K/V once, side^2 KV-cached decoding steps (bucketed), ViT-VQGAN decoder once."""
    spec = SIZES[size]
    side = token_side(resolution)
    tokens = side * side
    n = 2 * batch if cfg else batch
    encoder = encoder_graph("parti.text_encoder", spec, n, prompt_len)
    prefill = cross_kv_graph("parti.cross_kv", spec, n, prompt_len)
    step, repeats = decode_step_graph(
        "parti.decode_step", spec, batch, prompt_len, split_steps(tokens, kv_buckets), tokens, cfg=cfg
    )
    decode = detokenizer_graph("parti.detokenizer", batch, side, prefix=True)
    graph = OpGraph(f"parti_{size}")
    graph.extend(encoder)
    graph.extend(prefill, after=encoder.sinks())
    append(graph, step, after=prefill.sinks(), repeat=tokens, repeats=repeats)
    graph.extend(decode, after=step.sinks())
    return graph


def build_encoder(size: str, batch: int, prompt_len: int) -> OpGraph:
    """The Parti text encoder on `batch` prompts of `prompt_len` tokens."""
    return encoder_graph(f"parti_encoder_{size}", SIZES[size], batch, prompt_len)


def build_decoder_step(size: str, batch: int, kv_len: int, prompt_len: int) -> OpGraph:
    """One decoding step whose self-attention reads `kv_len` cached keys (the cross-attention
    keys/values of the encoder output are graph inputs: they are projected once per prompt)."""
    tokens = token_side(256) ** 2
    if kv_len > tokens:
        raise InputError(f"kv_len {kv_len} exceeds the {tokens} image tokens Parti generates")
    graph, _ = decode_step_graph(
        f"parti_decoder_step_{size}", SIZES[size], batch, prompt_len, (KVBucket(kv_len, 1),), tokens, cfg=False
    )
    return graph


def build_detokenizer(resolution: int, batch: int) -> OpGraph:
    """The ViT-VQGAN decoder (32 blocks, 1280 wide) on the 32x32 tokens of a 256x256 image."""
    return detokenizer_graph("parti_detokenizer", batch, token_side(resolution), prefix=False)


_REFERENCE = "paper: Yu et al. 2022, arXiv:2206.10789 (no public implementation)"

MODELS = family_specs(
    "transformer-tti",
    _REFERENCE,
    ("parti", build_pipeline,
     {"size": "20b", "resolution": 256, "batch": 1, "cfg": True, "prompt_len": 128, "kv_buckets": 8},
     "Parti text-to-image: encoder, 1024 KV-cached autoregressive decoding steps (CFG), ViT-VQGAN decoder"),
    [
        ("parti_encoder", build_encoder, {"size": "20b", "batch": 1, "prompt_len": 128},
         "Parti text encoder (Table 1 size), 128 SentencePiece tokens"),
        ("parti_decoder_step", build_decoder_step, {"size": "20b", "batch": 1, "kv_len": 1024, "prompt_len": 128},
         "Parti decoder, one KV-cached decoding step over kv_len cached image tokens"),
        ("parti_detokenizer", build_detokenizer, {"resolution": 256, "batch": 1},
         "Parti ViT-VQGAN decoder (32 blocks, 1280 wide, 8x8 patches)"),
    ],
    choices={"size": tuple(SIZES)},
)
