"""`speculative`: self-speculative decoding (LayerSkip-style early-exit draft) of a decode loop.

    {name: speculative, exit_layer: 8, draft_tokens: 4, acceptance: 0.6}

LayerSkip (Elhoushi et al., "LayerSkip: Enabling Early Exit Inference and Self-Speculative
Decoding", ACL 2024): the first `exit_layer` (E) decoder layers followed by the model's own final
norm and LM head draft `draft_tokens` (gamma) tokens one at a time; the full model then verifies
the gamma drafted tokens in one forward over gamma + 1 positions (speculative sampling, Leviathan
et al., "Fast Inference from Transformers via Speculative Decoding", ICML 2023) and keeps the
accepted prefix plus one token of its own.

Cost model. With an i.i.d. per-token acceptance rate alpha (`acceptance`), a round (gamma draft
steps + one verify pass) yields on average (Leviathan et al., eq. 1)

    tau = (1 - alpha^(gamma + 1)) / (1 - alpha)    tokens   (gamma + 1 when alpha = 1),

so the N steps of the decode loop (one token per sequence each) become N / tau rounds. alpha = 0
gives one token per round (every round costs gamma draft steps more than a plain decode step);
alpha -> 1 gives gamma + 1 tokens per verify pass.

The transform, per kv-length bucket of the loop (the zoo's `kv_buckets`: the ops sharing a step
set form one decode step at the bucket's kv length):
- rounds: the cumulative token count at the end of each bucket divided by tau, rounded half up
  (at least one round in all), so the rounds of a bucket are the difference (a bucket left with
  none is removed); round j of the loop occupies loop steps j (gamma + 1) ... j (gamma + 1) + gamma.
- draft steps: a copy of the step named `draft.<op>` without the ops of decoder layers >= E (ops
  under a `layers.<i>` scope, the transformers naming the zoo's LLMs use), running in the first
  gamma steps of each round, one token per sequence;
- verify step: the step's ops widened from 1 to gamma + 1 tokens per sequence (linear rows,
  activation shapes, the KV-cache write and the logits of every drafted position; attention over
  gamma + 1 queries and kv + gamma keys, causal among the new ones), running in the last step of
  each round.

Simplifications: every draft step uses the bucket's kv length (as the buckets do); LayerSkip's
reuse of the draft's first-E-layer KV cache and exit-layer activations in verification is not
modeled (the verify pass runs all layers: conservative by about E / L of a verify pass); the
acceptance rate is an input (it depends on the model's early-exit training and the data: text
vs image tokens), with batched sequences taken to accept in lock-step. Quality is not modeled.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from sim.arch.schema import doc

from ..ir import Op, OpGraph, OpKind, numel
from . import Pass
from ._loop import GraphEdit, loop_ops, loop_stage
from ._select import require

DRAFT = "draft."
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)(?:\.|$)")


@dataclass(frozen=True)
class SpeculativeOptions:
    exit_layer: int = field(metadata=doc("decoder layers the early-exit draft runs (E)", "layers", min=1, max=1 << 20))
    draft_tokens: int = field(default=4, metadata=doc("tokens drafted per round (gamma)", "tokens", min=1, max=1024))
    acceptance: float = field(
        default=0.6, metadata=doc("per-token acceptance rate of drafted tokens (alpha)", positive=False, min=0, max=1)
    )
    stage: str = field(default="", metadata=doc("the decode loop stage (default: the pipeline's only loop)"))


def tokens_per_round(acceptance: float, draft_tokens: int) -> float:
    """Expected tokens one round (draft_tokens drafts + one verify pass) yields (Leviathan et al.)."""
    if acceptance >= 1.0:
        return float(draft_tokens + 1)
    return (1.0 - acceptance ** (draft_tokens + 1)) / (1.0 - acceptance)


def rounds(bucket_tokens: list[int], acceptance: float, draft_tokens: int) -> list[int]:
    """Rounds per bucket for buckets of `bucket_tokens` tokens (cumulative, rounded half up)."""
    tau = tokens_per_round(acceptance, draft_tokens)
    out, done, cum = [], 0, 0
    for i, n in enumerate(bucket_tokens):
        cum += n
        total = math.floor(cum / tau + 0.5)
        if i == len(bucket_tokens) - 1 and cum > 0:
            total = max(total, 1)
        out.append(total - done)
        done = total
    return out


def layer_of(op: Op) -> int | None:
    """The decoder layer index of an op under a `layers.<i>` scope, else None."""
    m = _LAYER.search(op.name)
    return int(m.group(1)) if m else None


def widen(op: Op, n: int) -> Op:
    """`op` of a one-token decode step processing `n` tokens per sequence instead (see module)."""
    if n == 1:
        return op
    if op.kind is OpKind.ATTENTION:
        a = op.attrs
        lq, lk = n, a["lk"] + (n - 1) * a["lq"]
        scale = (lq * lk) / (a["lq"] * a["lk"])
        q, k, v = op.inputs
        return replace(
            op,
            inputs=((q[0], lq, *q[2:]), (k[0], lk, *k[2:]), (v[0], lk, *v[2:])),
            output=(op.output[0], lq, *op.output[2:]),
            macs=round(op.macs * scale), vector_ops=round(op.vector_ops * scale),
            attrs={**a, "lq": lq, "lk": lk, "causal": True},
        )  # fmt: skip

    def tokens(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], n, *shape[2:]) if len(shape) >= 2 and shape[1] == 1 else shape

    inputs = tuple(tokens(s) for s in op.inputs)
    output = tokens(op.output)
    if output == op.output and op.kind is OpKind.DATA_MOVEMENT and len(output) >= 2:
        grown = sum(1 for old, new in zip(op.inputs, inputs) if new != old)  # a concat along the tokens
        output = (output[0], output[1] + grown * (n - 1), *output[2:])
    scale = numel(output) / numel(op.output) if numel(op.output) else 1.0
    attrs = {**op.attrs, "tokens": op.attrs["tokens"] * n} if op.kind is OpKind.LINEAR else op.attrs
    macs = op.macs * n if op.kind is OpKind.LINEAR else round(op.macs * scale)
    return replace(op, inputs=inputs, output=output, macs=macs, vector_ops=round(op.vector_ops * scale), attrs=attrs)


def _draft_deps(edit: GraphEdit, step: set[str], kept: set[str]):
    """dep -> what a draft op reads instead: the dep itself outside the step, its draft copy, or,
    for an op the draft skips (a layer >= E), what that op read (transitively)."""
    memo: dict[str, list[str]] = {}

    def deps(dep: str) -> list[str]:
        if dep not in step:
            return [dep]
        if dep in kept:
            return [DRAFT + dep]
        if dep not in memo:
            memo[dep] = list(dict.fromkeys(d for dd in edit.deps[dep] for d in deps(dd)))
        return memo[dep]

    return deps


def speculative(graph: OpGraph, opts: SpeculativeOptions) -> OpGraph:
    where = "speculative"
    stage = loop_stage(graph, opts.stage, where)
    looped = loop_ops(graph, stage)
    require(not any(op.name.startswith(DRAFT) for op in looped), "applied twice (the loop already drafts)", where)
    layers = [i for op in looped if (i := layer_of(op)) is not None]
    require(bool(layers), f"no decoder layers (ops under a `layers.<i>` scope) in the loop stage {stage!r}", where)
    n_layers = max(layers) + 1
    require(
        opts.exit_layer < n_layers,
        f"exit_layer {opts.exit_layer} must be below the model's {n_layers} layers",
        f"{where}.exit_layer",
    )
    buckets: dict[tuple[int, ...], list[Op]] = defaultdict(list)
    for op in looped:
        buckets[op.step_indices].append(op)
    order = sorted(buckets, key=min)
    gamma = opts.draft_tokens
    per_bucket = rounds([len(steps) for steps in order], opts.acceptance, gamma)
    edit = GraphEdit(graph)
    first_round = 0
    for steps, count in zip(order, per_bucket):
        ops = buckets[steps]
        names = {op.name for op in ops}
        if count == 0:
            for op in ops:
                edit.drop(op.name)
            continue
        round_ids = range(first_round, first_round + count)
        first_round += count
        draft_steps = [j * (gamma + 1) + t for j in round_ids for t in range(gamma)]
        verify_steps = [j * (gamma + 1) + gamma for j in round_ids]
        kept = {op.name for op in ops if (layer_of(op) or 0) < opts.exit_layer}
        draft_deps = _draft_deps(edit, names, kept)
        drafts = []
        for op in ops:  # drafts first, in the step's order, ahead of the verify pass
            if op.name in kept:
                deps = [d for dep in edit.deps[op.name] for d in draft_deps(dep)]
                draft = replace(op, name=DRAFT + op.name, block=DRAFT + op.block).in_steps(draft_steps)
                edit.insert(draft, deps, before=ops[0].name)
                drafts.append(draft.name)
        read = {d for name in drafts for d in edit.deps[name]}
        draft_sinks = [d for d in drafts if d not in read]
        for op in ops:
            edit.replace(widen(op, gamma + 1).in_steps(verify_steps))
            if not names & set(edit.deps[op.name]):
                for sink in draft_sinks:
                    edit.add_dep(op.name, sink)
    return edit.build()


PASS = Pass("speculative", SpeculativeOptions, speculative, "self-speculative decoding: early-exit drafts + verify")
