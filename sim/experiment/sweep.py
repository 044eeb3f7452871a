"""Design-space sweeps: an experiment's `sweep` section expands into design points.

    sweep:
      arch.array.rows: [64, 128, 256]          # any arch key (merged like arch_overrides)
      arch.dram.bandwidth_gbs: [256, 1024]
      workload.options.resolution: [512, 768]  # any model option
      simulation.attention: [fused, unfused]
    sweep_mode: grid                           # grid (cartesian product) or zip

Every point is validated before anything runs. Points sharing a workload build its graph once;
each finished point goes straight into the SQLite store, and a re-run skips stored points.
Locally points run in this process; with a Dask scheduler (`ttvsim run --dask ADDRESS|local`),
each workload group is one task.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from workloads.errors import InputError, suggest, unknown
from workloads.registry import registry, resolve_options

from ..arch import Arch, load_arch, merge
from ..arch.schema import from_mapping
from ..engine import Simulator
from ..results.store import SweepStore, point_key
from .experiment import Experiment, SimulationSpec

PREFIXES = ("arch.", "workload.options.", "workload.model", "simulation.")


def points(exp: Experiment, where: str = "sweep") -> list[dict[str, Any]]:
    """The design points of `exp.sweep` (a list of {dotted key: value})."""
    axes = dict(exp.sweep)
    for key, values in axes.items():
        if not key.startswith(PREFIXES):
            raise InputError(
                f"unknown sweep key '{key}'{suggest(key, ['arch.array.rows', 'workload.options.resolution', 'simulation.attention'])}; "
                f"keys start with {', '.join(PREFIXES)}",
                where=where,
            )
        if not isinstance(values, list) or not values:
            raise InputError(f"expected a non-empty list of values, got {values!r}", where=f"{where}.{key}")
    if exp.sweep_mode == "zip":
        lengths = {len(v) for v in axes.values()}
        if len(lengths) > 1:
            raise InputError(f"zip mode needs lists of equal length, got {sorted(lengths)}", where=where)
        return [dict(zip(axes, combo)) for combo in zip(*axes.values())]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def variant(exp: Experiment, point: Mapping[str, Any]) -> Experiment:
    """`exp` with one point's settings applied."""
    arch_over = merge(exp.arch_overrides, _arch_overrides(point))
    options = dict(exp.workload.options)
    model = exp.workload.model
    sim_changes: dict[str, Any] = {}
    for key, value in point.items():
        if key.startswith("arch."):
            continue
        if key.startswith("workload.options."):
            options[key.removeprefix("workload.options.")] = value
        elif key == "workload.model":
            model = value
        else:
            sim_changes[key.removeprefix("simulation.")] = value
    workload = replace(exp.workload, model=model, options=options)
    simulation = from_mapping(SimulationSpec, {**asdict(exp.simulation), **sim_changes}, "simulation")
    new = replace(exp, workload=workload, arch_overrides=arch_over, simulation=simulation, sweep={})
    object.__setattr__(new, "base_dir", exp.base_dir)
    return new


def validate(exp: Experiment, pts: Sequence[Mapping[str, Any]], source: str) -> list[tuple[Experiment, Arch]]:
    """Every point's experiment and arch, checked before any runs (the arch file is read once)."""
    base = exp.load_arch(source)
    out = []
    for i, point in enumerate(pts):
        where = f"{source}: sweep point {i} {dict(point)}"
        try:
            v = variant(exp, point)
            arch = load_arch(base, _arch_overrides(point)) if any(k.startswith("arch.") for k in point) else base
            if v.workload.model not in registry():
                raise unknown("model", v.workload.model, registry())
            resolve_options(registry()[v.workload.model], v.workload.options)
        except InputError as exc:
            raise InputError(str(exc), where=where) from None
        out.append((v, arch))
    return out


def run_group(items: Sequence[tuple[Experiment, Arch]]) -> list[dict[str, Any]]:
    """Simulate points that share one workload: the graph is built (and lowered) once."""
    simulator = Simulator(items[0][0].build())
    return [
        simulator.run(arch, attention=v.simulation.attention, fuse_elementwise=v.simulation.fuse_elementwise).summary()
        for v, arch in items
    ]


def run_sweep(
    exp: Experiment,
    source: str,
    store_path: str | Path,
    *,
    client: Any = None,
    progress: Callable[[str], None] = lambda _: None,
) -> pd.DataFrame:
    """Run every point not yet in the store; return all stored points of this experiment."""
    pts = points(exp, f"{source}: sweep")
    checked = validate(exp, pts, source)
    store = SweepStore(store_path)
    key = identity(exp)
    done = store.done(key)
    todo = [(p, item) for p, item in zip(pts, checked) if point_key(p) not in done]
    progress(f"{len(pts)} points, {len(pts) - len(todo)} already stored, {len(todo)} to run")
    groups: dict[str, list[tuple[dict, tuple[Experiment, Arch]]]] = {}
    for p, (v, arch) in todo:
        groups.setdefault(point_key({"model": v.workload.model, **v.workload.options}), []).append((p, (v, arch)))
    finished = 0
    for batch, summaries in _execute(list(groups.values()), client):
        for (p, _), summary in zip(batch, summaries):
            store.add(key, p, summary)
        finished += len(batch)
        progress(f"  {finished}/{len(todo)} points done")
    return store.frame(key, keys=exp.sweep)


def identity(exp: Experiment) -> str:
    """The experiment's name plus a digest of everything but the sweep (base arch, workload,
    simulation options, ttvsim version): stored points are reused only if none changed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("ttvsim")
    except PackageNotFoundError:
        release = "unknown"
    base = {
        "arch": asdict(exp.load_arch()), "workload": asdict(exp.workload),
        "simulation": asdict(exp.simulation), "version": release,
    }  # fmt: skip
    digest = hashlib.sha1(json.dumps(base, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{exp.name}@{digest}"


def _execute(groups: list[list[tuple[dict, tuple[Experiment, Arch]]]], client: Any):
    """Yield (group, summaries) as groups finish, locally or on a Dask client."""
    if client is None:
        for group in groups:
            yield group, run_group([item for _, item in group])
        return
    from distributed import as_completed

    futures = {client.submit(run_group, [item for _, item in group], pure=False): group for group in groups}
    for future in as_completed(futures):
        yield futures[future], future.result()


def dask_client(address: str, workers: int = 2) -> Any:
    """A Dask client for `address` ('local' starts a local cluster); clear error without Dask."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("Dask sweeps need the dask extra: pip install 'ttvsim[dask]'") from None
    if workers <= 0:
        raise InputError(f"--workers must be positive, got {workers}")
    if address == "local":
        return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None))
    try:
        return Client(address, timeout="10s")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at '{address}' ({exc})") from None


def _arch_overrides(point: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in point.items():
        if key.startswith("arch."):
            _set(tree, key.removeprefix("arch.").split("."), value)
    return tree


def _set(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


__all__ = ["dask_client", "points", "run_group", "run_sweep", "validate", "variant"]
