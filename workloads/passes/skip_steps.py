"""`skip_steps`: start the denoising loop from a cached latent (approximate caching).

    {name: skip_steps, k: 10}                                 # skip the first 10 steps
    {name: skip_steps, k: 10, lookup_ms: 2.0, link_gbs: 25}
    {name: skip_steps, k: {0: 0.1, 5: 0.2, 10: 0.3, 25: 0.4}}  # a distribution of K (see below)

NIRVANA (Agarwal et al., "Approximate Caching for Efficiently Serving Text-to-Image Diffusion
Models", NSDI 2024) retrieves the intermediate noise state of a similar earlier prompt and runs
only the last N-K of N steps, K in {5, 10, 15, 20, 25} chosen by prompt similarity.

Cost model: the loop's ops run in its steps K..N-1 only (the first K steps of the loop as it is
when the pass runs; per-step work is unchanged, so exactly K steps' work is saved), and one
op `cache.fetch_latent` runs once before the loop, in the loop's stage: a data movement writing
the latent (the loop's step output, e.g. N x 4 x 64 x 64 fp16 for SD 1.5 at 512²) into DRAM,
annotated `extra_latency_s = lookup_ms / 1e3 + latent_bytes / (link_gbs x 1e9)`: the retrieval
(an approximate-nearest-neighbour lookup of the prompt embedding) plus the transfer over the
storage link, charged by the simulator as device idle time. K = 0 is a cache miss: the lookup
is paid, nothing is fetched, every step runs. The defaults (1 ms, 10 GB/s) are placeholders
for a local vector index and a storage/NIC link; set them for the deployment studied.

A distribution of K (a mapping K -> probability, summing to 1) is run at its expected K rounded
to the nearest step (halves up), which is exact for latency whenever steps cost the same and E[K] is whole
(the latency is affine in K). For the exact probability-weighted mix, simulate each entry of
`variants(distribution, ...)` and weight the results by its probability.
The simulator models cost, not image quality (which NIRVANA trades off through K).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.arch.schema import doc

from ..ir import Op, OpGraph, OpKind, numel
from . import Pass
from ._loop import GraphEdit, latent_shape, loop_ops, loop_stage, loop_steps, restrict_steps
from ._select import require

FETCH = "cache.fetch_latent"


@dataclass(frozen=True)
class SkipStepsOptions:
    k: Any = field(metadata=doc("steps skipped: an integer, or a mapping K -> probability", "steps"))
    lookup_ms: float = field(default=1.0, metadata=doc("cache lookup latency per request", "ms", positive=False))
    link_gbs: float = field(default=10.0, metadata=doc("bandwidth of the link the latent is fetched over", "GB/s"))
    stage: str = field(default="", metadata=doc("the loop stage (default: the pipeline's only loop)"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def distribution(k: Any, where: str = "skip_steps.k") -> dict[int, float]:
    """`k` as a mapping K -> probability (an integer K is {K: 1.0}), validated."""
    if _is_int(k):
        return {k: 1.0}
    require(isinstance(k, Mapping) and k, "expected an integer or a mapping K -> probability", where)
    out = {}
    for key, p in k.items():
        kk = int(key) if isinstance(key, str) and key.strip().isdigit() else key
        require(_is_int(kk), f"expected integer K, got {str(key)[:40]!r}", where)
        ok = isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= float(p) <= 1.0
        require(ok, f"probability of K={kk} must be a number in [0, 1], got {str(p)[:40]!r}", where)
        out[kk] = float(p)
    require(abs(sum(out.values()) - 1.0) <= 1e-6, f"probabilities must sum to 1, got {sum(out.values()):g}", where)
    return out


def expected_k(k: Any, where: str = "skip_steps.k") -> int:
    """The K a pass runs with: K itself, or a distribution's mean rounded to the nearest step
    (halves up)."""
    dist = distribution(k, where)
    return math.floor(sum(kk * p for kk, p in dist.items()) + 0.5)


def variants(k: Any, **options: Any) -> list[tuple[float, dict[str, Any]]]:
    """(probability, pass entry) for each K of a distribution (or the one K): simulate each
    and weight by its probability for the exact expected latency, energy and traffic."""
    return [(p, {"name": "skip_steps", "k": kk, **options}) for kk, p in distribution(k).items() if p > 0]


def fetch_op(stage: str, latent: tuple[int, ...], dtype_op: Op, k: int, opts: SkipStepsOptions) -> Op:
    """The retrieval of the cached latent at step `k` (`k == 0`: a miss, the lookup only)."""
    shape = latent if k > 0 else (0,)
    nbytes = numel(shape) * dtype_op.word_bytes
    latency = opts.lookup_ms * 1e-3 + nbytes / (opts.link_gbs * 1e9)
    return Op(
        name=FETCH, kind=OpKind.DATA_MOVEMENT, inputs=(), output=shape, dtype=dtype_op.dtype, stage=stage,
        block="cache", attrs={"what": "fetch_latent", "k": k},
        annotations={"extra_latency_s": latency, "cache_bytes": nbytes},
    )  # fmt: skip


def skip_steps(graph: OpGraph, opts: SkipStepsOptions) -> OpGraph:
    stage = loop_stage(graph, opts.stage, "skip_steps")
    k = expected_k(opts.k)
    steps = loop_steps(graph, stage)
    for kk in distribution(opts.k):
        require(0 <= kk < len(steps), f"K={kk} must be in [0, {len(steps)}), the loop's steps", "skip_steps.k")
    require(FETCH not in graph.graph, "applied twice (the loop already starts from a cached latent)", "skip_steps")
    out = restrict_steps(graph, stage, steps[k:])
    looped = loop_ops(out, stage)
    names = {op.name for op in looped}
    sources = [op.name for op in looped if not names & set(out.graph.predecessors(op.name))]
    outside = [d for s in sources for d in out.graph.predecessors(s) if d not in names]
    sink = looped[-1]
    edit = GraphEdit(out)
    edit.insert(fetch_op(stage, latent_shape(out, stage), sink, k, opts), outside, before=looped[0].name)
    for s in sources:
        edit.add_dep(s, FETCH)
    return edit.build()


PASS = Pass("skip_steps", SkipStepsOptions, skip_steps, "start the loop from a cached latent at step K (NIRVANA)")
