"""Serve sweeps through the sweep store (`sim.results.store.SweepStore`): resumable, never recomputed.

Every point of a serve experiment is validated before anything runs (`config.expand`), then keyed:
a point's key is a `digest` of everything that determines its numbers -- the validated experiment
without its name, description and sweep, each fleet group's resolved arch (every field, so a
preset file's contents count, not its name), the workload's options over the model's defaults, a
trace file's contents, and `sim.version.code_digest()`. The store registers the grid's keys and
only the points not yet stored run, in grid order; each is stored as it finishes and committed at
once (a point takes seconds). So a killed sweep resumes where it stopped, a re-run recomputes
nothing, and an identical point of another serve experiment reuses the row. The rows come back
in grid order with the swept settings as the first columns.

The grid itself is `config.expand` (cartesian or zip): `sim.experiment.sweep.Grid` admits only
simulate sweep keys (`arch.`, `workload.`, `simulation.`, ...), not serving ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.errors import InputError

from .. import version
from ..results.progress import progress_bar
from ..results.store import SweepStore, digest
from .config import ServeExperiment, model_options
from .runner import Context, PointResult, fleet_archs, run_point

QUANTILES = np.linspace(0.0, 1.0, 201)  # latency quantiles stored per point (CDF plots, tables)
INT_METRICS = ("requests", "cache_peak_entries", "cache_evictions", "events")
Points = list[tuple[dict[str, Any], ServeExperiment]]


def point_key(exp: ServeExperiment, where: str = "") -> str:
    """The store key of one validated point (see the module docstring)."""
    doc = asdict(exp)
    for name in ("name", "description", "sweep", "sweep_mode", "base_dir"):
        doc.pop(name)
    fleet = doc["fleet"]
    for name in ("arch", "arch_overrides", "instances"):
        fleet.pop(name)
    for group, arch in zip(fleet["groups"], fleet_archs(exp, where), strict=True):
        group.pop("arch_overrides")
        group["arch"] = hashlib.sha256(repr(arch).encode()).hexdigest()
    doc["workload"] = {"model": exp.workload.model, "options": model_options(exp.workload)}
    if exp.stream.trace:
        doc["stream"]["trace"] = _file_digest(exp.base_dir / exp.stream.trace, f"{where} stream.trace")
    return digest({"code": version.code_digest(), "serve": doc})


def _file_digest(path: Path, where: str) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror})", where=where) from None


def point_summary(result: PointResult) -> dict[str, Any]:
    """What the store keeps of a point: its metrics (K shares as `k<K>_share` columns) and the
    latency quantiles at `QUANTILES`, with and without the cache."""
    out: dict[str, Any] = {}
    for key, value in result.metrics.items():
        if key == "k_share":
            out.update({f"k{k}_share": share for k, share in value.items()})
        else:
            out[key] = value
    out["latency_quantiles"] = np.quantile(result.outcome.latency_s, QUANTILES).tolist()
    if result.baseline is not None:
        out["baseline_latency_quantiles"] = np.quantile(result.baseline.latency_s, QUANTILES).tolist()
    return out


def settings(point: dict[str, Any]) -> dict[str, Any]:
    """A point's swept settings as table cells (lists and mappings as JSON text)."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in point.items()}


def run_sweep(
    points: Points,
    store_path: Path,
    where: str = "",
    fresh: bool = False,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run the points not yet in the store at `store_path`; this sweep's rows, in grid order.
    A progress bar (rate, ETA) counts the points on a terminal (`sim.results.progress`)."""
    keys = [point_key(exp, where) for _, exp in points]
    say = progress or (lambda _: None)
    with SweepStore(store_path, fresh=fresh, batch_points=1) as store:
        store.register(keys)
        todo = list(store.missing())
        say(f"{len(points)} points: {len(points) - len(todo)} already stored, {len(todo)} to run ({store_path})")
        ctx = Context()
        with progress_bar(len(todo), "points", "serve") as bar:
            for done, ordinal in enumerate(todo, 1):
                point, exp = points[ordinal]
                result = run_point(exp, ctx, where)
                store.add(keys[ordinal], settings(point), point_summary(result))
                say(_line(done, len(todo), point, exp, result.metrics))
                bar.update(1)
        frame = store.frame(lambda o: settings(points[o][0]))
    if len(frame) != len(points):
        raise RuntimeError(f"sweep store {store_path} holds {len(frame)} of the sweep's {len(points)} points")
    for name in INT_METRICS:
        if name in frame:
            frame[name] = frame[name].astype("int64")
    return frame


def _line(done: int, total: int, point: dict[str, Any], exp: ServeExperiment, m: dict[str, Any]) -> str:
    label = ", ".join(f"{k}={v}" for k, v in point.items()) or exp.name
    return (
        f"[{done}/{total}] {label}: hit {m['hit_rate']:.1%}, steps saved {m['steps_saved']:.1%}, "
        f"p50 {m['latency_p50_s']:.2f} s, p99 {m['latency_p99_s']:.2f} s"
    )


def quantiles(frame: pd.DataFrame, column: str = "latency_quantiles") -> list[np.ndarray | None]:
    """Each row's stored latency quantiles (None where the row has none)."""
    if column not in frame:
        return [None] * len(frame)
    return [np.array(json.loads(v)) if isinstance(v, str) else None for v in frame[column]]
