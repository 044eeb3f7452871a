"""Running a sweep's points: tasks of up to `CHUNK` points of one workload (`chunk_size`), executed in this
process, in a local process pool (`--jobs`) or on a Dask cluster (`--dask`); each returns the
points' summaries with their design and run metrics, and the client alone writes the store."""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from workloads.errors import InputError

from ..arch import Arch, with_overrides
from ..area import design_metrics, run_metrics
from ..engine import Simulator
from ..results.store import columns
from .experiment import Experiment, SimulationSpec

CHUNK = 256  # most points of one workload per task (simulated as one batch)
WINDOW = 32  # tasks in flight


@dataclass(frozen=True)
class Task:
    """Points of one workload to simulate: (ordinal, key, arch, simulation options) each, where
    the arch is an `Arch`, or, given `base`, the nested arch keys to apply to it (the worker
    builds and checks it; a point whose values do not fit together is stored as infeasible)."""

    workload_key: str
    workload: Experiment
    items: tuple[tuple[int, str, Any, SimulationSpec], ...]
    base: Arch | None = None
    where: str = "sweep"
    changed: tuple[tuple[str, ...], ...] = ()  # arch attribute paths the items may set


def chunk_size(points: int) -> int:
    """Points per task: `CHUNK`, smaller for small sweeps so that they still spread over workers."""
    return max(16, min(CHUNK, points // 8))


def run_task(task: Task, graphs: dict[str, Simulator] | None = None) -> list[tuple[int, str, dict[str, Any]]]:
    """Simulate a task's points (a pool or Dask task): (ordinal, key, store columns) each, the
    summaries already converted for the store (`sim.results.store.columns`), so the client only
    writes them; `graphs` caches the workload's simulator."""
    return [(o, k, columns(row)) for o, k, row in _iter_task(task, _WORKER_GRAPHS if graphs is None else graphs)]


_WORKER_GRAPHS: dict[str, Simulator] = {}  # per process: the last workload's simulator


def _iter_task(task: Task, graphs: dict[str, Simulator]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(ordinal, key, row) of every point: its summary with design and run metrics, or
    {'infeasible': why} for an arch whose values do not fit together. Points sharing simulation
    options are simulated in one batch (`Simulator.summaries`)."""
    simulator = graphs.get(task.workload_key)
    if simulator is None:
        graphs.clear()
        simulator = graphs[task.workload_key] = Simulator(task.workload.build())
    by_spec: dict[SimulationSpec, list[tuple[int, str, Any]]] = {}
    for ordinal, key, arch, spec in task.items:
        by_spec.setdefault(spec, []).append((ordinal, key, arch))
    passes = task.workload.passes or None
    parts: dict[Any, Any] = {}  # converted arch fields of this task's base, per override
    for spec, items in by_spec.items():
        points: list[tuple[int, str, Arch]] = []
        for ordinal, key, arch in items:
            if task.base is None:
                points.append((ordinal, key, arch))
                continue
            try:
                points.append((ordinal, key, with_overrides(task.base, arch, task.where, parts) if arch else task.base))
            except InputError as exc:
                yield ordinal, key, {"infeasible": str(exc)}
        archs = [arch for _, _, arch in points]
        summaries = simulator.summaries(
            archs, attention=spec.attention, fuse_elementwise=spec.fuse_elementwise, passes=passes,
            runtime=task.workload.runtime, base=task.base, changed=task.changed,
        )  # fmt: skip
        for (ordinal, key, arch), summary in zip(points, summaries):
            yield ordinal, key, point_metrics(arch, passes, summary)


def point_metrics(arch: Arch, passes: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """A point's summary with its design and run metrics (area, SRAM, power, EDP, per-W, per-mm^2)."""
    design = design_metrics(arch, passes)
    return {**summary, **design, **run_metrics(summary, design["area_mm2"])}


def _results(tasks: Iterable[Task], client: Any) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    """The (ordinal, key, store columns) of each task's points as the task finishes, locally, in
    a process pool or on a Dask client."""
    if client is None:
        graphs: dict[str, Simulator] = {}
        for task in tasks:
            yield run_task(task, graphs)
        return
    if isinstance(client, concurrent.futures.Executor):  # a local process pool (`--jobs`)
        tasks = iter(tasks)
        for first in itertools.islice(tasks, 1):  # run here first: workers forked after it start
            yield run_task(first)  # with the workload's graph, its lowering and the cost models loaded
        pending = {client.submit(run_task, t) for t in itertools.islice(tasks, WINDOW)}
        while pending:
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                pending.update(client.submit(run_task, t) for t in itertools.islice(tasks, 1))
                yield future.result()
        return
    from distributed import as_completed

    tasks = iter(tasks)
    pending = as_completed([client.submit(run_task, t, pure=False) for t in itertools.islice(tasks, WINDOW)])
    for future in pending:
        for task in itertools.islice(tasks, 1):
            pending.add(client.submit(run_task, task, pure=False))
        yield future.result()


def process_pool(jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `jobs` worker processes for a sweep's tasks. Workers are forked where the
    platform allows, at the first submission, after the client ran the first task itself
    (`_results`), so they start with the parent's imports, loaded cost models and that
    workload's graph and lowering (`_WORKER_GRAPHS`). Close it with `shutdown(cancel_futures=True)`."""
    if jobs <= 0:
        raise InputError(f"--jobs must be positive, got {jobs}")
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context)


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
