"""Running a sweep's points: tasks of up to `CHUNK` points of one workload, executed in this
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

from ..arch import Arch
from ..area import design_metrics, run_metrics
from ..engine import Simulator
from .experiment import Experiment, SimulationSpec

CHUNK = 64  # points of one workload per task
WINDOW = 32  # tasks in flight


@dataclass(frozen=True)
class Task:
    """Points of one workload to simulate: (ordinal, key, arch, simulation options) each."""

    workload_key: str
    workload: Experiment
    items: tuple[tuple[int, str, Arch, SimulationSpec], ...]



def run_task(task: Task, graphs: dict[str, Simulator] | None = None) -> list[tuple[int, str, dict[str, Any]]]:
    """Simulate a task's points (a Dask task); `graphs` caches the workload's simulator."""
    return list(_iter_task(task, _WORKER_GRAPHS if graphs is None else graphs))


_WORKER_GRAPHS: dict[str, Simulator] = {}  # per process: the last workload's simulator


def _iter_task(task: Task, graphs: dict[str, Simulator]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    simulator = graphs.get(task.workload_key)
    if simulator is None:
        graphs.clear()
        simulator = graphs[task.workload_key] = Simulator(task.workload.build())
    passes = {"passes": task.workload.passes} if task.workload.passes else {}
    for ordinal, key, arch, spec in task.items:
        result = simulator.run(arch, attention=spec.attention, fuse_elementwise=spec.fuse_elementwise, **passes)
        yield ordinal, key, point_metrics(arch, task.workload.passes, result.summary())


def point_metrics(arch: Arch, passes: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """A point's summary with its design and run metrics (area, SRAM, power, EDP, per-W, per-mm^2)."""
    design = design_metrics(arch, passes)
    return {**summary, **design, **run_metrics(summary, design["area_mm2"])}


def _results(tasks: Iterable[Task], client: Any) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(ordinal, key, summary) of every point as it finishes, locally or on a Dask client."""
    if client is None:
        graphs: dict[str, Simulator] = {}
        for task in tasks:
            yield from _iter_task(task, graphs)
        return
    if isinstance(client, concurrent.futures.Executor):  # a local process pool (`--jobs`)
        tasks = iter(tasks)
        pending = {client.submit(run_task, t) for t in itertools.islice(tasks, WINDOW)}
        while pending:
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                yield from future.result()
                pending.update(client.submit(run_task, t) for t in itertools.islice(tasks, 1))
        return
    from distributed import as_completed

    tasks = iter(tasks)
    pending = as_completed([client.submit(run_task, t, pure=False) for t in itertools.islice(tasks, WINDOW)])
    for future in pending:
        yield from future.result()
        for task in itertools.islice(tasks, 1):
            pending.add(client.submit(run_task, task, pure=False))


def process_pool(jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `jobs` worker processes for a sweep's tasks. Workers are forked where the
    platform allows, so they start with the parent's imports and compiled cost models; each
    lowers a workload once (`_WORKER_GRAPHS`). Close it with `shutdown(cancel_futures=True)`."""
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
