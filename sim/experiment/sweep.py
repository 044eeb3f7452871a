"""Design-space sweeps: an experiment's `sweep` section expands into design points.

    sweep:
      arch.array.rows: [64, 128, 256]          # any arch key (merged like arch_overrides)
      arch.dram.bandwidth_gbs: [256, 1024]
      workload.options.resolution: [512, 768]  # any model option
      simulation.attention: [fused, unfused]
    sweep_mode: grid                           # grid (cartesian product) or zip
    sweep_limit: 1000000                       # most points allowed (the default)

**Size.** A grid's size is the product of its list lengths, known before expanding it; a
sweep of more than `sweep_limit` points (default 1,000,000) is refused with a one-line error
before anything is expanded, and raising `sweep_limit` in the experiment is the way to run it.
Points are never materialized as a list: the grid is iterated lazily (`itertools.product`) and
point i is decoded from its index when needed.

**Validation.** Before anything runs, every value of every arch key is converted and checked on
the base arch, and every distinct workload (model and options) and simulation setting set is
resolved once (in grid mode the product of each kind's axes, not of all axes), so validation
needs neither every point in memory nor one check per point: a bad value is a one-line error
naming the point. Whether a point's arch values fit together (a stationary tile in its SRAM) is
checked when the point runs; one that does not is stored with the reason in column
`infeasible` (numbers empty), counted, and never on a Pareto front.

**Store.** Results go to a `SweepStore` (`sim.results.store`, SQLite table `points`), opened and
checked (schema, writability, lock) after validation and before any point is computed. A point's
key is a digest of its base arch (every field) and arch keys, its workload (model, resolved
options, the contents of file options, passes and runtime), its simulation options and
`sim.version.code_digest()`, so a stored
row is reused exactly when it would be recomputed identically; editing the simulator's code
invalidates every stored point. Each point is stored as it finishes and committed in small
batches (about every second), so a killed run resumes where it stopped, recomputing only the
points not committed, and the result is the same rows as an uninterrupted run. The returned frame
has one row per point of this grid, in grid order: never a row of another experiment, grid or
code version. `fresh=True` (`ttvsim run --fresh`) starts a new store.

**Execution** (`sim.experiment.execute`). Points sharing a workload build its graph once. Tasks
of up to `CHUNK` points of one workload (each simulated as one batch of archs) run in this process, in a local pool of forked worker
processes (`ttvsim run --jobs N`), or on a Dask cluster (`--dask ADDRESS|local`; each worker keeps
its last workload's graph), at most `WINDOW` tasks in flight; every point is stored as its task
returns, by the client alone, and the rows are the same however the points ran.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workloads.errors import InputError, short_repr, suggest

from ..arch import Arch
from ..area import design_metrics
from ..results.store import SweepStore
from . import search
from .execute import CHUNK, Task, _iter_task, _results, chunk_size, dask_client, point_metrics, process_pool, run_task
from .experiment import Experiment
from .resolve import Keyed, Resolved, Resolver, _kind, _split, _text, arch_digest, expand, variant

PREFIXES = ("arch.", "workload.options.", "workload.model", "simulation.", "passes", "design.")
_PREFIXES = ("arch.", "workload.options.", "simulation.", "design.")
_PROGRESS_LINES = 20


def check_key(key: str, where: str) -> None:
    """A sweep key must start with one of `PREFIXES` (`passes` and `workload.model` exactly)."""
    if not (key.startswith(_PREFIXES) or key in ("workload.model", "passes")):
        example = suggest(key, ["arch.array.rows", "workload.options.resolution", "simulation.attention"])
        raise InputError(
            f"unknown sweep key {short_repr(key)}{example}; keys start with {', '.join(PREFIXES)}", where=where
        )


def bundle_labels(key: str, values: Any, where: str) -> list[Any]:
    """A `design.NAME` axis: a mapping label -> {sweep key: value, ...} applied together; its labels."""
    if not isinstance(values, Mapping) or not values:
        raise InputError(f"expected a mapping of labels to settings, got {short_repr(values)}", where=f"{where}.{key}")
    for label, settings in values.items():
        at = f"{where}.{key}.{label}"
        if not isinstance(settings, Mapping):
            raise InputError(f"expected a mapping of sweep keys to values, got {short_repr(settings)}", where=at)
        for inner in settings:
            if str(inner).startswith("design."):
                raise InputError("a design bundle cannot hold another bundle", where=f"{at}.{inner}")
            check_key(str(inner), at)
    return list(values)


class Grid:
    """The design points of `exp.sweep`, never materialized: iterable, sized, indexable by ordinal."""

    def __init__(self, exp: Experiment, where: str = "sweep") -> None:
        self.keys = tuple(exp.sweep)
        self.values = tuple(sweep_values(exp, where).values())
        self.zip = exp.sweep_mode == "zip"
        lengths = [len(v) for v in self.values]
        if self.zip and len(set(lengths)) > 1:
            raise InputError(f"zip mode needs lists of equal length, got {sorted(set(lengths))}", where=where)
        self.size = (lengths[0] if lengths else 1) if self.zip else math.prod(lengths)
        if self.size > exp.sweep_limit:
            raise InputError(
                f"the sweep has {self.size:,} points, more than sweep_limit {exp.sweep_limit:,}; "
                f"set `sweep_limit: {self.size}` in the experiment to run it anyway",
                where=where,
            )

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        combos = zip(*self.values) if self.zip else itertools.product(*self.values)
        return (dict(zip(self.keys, combo)) for combo in combos)

    def point(self, ordinal: int) -> dict[str, Any]:
        """The settings of point `ordinal` (its position in iteration order)."""
        if self.zip:
            return {key: values[ordinal] for key, values in zip(self.keys, self.values)}
        picks = []
        for values in reversed(self.values):
            ordinal, pick = divmod(ordinal, len(values))
            picks.append(values[pick])
        return dict(zip(self.keys, reversed(picks)))

    def factors(self) -> Iterator[dict[str, Any]]:
        """Setting sets that cover every arch value and every distinct workload and simulation
        combination (arch values are checked one at a time: `Resolver.check`)."""
        if self.zip:
            yield from self
            return
        for key, values in zip(self.keys, self.values):
            if _kind(key) == "arch":
                yield from ({key: v} for v in values)
        for kind in ("workload", "simulation"):
            axes = [(k, v) for k, v in zip(self.keys, self.values) if _kind(k) == kind]
            for combo in itertools.product(*(v for _, v in axes)):
                yield dict(zip((k for k, _ in axes), combo))

    def groups(self) -> Iterator[Iterator[int]]:
        """Ordinals of every point, grouped by workload settings (a group shares one graph)."""
        if self.zip:
            by_workload: dict[str, list[int]] = {}
            for ordinal, point in enumerate(self):
                by_workload.setdefault(_text(_split(point)["workload"]), []).append(ordinal)
            yield from map(iter, by_workload.values())
            return
        strides = [math.prod(len(v) for v in self.values[i + 1 :]) for i in range(len(self.values))]
        outer = [i for i, k in enumerate(self.keys) if _kind(k) == "workload"]
        inner = [i for i, k in enumerate(self.keys) if _kind(k) != "workload"]
        for picks in itertools.product(*(range(len(self.values[i])) for i in outer)):
            yield _ordinals(sum(p * strides[i] for p, i in zip(picks, outer)), inner, strides, self.values)


def _ordinals(base: int, axes: list[int], strides: list[int], values: tuple[list, ...]) -> Iterator[int]:
    for picks in itertools.product(*(range(len(values[i])) for i in axes)):
        yield base + sum(p * strides[i] for p, i in zip(picks, axes))


def sweep_values(exp: Experiment, where: str, allow_ranges: bool = False) -> dict[str, Any]:
    """Each sweep key's values (a bundle's labels; a range mapping where `allow_ranges`), checked."""
    out: dict[str, Any] = {}
    for key, values in exp.sweep.items():
        check_key(key, where)
        if key.startswith("design."):
            out[key] = bundle_labels(key, values, where)
        elif allow_ranges and isinstance(values, Mapping):
            out[key] = search.axis(key, values, f"{where}.{key}")
        elif not isinstance(values, list) or not values:
            raise InputError(f"expected a non-empty list of values, got {short_repr(values)}", where=f"{where}.{key}")
        else:
            out[key] = values
    return out


def points(exp: Experiment, where: str = "sweep") -> Grid | search.PointList:
    """The design points of `exp.sweep`: a lazy `Grid` of {dotted key: value} (search.mode grid),
    or the sampled points (random, lhs); size limit and keys are checked before expanding."""
    if exp.search.mode in ("grid", "optuna"):
        return Grid(exp, where)
    if exp.search.samples > exp.sweep_limit:
        raise InputError(f"search.samples {exp.search.samples:,} exceeds sweep_limit {exp.sweep_limit:,}", where=where)
    space = [v if isinstance(v, search.Axis) else search.Axis(k, tuple(v))
             for k, v in sweep_values(exp, where, allow_ranges=True).items()]  # fmt: skip
    drawn = search.sample(space, exp.search.samples, exp.search.mode, exp.search.seed)
    return search.PointList(exp.sweep, drawn, lambda p: _text(_split(p)["workload"]))


def validate(exp: Experiment, source: str = "") -> tuple[Grid, Resolver]:
    """Check the sweep's size and every distinct setting set before anything runs."""
    grid = points(exp, f"{source}: sweep" if source else "sweep")
    resolver = Resolver(exp, source)
    for settings in grid.factors():
        resolver.check(settings)
    if exp.runtime is not None:
        from ..engine import _runtime

        try:
            _runtime(exp.runtime, resolver.base)
        except InputError as exc:
            raise InputError(str(exc), where=f"{source}: runtime" if source else "runtime") from None
    return grid, resolver


def run_sweep(
    exp: Experiment,
    source: str,
    store_path: str | Path,
    *,
    client: Any = None,
    progress: Callable[[str], None] = lambda _: None,
    fresh: bool = False,
    bar: Callable[[int], Any] | None = None,
) -> pd.DataFrame:
    """Run every point of `exp`'s sweep not yet in the store; return this sweep's rows, in point
    order, with `feasible` (and, given objectives, `pareto`) columns when the experiment has a
    `search` section. `bar(total)`, if given, makes a progress bar (`sim.results.progress`)
    used instead of the text lines sent to `progress`."""
    where = f"{source}: search" if source else "search"
    constraints = search.parse_constraints(exp.search.constraints, design_name(exp), f"{where}.constraints")
    objectives = search.parse_objectives(exp.search.objectives, f"{where}.objectives")
    if exp.search.mode == "optuna":
        from .optimize import run_optuna

        frame = run_optuna(exp, source, store_path, constraints, objectives, progress=progress, fresh=fresh, bar=bar)
        return search.annotate(frame, constraints, objectives, where)
    start = time.perf_counter()
    grid, resolver = validate(exp, source)
    if constraints.design:
        total = len(grid)
        grid = feasible_points(grid, resolver, constraints)
        progress(f"{len(grid)} of {total} points meet the design constraints")
    with SweepStore(store_path, fresh=fresh) as store:
        store.register(resolver.keyed(p).key for p in grid)
        todo = _Ordinals(len(grid), store.missing())
        progress(_plan_text(len(grid), store.stored(), todo.count))
        with _ticker(todo.count, progress, bar) as report:
            for rows in _results(_tasks(grid, resolver, todo), client):
                store.add_rows((key, grid.point(ordinal), values) for ordinal, key, values in rows)
                report(len(rows))
        frame = store.frame(grid.point)
    if len(frame) != len(grid):
        raise RuntimeError(f"sweep store {store_path} holds {len(frame)} of the sweep's {len(grid)} points")
    seconds = time.perf_counter() - start
    progress(f"sweep runner: {todo.count} points simulated, {len(grid)} rows read back in {seconds:.2f} s "
             f"({todo.count / max(seconds, 1e-9) * 60:,.0f} points per minute)")  # fmt: skip
    if constraints.design or constraints.run or objectives:
        frame = search.annotate(frame, constraints, objectives, where)
    return frame


@contextlib.contextmanager
def _ticker(total: int, progress: Callable[[str], None], bar: Callable[[int], Any] | None) -> Iterator[Callable[[int], None]]:
    """A callback for n finished points: a progress bar's update when `bar` is given, else
    periodic lines."""
    if bar is None:
        yield _progress_every(total, progress)
        return
    with bar(total) as b:
        yield b.update


def design_name(exp: Experiment) -> Callable[[str], bool]:
    """Whether a constraint name is known before a point runs: a design metric, an arch key, a swept key."""
    swept = set(exp.sweep)
    return lambda name: name in search.DESIGN_METRICS or name.startswith("arch.") or name in swept


def design_row(exp: Experiment, point: Mapping[str, Any], resolved: Resolved, names: Iterable[str]) -> dict[str, Any]:
    """What design-time constraints read for one point: its settings, design metrics, arch keys."""
    row: dict[str, Any] = {**point, **design_metrics(resolved.arch, resolved.workload.passes or None)}
    for name in names:
        if name.startswith("arch.") and name not in row:
            row[name] = arch_value(resolved.arch, name)
    return row


def arch_value(arch: Arch, name: str) -> Any:
    """`arch.array.rows` -> arch.array.rows (dict fields by key); `InputError` for an unknown key."""
    value: Any = arch
    for part in name.split(".")[1:]:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif hasattr(value, "__dataclass_fields__") and part in value.__dataclass_fields__:
            value = getattr(value, part)
        else:
            raise InputError(f"unknown arch key '{name}' in a constraint", where="search.constraints")
    return value


def feasible_points(grid: Grid | search.PointList, resolver: Resolver, constraints: search.Constraints) -> search.PointList:
    """The points of `grid` that meet every design-time constraint, in order."""
    names = set().union(*(e.names for e in constraints.design))
    kept: list[dict[str, Any]] = []
    batch: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def flush() -> None:
        if not batch:
            return
        frame = pd.DataFrame([row for _, row in batch])
        mask = constraints.check(frame, "design", len(frame))
        kept.extend(p for (p, _), ok in zip(batch, mask) if ok)
        batch.clear()

    for point in grid:
        try:
            resolved = resolver.resolve(point)
        except InputError:  # arch values that do not fit together: kept, run stores it as infeasible
            flush()
            kept.append(point)
            continue
        batch.append((point, design_row(resolver.exp, point, resolved, names)))
        if len(batch) == CHUNK * 64:
            flush()
    flush()
    return search.PointList(resolver.exp.sweep, kept, lambda p: _text(_split(p)["workload"]))


def _plan_text(total: int, stored: int, todo: int) -> str:
    repeats = total - stored - todo
    return f"{total} points, {stored} already stored, {todo} to run" + (
        f" ({repeats} repeat others)" if repeats else ""
    )


def _progress_every(total: int, progress: Callable[[str], None]) -> Callable[[int], None]:
    """A callback counting finished points and reporting about `_PROGRESS_LINES` times."""
    step, done = max(1, math.ceil(total / _PROGRESS_LINES)), 0

    def tick(n: int = 1) -> None:
        nonlocal done
        before, done = done, done + n
        if done // step > before // step or done == total:
            progress(f"  {done}/{total} points done")

    return tick


def _tasks(grid: Grid, resolver: Resolver, todo: _Ordinals) -> Iterator[Task]:
    """The points still to run, lazily, as tasks of up to `chunk_size` points of one workload, each
    point as its arch keys over the resolver's base arch (workers build and check the archs)."""
    size = chunk_size(todo.count)
    for group in grid.groups():
        chunk: list[tuple[int, Keyed]] = []
        for ordinal in filter(todo.__contains__, group):
            chunk.append((ordinal, resolver.keyed(grid.point(ordinal))))
            if len(chunk) == size:
                yield _task(chunk, resolver)
                chunk = []
        if chunk:
            yield _task(chunk, resolver)


def _task(chunk: list[tuple[int, Keyed]], resolver: Resolver) -> Task:
    first = chunk[0][1]
    items = tuple((o, k.key, k.overrides, k.simulation) for o, k in chunk)
    return Task(first.workload_key, first.workload, items, resolver.base, resolver._arch_where, resolver.arch_paths)


class _Ordinals:
    """A set of point ordinals as a bitmap: one bit per grid point."""

    def __init__(self, size: int, members: Iterable[int]) -> None:
        self.bits, self.count = bytearray((size + 7) // 8), 0
        for m in members:
            self.bits[m >> 3] |= 1 << (m & 7)
            self.count += 1

    def __contains__(self, ordinal: int) -> bool:
        return bool(self.bits[ordinal >> 3] >> (ordinal & 7) & 1)


__all__ = [
    "Grid", "Keyed", "Resolved", "Resolver", "Task", "arch_digest", "dask_client", "expand", "point_metrics", "points",
    "process_pool", "run_sweep", "run_task", "validate", "variant", "_iter_task",
]
