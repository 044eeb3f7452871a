"""Run one serve point: stream -> cache -> fleet -> metrics (`sweep` runs every point of a sweep).

Points share what they can: the per-batch step costs (`CostBook`, one simulation per workload,
arch and batch size) and the request stream (one per stream section). Each point with a cache
is also run without it (`baseline: true`) on the same stream and fleet, for the savings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..arch import Arch
from .cache import LatentCache, latent_bytes
from .config import ServeExperiment, fleet_size, model_options, steps_of
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


def service_models(exp: ServeExperiment, ctx: Context, where: str = "") -> list[ServiceModel]:
    """One service model per fleet group."""
    archs = fleet_archs(exp, where)
    return [ServiceModel(ctx.book, exp.workload, arch, exp.simulation, where) for arch in archs]


def service_model(exp: ServeExperiment, ctx: Context, where: str = "") -> ServiceModel:
    """The service model of the fleet's first group (the only one of a one-arch fleet)."""
    return service_models(exp, ctx, where)[0]


def fleet_archs(exp: ServeExperiment, where: str = "") -> list[Arch]:
    """Each fleet group's resolved arch."""
    single = len(exp.fleet.groups) == 1
    return [
        fleet_arch(g.arch, g.arch_overrides, exp.base_dir, f"{where} fleet.{'arch' if single else f'groups[{i}].arch'}")
        for i, g in enumerate(exp.fleet.groups)
    ]


def prices(exp: ServeExperiment) -> list[float]:
    """Price per hour of every instance, in instance order."""
    default = exp.metrics.price_per_hour
    return [g.price_per_hour or default for g in exp.fleet.groups for _ in range(g.instances)]


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
        instances=fleet_size(exp.fleet), batching=exp.fleet.batching,
        max_batch=exp.fleet.max_batch if exp.fleet.batching != "none" else 1, scheduling=exp.fleet.scheduling,
        lookup_s=exp.cache.lookup_s if cache is not None else 0.0,
        transfer_s=latent_bytes(exp.cache, resolution) / (exp.cache.link_gbs * 1e9),
        warmup=int(len(stream) * exp.metrics.warmup_fraction),
        groups=tuple(g.instances for g in exp.fleet.groups) if len(exp.fleet.groups) > 1 else (),
    )  # fmt: skip


def simulate(exp: ServeExperiment, stream: Stream, models: list[ServiceModel], cache: LatentCache | None) -> Outcome:
    return run(stream, cache, [m.at for m in models], engine_config(exp, stream, cache))


def run_point(exp: ServeExperiment, ctx: Context | None = None, where: str = "") -> PointResult:
    ctx = ctx or Context()
    stream = ctx.stream(exp)
    models = service_models(exp, ctx, where)
    warmup = int(len(stream) * exp.metrics.warmup_fraction)

    def measure(cache_on: bool) -> tuple[dict[str, Any], Outcome]:
        cache = make_cache(exp, stream, cache_on)
        outcome = simulate(exp, stream, models, cache)
        return summarize(outcome, cache, prices(exp), exp.metrics.slo_s, warmup), outcome

    metrics, outcome = measure(True)
    baseline = None
    if exp.baseline and exp.cache.capacity > 0:
        base_metrics, baseline = measure(False)
        metrics.update(savings(metrics, base_metrics))
        metrics.update({f"baseline_{k}": v for k, v in base_metrics.items() if k in BASELINE_KEYS})
    c1 = models[0].at(1)
    metrics["service_s_batch1"] = c1.service_s(0)
    metrics["step_s_batch1"] = c1.step_s
    if len(models) > 1:
        metrics["service_s_batch1_by_group"] = [m.at(1).service_s(0) for m in models]
    return PointResult(metrics, outcome, baseline)


BASELINE_KEYS = ("latency_mean_s", "latency_p95_s", "busy_s", "cost_per_1k_busy", "slo_attainment", "throughput_rps")
