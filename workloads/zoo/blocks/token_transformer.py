"""Pre-LayerNorm transformer stacks for the token-based generators (Muse, Parti, Phenaki) and
their transformer tokenizers (ViT-VQGAN, C-ViViT).

None of these models has a public implementation. Their papers describe standard Transformer
layers (Vaswani et al. 2017); we build them in the pre-LayerNorm form of ViT, T5 and MaskGIT
(Chang et al. 2022, whose code the Muse and Phenaki authors build on):

    x = x + SelfAttention(LN(x))
    x = x + CrossAttention(LN(x), context)        (only with `cross=True`)
    x = x + fc2(act(fc1(LN(x))))

and one final LayerNorm after the last layer (Parti Section 3 states it for its encoder and
decoder). Attention projections and MLP layers carry biases unless a config says otherwise.
Op names are `layers.<i>.self_attn.q`, `layers.<i>.self_attn` (the attention itself),
`layers.<i>.cross_attn.out`, `layers.<i>.mlp.fc1`, ... Each model module documents and cites its
own sizes and choices.

Two ways to run a stack:

- `stack`: a full forward over all tokens (text encoders, the masked transformers of Muse and
  Phenaki, the transformer detokenizers).
- `decode_step`: one autoregressive step with a KV cache (Parti's decoder). The step's single
  query token appends its key and value to the cache (`self_attn.kv_cache_write`, a copy), then
  attends over the cache; cross-attention reads keys/values of the encoder output that
  `cross_kv` projects once per prompt. Steps differ only in the cache length, so a pipeline
  emits one step whose self-attention is split into KV-length buckets (`kv_buckets`): every
  op of the step runs once per step, each bucket's attention op once per step of its bucket.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from ...builder import GraphBuilder, Tensor
from ...ir import OpGraph
from . import layers as _blocks

PROJ = ("q", "k", "v", "out")

# Emits a self-attention (projections included) on normalized tokens (B, L, d) -> (B, L, d).
SelfAttention = Callable[[GraphBuilder, Tensor], Tensor]


@dataclass(frozen=True)
class StackConfig:
    """A pre-LayerNorm transformer stack.

    `context_dim` is the width of the states cross-attention reads its keys and values from
    (0: the stack's own `d_model`); `axis` and `causal` tag every self-attention op (the
    cross-attention ops carry the same axis: their queries are the stack's tokens).
    """

    layers: int
    d_model: int
    heads: int
    mlp: int
    act: str = "gelu"
    cross: bool = False
    context_dim: int = 0
    bias: bool = True
    axis: str = "spatial"
    causal: bool = False
    final_norm: bool = True

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by {self.heads} heads")

    @property
    def kv_dim(self) -> int:
        return self.context_dim or self.d_model

    def layer_params(self) -> int:
        """Parameters of one layer, in closed form (checks the graph in the tests)."""
        d, f, bias = self.d_model, self.mlp, int(self.bias)
        attn = 4 * d * d + 4 * d * bias
        cross = (2 * d * d + 2 * self.kv_dim * d + 4 * d * bias) if self.cross else 0
        mlp = 2 * d * f + (f + d) * bias
        norms = (3 if self.cross else 2) * (2 * d if bias else d)
        return attn + cross + mlp + norms

    def params(self) -> int:
        """Parameters of the whole stack (layers and the final norm)."""
        final = (2 * self.d_model if self.bias else self.d_model) if self.final_norm else 0
        return self.layers * self.layer_params() + final


def embed_tokens(b: GraphBuilder, ids: Tensor, vocab: int, d: int) -> Tensor:
    """Token ids (B, L) -> (B, L, d): a `vocab`-row token embedding plus learned position embeddings."""
    tokens = ids.shape[1]
    x = b.embedding("token_embedding", ids, vocab, d)
    return b.add("add_position", x, b.embedding("position_embedding", b.input((1, tokens)), tokens, d))


# -- full forward ---------------------------------------------------------------------------
def stack(
    b: GraphBuilder,
    cfg: StackConfig,
    x: Tensor,
    *,
    context: Tensor | None = None,
    self_attention: SelfAttention | None = None,
) -> Tensor:
    """All layers of `cfg` over tokens (B, L, d_model); `context` (B, Lc, kv_dim) feeds cross-attention."""
    if cfg.cross != (context is not None):
        raise ValueError("a stack with cross-attention needs a context, and only such a stack")
    for i in range(cfg.layers):
        with b.scope("layers", i):
            x = _layer(b, cfg, x, context, self_attention)
    return _layer_norm(b, cfg, "norm", x) if cfg.final_norm else x


def _layer(
    b: GraphBuilder, cfg: StackConfig, x: Tensor, context: Tensor | None, self_attention: SelfAttention | None
) -> Tensor:
    h = _layer_norm(b, cfg, "self_attn_norm", x)
    h = self_attention(b, h) if self_attention else self_attention_block(b, cfg, h)
    x = b.add("self_attn_residual", x, h)
    if context is not None:
        h = _layer_norm(b, cfg, "cross_attn_norm", x)
        h = _blocks.attention(
            b, "cross_attn", h, heads=cfg.heads, inner=cfg.d_model, context=context, qkv_bias=cfg.bias,
            out_bias=cfg.bias, role="cross", axis=cfg.axis, proj=PROJ,
        )  # fmt: skip
        x = b.add("cross_attn_residual", x, h)
    h = _layer_norm(b, cfg, "mlp_norm", x)
    return b.add("mlp_residual", x, mlp(b, cfg, h))


def self_attention_block(b: GraphBuilder, cfg: StackConfig, h: Tensor) -> Tensor:
    """Standard multi-head self-attention over all tokens of h."""
    return _blocks.attention(
        b, "self_attn", h, heads=cfg.heads, inner=cfg.d_model, qkv_bias=cfg.bias, out_bias=cfg.bias,
        role="self", axis=cfg.axis, causal=cfg.causal, proj=PROJ,
    )  # fmt: skip


def mlp(b: GraphBuilder, cfg: StackConfig, x: Tensor) -> Tensor:
    """fc1 (d -> mlp), activation, fc2 (mlp -> d)."""
    with b.scope("mlp"):
        h = b.linear("fc1", x, cfg.mlp, bias=cfg.bias)
        h = b.activation("act", h, cfg.act)
        return b.linear("fc2", h, cfg.d_model, bias=cfg.bias)


def _layer_norm(b: GraphBuilder, cfg: StackConfig, name: str, x: Tensor) -> Tensor:
    return b.layer_norm(name, x, bias=cfg.bias)


# -- autoregressive decoding with a KV cache --------------------------------------------------
@dataclass(frozen=True)
class KVBucket:
    """Decoding steps grouped by cache length: `steps` steps, each attending over `kv_len` keys."""

    kv_len: int
    steps: int
    start: int = 0  # the first decoding step of the bucket


def kv_buckets(steps: int, buckets: int, prefix: int = 0) -> tuple[KVBucket, ...]:
    """Split decoding steps t = 0..steps-1 into `buckets` contiguous, near-equal groups.

    Step t attends over prefix + t + 1 cached positions (its own key included). Each bucket's
    `kv_len` is the mean cache length of its steps, rounded half up, so the bucketed attention
    work sum(steps * kv_len) exceeds the exact sum by at most half a key per step of a bucket
    with an even count (attention work is linear in the cache length).
    """
    n = min(buckets, steps)
    bounds = [round(i * steps / n) for i in range(n + 1)]
    return tuple(
        KVBucket(kv_len=prefix + (lo + 1 + hi + 1) // 2, steps=hi - lo, start=lo)
        for lo, hi in itertools.pairwise(bounds)
    )


def cross_kv(b: GraphBuilder, cfg: StackConfig, context: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Per layer, the cross-attention keys and values of `context`: projected once per prompt."""
    out = []
    for i in range(cfg.layers):
        with b.scope("layers", i, "cross_attn"):
            k = b.linear("k", context, cfg.d_model, bias=cfg.bias)
            out.append((k, b.linear("v", context, cfg.d_model, bias=cfg.bias)))
    return out


def decode_step(
    b: GraphBuilder,
    cfg: StackConfig,
    x: Tensor,
    buckets: tuple[KVBucket, ...],
    cross: list[tuple[Tensor, Tensor]] | None = None,
) -> tuple[Tensor, dict[str, range]]:
    """One decoding step of all layers on the new token (B, 1, d_model).

    Returns the output and, for each self-attention op, the decoding steps it stands for (its
    bucket's): a pipeline appends the step with those ops running in those steps and every
    other op in every step (`append`).
    """
    if cfg.cross != (cross is not None):
        raise ValueError("a decoder with cross-attention needs the projected cross keys/values")
    if not buckets:
        raise ValueError("a decoding step needs at least one KV bucket")
    repeats: dict[str, range] = {}
    for i in range(cfg.layers):
        with b.scope("layers", i):
            x = _decode_layer(b, cfg, x, buckets, cross[i] if cross else None, repeats)
    return (_layer_norm(b, cfg, "norm", x) if cfg.final_norm else x), repeats


def _decode_layer(
    b: GraphBuilder,
    cfg: StackConfig,
    x: Tensor,
    buckets: tuple[KVBucket, ...],
    cross: tuple[Tensor, Tensor] | None,
    repeats: dict[str, range],
) -> Tensor:
    n, _, d = x.shape
    h = _layer_norm(b, cfg, "self_attn_norm", x)
    with b.scope("self_attn"):
        q, k, v = (b.linear(p, h, d, bias=cfg.bias) for p in PROJ[:3])
        written = b.move("kv_cache_write", Tensor((n, 1, 2 * d), k.src + v.src), (n, 1, 2 * d), what="kv_cache_write")
    o: Tensor | None = None
    for j, bucket in enumerate(buckets):
        # Bucket ops run one after another (each waits for the previous one), never in parallel.
        query = q if o is None else Tensor(q.shape, q.src + o.src)
        cache = Tensor((n, bucket.kv_len, d), written.src)
        name = "self_attn" if len(buckets) == 1 else f"self_attn.kv_bucket{j}"
        o = b.attention(name, query, cache, cache, cfg.heads, role="self", axis=cfg.axis, causal=True)
        repeats[o.src[0]] = range(bucket.start, bucket.start + bucket.steps)
    with b.scope("self_attn"):
        h = b.linear("out", o, d, bias=cfg.bias)
    x = b.add("self_attn_residual", x, h)
    if cross is not None:
        h = _layer_norm(b, cfg, "cross_attn_norm", x)
        with b.scope("cross_attn"):
            q = b.linear("q", h, d, bias=cfg.bias)
        o = b.attention("cross_attn", q, cross[0], cross[1], cfg.heads, role="cross", axis=cfg.axis)
        with b.scope("cross_attn"):
            h = b.linear("out", o, d, bias=cfg.bias)
        x = b.add("cross_attn_residual", x, h)
    h = _layer_norm(b, cfg, "mlp_norm", x)
    return b.add("mlp_residual", x, mlp(b, cfg, h))


def append(
    graph: OpGraph, other: OpGraph, *, after: tuple[str, ...], repeat: int, repeats: dict[str, range] | None = None
) -> None:
    """`graph.extend(other, after=after, repeat=repeat)`: every op runs in decoding steps
    0..repeat-1, except those `repeats` maps to their own steps (bucketed attention)."""
    repeats = repeats or {}
    for op in other.ops():
        deps = tuple(other.graph.predecessors(op.name)) or after
        graph.add(op.in_steps(repeats.get(op.name, range(repeat))), deps)
