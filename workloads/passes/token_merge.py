"""`token_merge`: merge redundant tokens before attention (and optionally the MLP), unmerge after.

    {name: token_merge, ratio: 0.5}                                   # ToMe-SD's default setting
    {name: token_merge, ratio: 0.5, targets: [self_attn, mlp], max_downsample: 2}

ToMe for Stable Diffusion (Bolya & Hoffman, "Token Merging for Fast Stable Diffusion", CVPRW
2023): in each transformer block, the tokens are split into destinations (one random token per
2x2 window, N/4) and sources (the rest); every source is matched to its most similar
destination (cosine similarity), the r = ratio x N best-matched sources are averaged into their
destinations, the module runs on the N - r remaining tokens, and its output is copied back to
all N tokens (unmerge). r is capped at the N - N/4 sources (ratio 0.75 at most, as in ToMe-SD).

Where: the denoiser's transformer blocks (a block is the module holding a spatial or joint
self-attention; temporal attention, over frames, is never merged) at downsampling factor at
most `max_downsample` (1: the highest-resolution level only, ToMe-SD's default; a level with
N tokens has factor sqrt(N_max / N)). `targets`: `self_attn` (default, ToMe-SD's best
trade-off), `cross_attn`, `mlp` (the block's `ff.*`).

Cost model per merged block: `tome.normalize` (the metric's L2 normalization, 3 vector ops per
element), `tome.similarity` (a matmul: batch x (N - N/4) x channels x N/4 MACs) and
`tome.match` (max + argmax over destinations, argsort of the sources: (N - N/4)(N/4 + log2(N -
N/4)) vector ops per batch), computed once per block; per target, `tome.merge_<target>` (a
gather + scatter-mean of the N tokens into N - r, one vector op per input element) and
`tome.unmerge_<target>` (a copy of the N - r outputs back to N tokens). The target's ops run on
N - r tokens: linear MACs = tokens x in x out, attention MACs = batch x heads x Lq x Lk x (d +
dv) with Lq (and Lk for self-attention) reduced, vector work in proportion to the elements.
`ratio: 0` returns the graph unchanged. Quality (ToMe-SD reports small FID changes up to ratio
0.5) is not modeled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from sim.arch.schema import doc

from ..errors import unknown
from ..ir import Op, OpGraph, OpKind, numel
from . import Pass
from ._loop import GraphEdit, loop_ops, loop_stage
from ._select import require

TARGETS = ("self_attn", "cross_attn", "mlp")


@dataclass(frozen=True)
class TokenMergeOptions:
    ratio: float = field(default=0.5, metadata=doc("fraction r/N of tokens merged, in [0, 1)", positive=False, max=1))
    targets: Any = field(
        default=("self_attn",), metadata=doc("modules run on merged tokens: self_attn, cross_attn, mlp")
    )
    max_downsample: int = field(
        default=1, metadata=doc("merge at levels downsampled at most this much (1, 2, 4, 8)", min=1)
    )
    stage: str = field(default="", metadata=doc("the loop stage (default: the pipeline's only loop)"))


@dataclass(frozen=True)
class Block:
    """A transformer block to merge in: its name prefix, self-attention op and token count."""

    prefix: str
    attn: Op

    @property
    def tokens(self) -> int:
        return self.attn.attrs["lq"]


def check_targets(targets: Any) -> tuple[str, ...]:
    """`targets` as a tuple of known target names."""
    where = "token_merge.targets"
    items = (targets,) if isinstance(targets, str) else targets
    require(isinstance(items, (list, tuple)) and len(items) > 0, "expected a list of targets", where)
    for t in items:
        if t not in TARGETS:
            raise unknown("target", str(t)[:40], TARGETS, where=where)
    return tuple(dict.fromkeys(items))


def blocks(ops: list[Op], max_downsample: int) -> list[Block]:
    """Blocks with a spatial/joint self-attention at downsampling <= `max_downsample`."""
    found = [
        Block(op.name.rsplit(".", 1)[0], op)
        for op in ops
        if op.kind is OpKind.ATTENTION and op.attrs.get("role") == "self" and op.attrs.get("axis") != "temporal"
    ]
    if not found:
        return []
    most = max(b.tokens for b in found)
    return [b for b in found if round(math.sqrt(most / b.tokens)) <= max_downsample]


def _on_tokens(op: Op, n: int) -> bool:
    """Whether `op` works on the block's n-token stream (broadcast operands of 1 token allowed)."""
    if op.kind is OpKind.ATTENTION:
        return op.attrs["lq"] == n
    streams = [s for s in op.inputs if len(s) >= 3]
    ok_inputs = all(s[1] in (n, 1) for s in streams) and any(s[1] == n for s in streams)
    return len(op.output) >= 3 and op.output[1] == n and ok_inputs


def region(ops: list[Op], block: Block, target: str) -> list[Op]:
    """The ops of `target` in `block` that run on the token stream."""
    if target == "self_attn":
        heads = [block.attn]
    elif target == "cross_attn":
        heads = [
            op
            for op in ops
            if op.kind is OpKind.ATTENTION
            and op.attrs.get("role") == "cross"
            and op.name.rsplit(".", 1)[0] == block.prefix
            and op.attrs["lq"] == block.tokens
        ]
    else:
        return [op for op in ops if op.name.startswith(f"{block.prefix}.ff.") and _on_tokens(op, block.tokens)]
    prefixes = tuple(f"{h.name}." for h in heads)
    members = heads + [op for op in ops if op.name.startswith(prefixes)]
    return [op for op in members if _on_tokens(op, block.tokens)]


def _shrink_shape(shape: tuple[int, ...], n: int, kept: int) -> tuple[int, ...]:
    return (shape[0], kept, *shape[2:]) if len(shape) >= 3 and shape[1] == n else shape


def shrink(op: Op, n: int, kept: int) -> Op:
    """`op` on `kept` of its `n` tokens, MACs and vector work recomputed (builder formulas)."""
    inputs = tuple(_shrink_shape(s, n, kept) for s in op.inputs)
    output = _shrink_shape(op.output, n, kept)
    a = dict(op.attrs)
    if op.kind is OpKind.LINEAR:
        a["tokens"] = numel(inputs[0]) // a["in_features"]
        macs, vector_ops = a["tokens"] * a["in_features"] * a["out_features"], op.vector_ops
    elif op.kind is OpKind.ATTENTION:
        old_scores = a["batch"] * a["heads"] * a["lq"] * a["lk"]
        a["lq"], a["lk"] = inputs[0][1], inputs[1][1]
        scores = a["batch"] * a["heads"] * a["lq"] * a["lk"]
        macs = scores * (a["head_dim"] + a["v_head_dim"])
        vector_ops = op.vector_ops * scores // old_scores
    else:
        macs = op.macs * numel(output) // numel(op.output)
        vector_ops = op.vector_ops * numel(output) // numel(op.output)
    return replace(op, inputs=inputs, output=output, attrs=a, macs=macs, vector_ops=vector_ops)


def _op(template: Op, name: str, kind: OpKind, inputs: tuple, output: tuple, **fields: Any) -> Op:
    """A merge-machinery op in `template`'s stage, dtype and steps."""
    block = name.rsplit(".", 1)[0]
    op = Op(name=name, kind=kind, inputs=inputs, output=output, dtype=template.dtype, stage=template.stage,
            block=block, repeat=template.repeat, steps=template.steps, **fields)  # fmt: skip
    return op


def matching_ops(block: Block, source: Op) -> list[Op]:
    """Bipartite soft matching of one block (normalize, similarity, match) on `source`'s output."""
    x = source.output
    batch, n, channels = x[0], x[1], numel(x[2:])
    dst = max(1, n // 4)
    src = n - dst
    p = f"{block.prefix}.tome"
    norm = _op(
        source, f"{p}.normalize", OpKind.ELEMENTWISE, (x,), x, vector_ops=3 * numel(x), attrs={"fn": "l2_normalize"}
    )
    sim = _op(
        source, f"{p}.similarity", OpKind.MATMUL, ((batch, src, channels), (batch, channels, dst)), (batch, src, dst),
        macs=batch * src * channels * dst, attrs={"m": src, "k": channels, "n": dst, "count": batch},
    )  # fmt: skip
    match_ops = batch * src * (dst + math.ceil(math.log2(max(src, 2))))
    match = _op(source, f"{p}.match", OpKind.ELEMENTWISE, ((batch, src, dst),), (batch, src), vector_ops=match_ops,
                attrs={"fn": "argmax_argsort"})  # fmt: skip
    return [norm, sim, match]


def merged_tokens(n: int, ratio: float) -> int:
    """Tokens left after merging r = ratio x n of n (r capped at the n - n/4 sources)."""
    return n - min(int(ratio * n), n - max(1, n // 4))


def merge_block(
    edit: GraphEdit, graph: OpGraph, ops: list[Op], block: Block, targets: tuple[str, ...], ratio: float
) -> None:
    """Add the matching, merge and unmerge ops of one block and shrink its targets' ops."""
    n = block.tokens
    kept = merged_tokens(n, ratio)
    regions = [(t, region(ops, block, t)) for t in targets]
    regions = [(t, r) for t, r in regions if r]
    if kept == n or not regions:
        return
    matching: list[Op] = []
    for target, members in regions:
        names = {op.name for op in members}
        entries = [
            (x, m.name) for m in members for x in graph.graph.predecessors(m.name)
            if x not in names and len(graph[x].output) >= 3 and graph[x].output[1] == n
        ]  # fmt: skip
        if not matching:
            matching = matching_ops(block, graph[entries[0][0]])
            prev = entries[0][0]
            for op in matching:
                edit.insert(op, (prev,), after=prev)
                prev = op.name
        merges: dict[str, str] = {}
        for x, consumer in entries:
            if x not in merges:
                out = graph[x].output
                name = f"{block.prefix}.tome.merge_{target}" + (f"_{len(merges)}" if merges else "")
                merge = _op(graph[x], name, OpKind.ELEMENTWISE, (out, matching[-1].output),
                            _shrink_shape(out, n, kept), vector_ops=numel(out), attrs={"fn": "tome_merge"})  # fmt: skip
                edit.insert(merge, (x, matching[-1].name), after=x)
                merges[x] = name
            edit.rewire(consumer, x, merges[x])
        exits = 0
        for m in members:
            edit.replace(shrink(edit.ops[m.name], n, kept))
            outside = [s for s in graph.graph.successors(m.name) if s not in names]
            if not outside:
                continue
            name = f"{block.prefix}.tome.unmerge_{target}" + (f"_{exits}" if exits else "")
            exits += 1
            unmerge = _op(m, name, OpKind.DATA_MOVEMENT, (_shrink_shape(m.output, n, kept),), m.output,
                          attrs={"what": "tome_unmerge"})  # fmt: skip
            edit.insert(unmerge, (m.name,), after=m.name)
            for s in outside:
                edit.rewire(s, m.name, name)


def token_merge(graph: OpGraph, opts: TokenMergeOptions) -> OpGraph:
    require(0.0 <= opts.ratio < 1.0, f"must be in [0, 1), got {opts.ratio:g}", "token_merge.ratio")
    targets = check_targets(opts.targets)
    if opts.ratio == 0:
        return graph
    stage = loop_stage(graph, opts.stage, "token_merge")
    ops = loop_ops(graph, stage)
    edit = GraphEdit(graph)
    for block in blocks(ops, opts.max_downsample):
        merge_block(edit, graph, ops, block, targets, opts.ratio)
    return edit.build()


PASS = Pass("token_merge", TokenMergeOptions, token_merge, "merge tokens before attention/MLP, unmerge after (ToMe-SD)")
