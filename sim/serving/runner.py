"""Run serve experiments: one point (stream -> cache -> fleet -> metrics), or every sweep point.

Points share what they can: the per-batch step costs (`CostBook`, one simulation per workload,
arch and batch size) and the request stream (one per stream section). Each point with a cache
is also run without it (`baseline: true`) on the same stream and fleet, for the savings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cache import LatentCache, latent_bytes
from .config import ServeExperiment, model_options, steps_of
from .engine import EngineConfig, Outcome, run
from .metrics import savings, summarize
from .service import CostBook, ServiceModel, fleet_arch
from .stream import Stream, make_stream


@dataclass
class Context:
    """What points share: step costs and streams."""

    book: CostBook = field(default_factory=CostBook)
    streams: dict[str, Stream] = field(default_factory=dict)

    def stream(self, exp: ServeExperiment) -> Stream:
        key = repr(exp.stream) + str(exp.base_dir)
        if key not in self.streams:
            self.streams = {key: make_stream(exp.stream, exp.base_dir)}  # keep one: streams can be large
        return self.streams[key]


@dataclass
class PointResult:
    metrics: dict[str, Any]
    outcome: Outcome
    baseline: Outcome | None


def service_model(exp: ServeExperiment, ctx: Context, where: str = "") -> ServiceModel:
    arch = fleet_arch(exp.fleet.arch, exp.fleet.arch_overrides, exp.base_dir, f"{where} fleet.arch")
    return ServiceModel(ctx.book, exp.workload, arch, exp.simulation, where)


def make_cache(exp: ServeExperiment, stream: Stream, enabled: bool = True) -> LatentCache | None:
    if not enabled or exp.cache.capacity == 0:
        return None
    resolution = int(model_options(exp.workload).get("resolution", 512))
    return LatentCache(
        exp.cache,
        stream.embeddings.shape[1],
        steps_of(exp.workload),
        latent_bytes(exp.cache, resolution),
        exp.stream.seed,
    )


def engine_config(exp: ServeExperiment, stream: Stream, cache: LatentCache | None) -> EngineConfig:
    resolution = int(model_options(exp.workload).get("resolution", 512))
    return EngineConfig(
        instances=exp.fleet.instances, batching=exp.fleet.batching,
        max_batch=exp.fleet.max_batch if exp.fleet.batching != "none" else 1, scheduling=exp.fleet.scheduling,
        lookup_s=exp.cache.lookup_s if cache is not None else 0.0,
        transfer_s=latent_bytes(exp.cache, resolution) / (exp.cache.link_gbs * 1e9),
        warmup=int(len(stream) * exp.metrics.warmup_fraction),
    )  # fmt: skip


def simulate(exp: ServeExperiment, stream: Stream, model: ServiceModel, cache: LatentCache | None) -> Outcome:
    return run(stream, cache, model.at, engine_config(exp, stream, cache))


def run_point(exp: ServeExperiment, ctx: Context | None = None, where: str = "") -> PointResult:
    ctx = ctx or Context()
    stream = ctx.stream(exp)
    model = service_model(exp, ctx, where)
    warmup = int(len(stream) * exp.metrics.warmup_fraction)

    def measure(cache_on: bool) -> tuple[dict[str, Any], Outcome]:
        cache = make_cache(exp, stream, cache_on)
        outcome = simulate(exp, stream, model, cache)
        m = exp.metrics
        return summarize(outcome, cache, exp.fleet.instances, m.slo_s, m.price_per_hour, warmup), outcome

    metrics, outcome = measure(True)
    baseline = None
    if exp.baseline and exp.cache.capacity > 0:
        base_metrics, baseline = measure(False)
        metrics.update(savings(metrics, base_metrics))
        metrics.update({f"baseline_{k}": v for k, v in base_metrics.items() if k in BASELINE_KEYS})
    c1 = model.at(1)
    metrics["service_s_batch1"] = c1.service_s(0)
    metrics["step_s_batch1"] = c1.step_s
    return PointResult(metrics, outcome, baseline)


BASELINE_KEYS = ("latency_mean_s", "latency_p95_s", "busy_s", "cost_per_1k_busy", "slo_attainment", "throughput_rps")


def run_points(
    points: list[tuple[dict[str, Any], ServeExperiment]], where: str = "", progress: Callable[[str], None] | None = None
) -> list[tuple[dict[str, Any], PointResult]]:
    ctx = Context()
    results = []
    for i, (point, exp) in enumerate(points):
        result = run_point(exp, ctx, where)
        results.append((point, result))
        if progress:
            label = ", ".join(f"{k}={v}" for k, v in point.items()) or exp.name
            m = result.metrics
            progress(
                f"[{i + 1}/{len(points)}] {label}: hit {m['hit_rate']:.1%}, steps saved {m['steps_saved']:.1%}, "
                f"p50 {m['latency_p50_s']:.2f} s, p99 {m['latency_p99_s']:.2f} s"
            )
    return results
