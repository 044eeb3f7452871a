"""`deepcache`: reuse the deep features of the denoiser across steps, recompute the shallow branch.

    {name: deepcache, interval: 3}              # full steps 0, 3, 6, ...; depth 1
    {name: deepcache, interval: 5, depth: 2}

DeepCache (Ma, Fang & Wang, "DeepCache: Accelerating Diffusion Models for Free", CVPR 2024):
adjacent denoising steps produce nearly the same high-level (deep) features, so a UNet runs
fully every `interval`-th step and caches the deep branch's output (the input of the up
blocks at the chosen skip depth); the steps between run only the shallow branch, which
concatenates the cached feature with its own skip features.

UNets (ops named `up_blocks.<i>`; L up blocks): `depth` d in 1..L keeps `down_blocks.0..d-1`,
`up_blocks.L-d..L-1`, and everything feeding them (conv_in, time/added embeddings, conv_out,
guidance and scheduler); the cached feature is the output of `up_blocks.L-d-1` (of `mid_block`
for d = L). The deep ops are found on the graph: those whose every use leads through the
cached feature (so the down block's downsampler is skipped too).

Diffusion transformers (ops named `transformer_blocks.<i>`, `temporal_transformer_blocks.<i>`;
n blocks): `depth` d in 1..(n-1)//2 keeps the first d and the last d blocks; the middle blocks
are cached as a residual (their output minus their input), as in the DiT caching methods that
follow DeepCache (FORA, Delta-DiT): a shallow step adds the cached residual to the output of
block d-1 (`deepcache.apply_residual`, an elementwise add), a full step computes it
(`deepcache.residual`, an elementwise subtract).

Cost model: full steps are every `interval`-th step of the loop as it is (its 1st, (N+1)-th,
...); deep ops run only in them. The cache lives in DRAM: a full step writes it
(`deepcache.store`, a move writing the cached bytes), a shallow step reads it (`deepcache.load`,
a move reading them); the store op is annotated `cache_bytes`, the extra memory held (the
simulator has no capacity model). `interval: 1` returns the graph unchanged. Quality (DeepCache
reports small FID changes at interval 3-5) is not modeled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx

from sim.arch.schema import doc

from ..ir import Op, OpGraph, OpKind, numel
from . import Pass
from ._loop import GraphEdit, loop_ops, loop_sinks, loop_stage, loop_steps, names_in_order
from ._select import require

_UP = re.compile(r"(?:^|\.)up_blocks\.(\d+)(?:\.|$)")
_BLOCK = re.compile(r"(?:^|\.)(?:\w+_)?transformer_blocks\.(\d+)(?:\.|$)")


@dataclass(frozen=True)
class DeepCacheOptions:
    interval: int = field(default=3, metadata=doc("a full step every `interval` steps (1: no caching)", "steps", min=1))
    depth: int = field(default=1, metadata=doc("skip depth: UNet levels / transformer blocks kept at each end", min=1))
    stage: str = field(default="", metadata=doc("the loop stage (default: the pipeline's only loop)"))


@dataclass(frozen=True)
class Split:
    """The deep ops of one step, the ops producing the cached feature, and (for a residual
    cache) the op whose output the residual is added to."""

    deep: frozenset[str]
    cached: tuple[str, ...]
    residual_base: str = ""


def _index(pattern: re.Pattern[str], name: str) -> int | None:
    m = pattern.search(name)
    return int(m.group(1)) if m else None


def unet_split(graph: OpGraph, ops: list[Op], depth: int) -> Split:
    """Deep ops of a UNet at skip depth `depth` (see the module docstring)."""
    levels = 1 + max(_index(_UP, op.name) for op in ops if _index(_UP, op.name) is not None)
    require(depth <= levels, f"must be at most {levels} (the UNet's up blocks), got {depth}", "deepcache.depth")
    up = {op.name: _index(_UP, op.name) for op in ops}
    kept_up = {n for n, i in up.items() if i is not None and i >= levels - depth}
    deep_level = re.compile(rf"(?:^|\.)up_blocks\.{levels - depth - 1}\." if depth < levels else r"(?:^|\.)mid_block\.")
    cached = {p for n in kept_up for p in graph.graph.predecessors(n) if deep_level.search(p)}
    require(bool(cached), "found no cached feature at this depth", "deepcache.depth")
    names = {op.name for op in ops}
    sinks = {op.name for op in loop_sinks(graph, ops[0].stage)}
    cut = graph.graph.subgraph(names - cached)
    keep = set(sinks - cached).union(*(nx.ancestors(cut, s) for s in sinks - cached))
    feeding = set(cached).union(*(nx.ancestors(graph.graph.subgraph(names), c) for c in cached))
    return Split(frozenset(feeding - keep), tuple(names_in_order(graph, cached)))


def transformer_split(graph: OpGraph, ops: list[Op], depth: int) -> Split:
    """Deep (middle) blocks of a diffusion transformer keeping `depth` blocks at each end."""
    index = {op.name: _index(_BLOCK, op.name) for op in ops}
    blocks = 1 + max(i for i in index.values() if i is not None)
    most = (blocks - 1) // 2
    require(depth <= most, f"must be at most {most} ({blocks} transformer blocks), got {depth}", "deepcache.depth")
    deep = {n for n, i in index.items() if i is not None and depth <= i < blocks - depth}
    g = graph.graph.subgraph(index)
    for op in ops:  # glue between middle blocks (Latte's spatial/temporal reshapes)
        preds = list(g.predecessors(op.name))
        if index[op.name] is None and preds and all(p in deep for p in preds):
            deep.add(op.name)
    order = names_in_order(graph, index)
    cached = [n for n in order if n in deep and any(s not in deep for s in g.successors(n))]
    shape = graph[cached[-1]].output
    base = [p for n in deep for p in g.predecessors(n) if p not in deep and graph[p].output == shape]
    require(bool(base), "found no block input to add the cached residual to", "deepcache.depth")
    return Split(frozenset(deep), tuple(cached[-1:]), names_in_order(graph, base)[-1])


def split(graph: OpGraph, ops: list[Op], depth: int) -> Split:
    if any(_index(_UP, op.name) is not None for op in ops):
        return unet_split(graph, ops, depth)
    require(
        any(_index(_BLOCK, op.name) is not None for op in ops),
        "the loop has no up_blocks or transformer_blocks",
        "deepcache",
    )
    return transformer_split(graph, ops, depth)


def _cache_op(source: Op, name: str, kind: OpKind, inputs: tuple, output: tuple, steps, **annotations) -> Op:
    """An op of the cache (same stage and dtype as `source`) running in `steps`."""
    shape = output if numel(output) else inputs[0]
    ops = numel(shape) if kind is OpKind.ELEMENTWISE else 0
    op = Op(name=name, kind=kind, inputs=inputs, output=output, dtype=source.dtype, stage=source.stage,
            block="deepcache", vector_ops=ops, attrs={"what": name.split(".")[-1]}, annotations=annotations)  # fmt: skip
    return op.in_steps(steps)


def _add_cache(edit: GraphEdit, graph: OpGraph, sp: Split, full: list[int], shallow: list[int]) -> None:
    """Store the cached feature on full steps, load it on shallow steps, re-wire its users."""
    src = graph[sp.cached[-1]]
    shape = src.output
    users = [u for c in sp.cached for u in graph.graph.successors(c) if u not in sp.deep]
    stored = src.name
    if sp.residual_base:
        res = _cache_op(src, "deepcache.residual", OpKind.ELEMENTWISE, (shape, shape), shape, full)
        edit.insert(res, (src.name, sp.residual_base), after=src.name)
        stored = res.name
    nbytes = numel(shape) * src.word_bytes
    store = _cache_op(src, "deepcache.store", OpKind.DATA_MOVEMENT, (), shape, full, cache_bytes=nbytes)
    edit.insert(store, (stored,), after=stored)
    load = _cache_op(src, "deepcache.load", OpKind.DATA_MOVEMENT, (shape,), (0,), shallow)
    edit.insert(load, (store.name,), after=store.name)
    feature = load.name
    if sp.residual_base:
        apply = _cache_op(src, "deepcache.apply_residual", OpKind.ELEMENTWISE, (shape, shape), shape, shallow)
        edit.insert(apply, (sp.residual_base, load.name), after=load.name)
        feature = apply.name
    for u in users:
        edit.add_dep(u, feature)


def deepcache(graph: OpGraph, opts: DeepCacheOptions) -> OpGraph:
    if opts.interval == 1:
        return graph
    stage = loop_stage(graph, opts.stage, "deepcache")
    require("deepcache.store" not in graph.graph, "applied twice", "deepcache")
    ops = loop_ops(graph, stage)
    steps = loop_steps(graph, stage)
    full = list(steps[:: opts.interval])
    shallow = [s for s in steps if s not in set(full)]
    sp = split(graph, ops, opts.depth)
    edit = GraphEdit(graph)
    for name in sp.deep:
        op = graph[name]
        edit.replace(op.in_steps(s for s in op.step_indices if s in set(full)))
    if shallow:
        _add_cache(edit, graph, sp, full, shallow)
    out = edit.build()
    empty = [n for n in sp.deep if out[n].repeat == 0]
    require(
        not empty,
        f"{len(empty)} deep ops would run in no step (apply deepcache before step-restricting passes)",
        "deepcache",
    )
    return out


PASS = Pass(
    "deepcache", DeepCacheOptions, deepcache, "reuse deep features every N-th step, shallow branch between (DeepCache)"
)
