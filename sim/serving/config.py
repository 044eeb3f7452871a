"""The serve experiment YAML: typed, validated sections (see `load_serve_experiment`).

    name: sdxl_a100_nirvana
    workload: {model: sdxl, options: {resolution: 1024, steps: 50, cfg: true}}
    stream: {requests: 20000, seed: 0, arrivals: {process: poisson, rate: 0.5}}
    cache: {policy: lcbfu, capacity: 2000}
    fleet: {arch: a100, instances: 2, batching: none, scheduling: fifo}
    # or a heterogeneous fleet: fleet: {groups: [{arch: a100, instances: 2}, {arch: h100, instances: 2}]}
    metrics: {slo_s: 10, price_per_hour: 2.0}
    sweep: {cache.capacity: [0, 500, 2000], cache.policy: [lcbfu, lru]}

A sweep key is a dotted path into the document (any serving key: `stream.arrivals.rate`,
`cache.capacity`, `cache.policy`, `fleet.instances`, `fleet.arch`, ...); every point is
validated before any runs.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.errors import InputError, short_repr

from ..arch.schema import doc, from_mapping, read_yaml
from ..experiment.experiment import SimulationSpec, WorkloadSpec

ARRIVAL_PROCESSES = ("poisson", "bursty", "diurnal")
POLICIES = ("lcbfu", "lru", "lfu", "fifo")
INDEXES = ("exact", "hnsw")
BATCHING = ("none", "static", "continuous")
SCHEDULING = ("fifo", "srf")
# The NIRVANA artifact's similarity -> K map: the first threshold the similarity exceeds gives K.
DEFAULT_THRESHOLDS = ((0.95, 25), (0.90, 20), (0.85, 15), (0.75, 10), (0.65, 5))


@dataclass(frozen=True)
class ArrivalSpec:
    process: str = field(default="poisson", metadata=doc("arrival process", choices=ARRIVAL_PROCESSES))
    rate: float = field(default=1.0, metadata=doc("mean arrival rate", "requests/s"))
    burst_factor: float = field(default=4.0, metadata=doc("bursty: rate in a burst / rate outside", min=1.0, max=1e6))
    burst_fraction: float = field(default=0.1, metadata=doc("bursty: share of time in bursts", min=1e-6, max=0.999))
    burst_mean_s: float = field(default=60.0, metadata=doc("bursty: mean burst length", "s"))
    period_s: float = field(default=86400.0, metadata=doc("diurnal: period", "s"))
    amplitude: float = field(default=0.5, metadata=doc("diurnal: relative amplitude of the rate", min=0.0, max=1.0))


@dataclass(frozen=True)
class PromptSpec:
    topics: int = field(default=1000, metadata=doc("topics (Zipf-popular clusters of prompts)"))
    zipf: float = field(default=1.0, metadata=doc("Zipf exponent of topic popularity", min=0.0, max=10.0))
    dim: int = field(default=64, metadata=doc("embedding dimension", max=4096))
    repeat_fraction: float = field(default=0.032, metadata=doc("share of exact repeats", min=0.0, max=1.0))
    background: float = field(
        default=1.0, metadata=doc("weight of the direction shared by all prompts", min=0.0, max=100.0)
    )


@dataclass(frozen=True)
class StreamSpec:
    requests: int = field(default=20_000, metadata=doc("requests to simulate", max=100_000_000))
    seed: int = field(default=0, metadata=doc("random seed", positive=False, max=2**32 - 1))
    arrivals: ArrivalSpec = field(default_factory=ArrivalSpec, metadata=doc("arrival process"))
    prompts: PromptSpec = field(default_factory=PromptSpec, metadata=doc("synthetic prompt similarity structure"))
    trace: str = field(default="", metadata=doc("CSV trace (timestamp, prompt_id or embedding); replaces synthetic"))


@dataclass(frozen=True)
class CacheSpec:
    policy: str = field(default="lcbfu", metadata=doc("eviction policy", choices=POLICIES))
    capacity: int = field(
        default=10_000,
        metadata=doc(
            "most entries (latent states; a prompt stores up to len(k_states)); 0 disables the cache", positive=False
        ),
    )
    capacity_gb: float = field(
        default=0.0, metadata=doc("most bytes of stored latents; 0: no byte limit", "GB", positive=False)
    )
    k_states: Any = field(
        default=(5, 10, 15, 20, 25), metadata=doc("denoising steps whose latents are stored per prompt")
    )
    thresholds: Any = field(
        default=DEFAULT_THRESHOLDS, metadata=doc("[[similarity, K], ...]: similarity above the first gives K")
    )
    insert: str = field(default="all", metadata=doc("which completed requests are stored", choices=("all", "misses")))
    index: str = field(default="exact", metadata=doc("vector search: exact numpy or hnswlib", choices=INDEXES))
    lookup_s: float = field(default=0.002, metadata=doc("retrieval lookup latency per request", "s", positive=False))
    link_gbs: float = field(default=10.0, metadata=doc("storage link bandwidth for latents", "GB/s"))
    latent_channels: int = field(default=4, metadata=doc("latent channels"))
    latent_downsample: int = field(default=8, metadata=doc("image pixels per latent pixel (per side)"))
    latent_bytes_per_value: int = field(default=2, metadata=doc("bytes per latent value (2: fp16)"))


@dataclass(frozen=True)
class _Instances:
    """Instances of one arch (a fleet's one-arch spelling, or one group of a heterogeneous fleet)."""

    arch: Any = field(default="a100", metadata=doc("preset name, YAML path or mapping, as in `ttvsim run`"))
    arch_overrides: dict[str, Any] = field(default_factory=dict, metadata=doc("nested keys merged over the arch"))
    instances: int = field(default=1, metadata=doc("accelerator instances", max=100_000))


@dataclass(frozen=True)
class GroupSpec(_Instances):
    price_per_hour: float = field(
        default=0.0,
        metadata=doc("price of one accelerator-hour here; 0: metrics.price_per_hour", "$/h", positive=False),
    )


GROUP_KEYS = ("arch", "arch_overrides", "instances")


@dataclass(frozen=True)
class FleetSpec(_Instances):
    groups: Any = field(
        default=(), metadata=doc("heterogeneous fleet: [{arch, arch_overrides, instances, price_per_hour}, ...]")
    )
    batching: str = field(default="none", metadata=doc("batching policy", choices=BATCHING))
    max_batch: int = field(default=4, metadata=doc("most requests per batch (static, continuous)", max=1024))
    scheduling: str = field(
        default="fifo", metadata=doc("queue order (srf: fewest steps left first)", choices=SCHEDULING)
    )


@dataclass(frozen=True)
class MetricsSpec:
    slo_s: float = field(default=10.0, metadata=doc("latency target for SLO attainment", "s"))
    price_per_hour: float = field(default=2.0, metadata=doc("price of one accelerator-hour", "$/h", positive=False))
    warmup_fraction: float = field(
        default=0.1, metadata=doc("share of requests (by arrival) left out of latency metrics", min=0.0, max=0.9)
    )


@dataclass(frozen=True)
class ServeExperiment:
    name: str = field(metadata=doc("experiment name (also the default output folder)"))
    workload: WorkloadSpec = field(metadata=doc("the model every request runs"))
    simulation: SimulationSpec = field(default_factory=SimulationSpec, metadata=doc("simulation options"))
    stream: StreamSpec = field(default_factory=StreamSpec, metadata=doc("request stream"))
    cache: CacheSpec = field(default_factory=CacheSpec, metadata=doc("approximate cache of intermediate latents"))
    fleet: FleetSpec = field(default_factory=FleetSpec, metadata=doc("accelerator instances, batching, queueing"))
    metrics: MetricsSpec = field(default_factory=MetricsSpec, metadata=doc("SLO and price"))
    baseline: bool = field(default=True, metadata=doc("also run each point without the cache (for savings)"))
    description: str = field(default="", metadata=doc("free text"))
    sweep: dict[str, Any] = field(default_factory=dict, metadata=doc("dotted serving key -> list of values"))
    sweep_mode: str = field(default="grid", metadata=doc("combine sweep axes", choices=("grid", "zip")))
    base_dir: Path = field(default=Path("."), init=False, compare=False)


def _check_k_states(value: Any, steps: int, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"expected a non-empty list of steps, got {short_repr(value)}", where=where)
    for k in value:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k < steps:
            raise InputError(f"each step must be an integer in 1..{steps - 1}, got {short_repr(k)}", where=where)
    return tuple(sorted(set(value)))


def _check_thresholds(value: Any, steps: int, where: str) -> tuple[tuple[float, int], ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"expected a list of [similarity, K] pairs, got {short_repr(value)}", where=where)
    pairs = []
    for pair in value:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        s, k = pair if ok else (None, None)
        if not ok or isinstance(s, bool) or not isinstance(s, (int, float)) or not -1 <= s <= 1:
            raise InputError(f"expected [similarity in -1..1, K], got {short_repr(pair)}", where=where)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k < steps:
            raise InputError(f"K must be an integer in 1..{steps - 1}, got {short_repr(pair)}", where=where)
        pairs.append((float(s), k))
    return tuple(sorted(pairs, reverse=True))


def model_options(workload: WorkloadSpec) -> dict[str, Any]:
    """The workload's options over the model's defaults (unknown models: the options alone)."""
    from workloads.registry import registry

    spec = registry().get(workload.model)
    return {**(spec.options if spec else {}), **workload.options}


def steps_of(workload: WorkloadSpec) -> int:
    """Denoising steps of the workload (50 when it names none); build() checks the value itself."""
    steps = model_options(workload).get("steps", 50)
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 1 else 50


def validate(data: Any, where: str, base_dir: Path) -> ServeExperiment:
    """One serve experiment (no sweep expansion) from a mapping; errors name `where` and the key."""
    exp = from_mapping(ServeExperiment, data, where)
    steps = steps_of(exp.workload)
    cache = exp.cache
    k_states = _check_k_states(cache.k_states, steps, f"{where} cache.k_states")
    thresholds = _check_thresholds(cache.thresholds, steps, f"{where} cache.thresholds")
    object.__setattr__(cache, "k_states", k_states)
    object.__setattr__(cache, "thresholds", thresholds)
    raw_fleet = data.get("fleet") if isinstance(data, dict) else None
    object.__setattr__(exp.fleet, "groups", _check_groups(exp.fleet, raw_fleet or {}, f"{where} fleet"))
    object.__setattr__(exp, "base_dir", base_dir)
    return exp


def _check_groups(fleet: FleetSpec, raw: dict[str, Any], where: str) -> tuple[GroupSpec, ...]:
    """The fleet's groups: `groups` as given, or the one group of `arch` x `instances` (old spelling)."""
    if "groups" not in raw:
        groups: tuple[GroupSpec, ...] = (GroupSpec(fleet.arch, fleet.arch_overrides, fleet.instances),)
        wheres = [where]
    else:
        mixed = [k for k in GROUP_KEYS if k in raw]
        if mixed:
            raise InputError(f"give either {', '.join(mixed)} or groups, not both", where=f"{where}.{mixed[0]}")
        if not isinstance(fleet.groups, list) or not fleet.groups:
            raise InputError(
                f"expected a non-empty list of groups, got {short_repr(fleet.groups)}", where=f"{where}.groups"
            )
        wheres = [f"{where}.groups[{i}]" for i in range(len(fleet.groups))]
        groups = tuple(from_mapping(GroupSpec, g, w) for g, w in zip(fleet.groups, wheres, strict=True))
    for group, at in zip(groups, wheres, strict=True):
        if not isinstance(group.arch, (str, dict)):
            raise InputError(
                f"expected a preset name, a path or a mapping, got {short_repr(group.arch)}", where=f"{at}.arch"
            )
    if sum(g.instances for g in groups) > 100_000:
        raise InputError("at most 100,000 instances in all", where=where)
    return groups


def fleet_size(fleet: FleetSpec) -> int:
    """Instances in all groups."""
    return sum(g.instances for g in fleet.groups)


def _set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"cannot set '{key}': '{part}' is not a mapping", where=where)
    node[parts[-1]] = value


def expand(data: dict[str, Any], where: str, base_dir: Path) -> list[tuple[dict[str, Any], ServeExperiment]]:
    """Every point of the document's sweep (one point without a sweep), each validated."""
    base = validate(data, where, base_dir)
    if not base.sweep:
        return [({}, base)]
    for key, values in base.sweep.items():
        if not isinstance(values, list) or not values:
            raise InputError(
                f"expected a non-empty list of values, got {short_repr(values)}", where=f"{where} sweep.{key}"
            )
        if key.split(".")[0] in ("sweep", "sweep_mode", "name"):
            raise InputError("cannot sweep this key", where=f"{where} sweep.{key}")
    keys = list(base.sweep)
    if base.sweep_mode == "zip":
        lengths = {len(v) for v in base.sweep.values()}
        if len(lengths) > 1:
            raise InputError("zip sweep axes must have equal lengths", where=f"{where} sweep")
        combos = list(zip(*base.sweep.values(), strict=True))
    else:
        combos = list(itertools.product(*base.sweep.values()))
    points = []
    for combo in combos:
        point = dict(zip(keys, combo, strict=True))
        doc_ = copy.deepcopy({k: v for k, v in data.items() if k not in ("sweep", "sweep_mode")})
        for key, value in point.items():
            _set_dotted(doc_, key, value, f"{where} sweep.{key}")
        label = ", ".join(f"{k}={short_repr(v)}" for k, v in point.items())
        points.append((point, validate(doc_, f"{where} [{label}]", base_dir)))
    return points


def load_serve_experiment(path: str | Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], ServeExperiment]]]:
    """Read a serve experiment YAML: (the raw document, its validated sweep points)."""
    path = Path(path)
    data = read_yaml(path)
    return data, expand(data, f"{path}:", path.resolve().parent)
