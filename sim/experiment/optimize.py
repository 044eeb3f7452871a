"""Multi-objective search with Optuna (`search.mode: optuna`), resumable through two SQLite files.

The study lives in `DIR/optuna.sqlite` (Optuna's RDB storage), named after the experiment and a
digest of its search space, objectives, constraints, base experiment and `sim` code, so a re-run
of the same experiment continues the same study (running only the trials still missing to reach
`search.samples`) and any change starts a new one. Every simulated point is also a row of the
sweep store (`DIR/sweep.sqlite`), keyed like a grid point, so `ttvsim results` sees it.
Trials run one at a time in this process (a sampler needs each result before its next ask).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from workloads.errors import InputError

from .. import version
from ..engine import Simulator
from ..results.store import SweepStore, digest
from . import search
from .experiment import Experiment
from .sweep import Resolver, Task, _iter_task, design_row, sweep_values

_PRIMITIVE = (str, int, float, bool, type(None))


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise InputError("search mode 'optuna' needs Optuna: pip install 'ttvsim[dse]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _suggest(trial: Any, axis: search.Axis) -> Any:
    if axis.is_range:
        if axis.integer:
            return trial.suggest_int(axis.key, int(axis.low), int(axis.high), log=axis.log)
        return trial.suggest_float(axis.key, axis.low, axis.high, log=axis.log)
    if all(isinstance(v, _PRIMITIVE) for v in axis.values) and len(set(map(repr, axis.values))) == len(axis.values):
        return trial.suggest_categorical(axis.key, list(axis.values))
    return axis.values[trial.suggest_categorical(axis.key, list(range(len(axis.values))))]


def violation(expression: search.Expression, row: Mapping[str, Any]) -> float:
    """How far `row` is from meeting `expression` (<= 0: met): the gap of a single `a <= b`-like
    comparison, else 0 or 1."""
    holds = bool(expression.evaluate(row))
    body = expression.tree.body
    if (
        isinstance(body, ast.Compare)
        and len(body.ops) == 1
        and isinstance(body.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
    ):
        left = float(search._eval(body.left, row))
        right = float(search._eval(body.comparators[0], row))
        gap = left - right if isinstance(body.ops[0], (ast.Lt, ast.LtE)) else right - left
        return gap if not holds else min(gap, 0.0)
    return 0.0 if holds else 1.0


def _constraints_of(trial: Any) -> Sequence[float]:
    return trial.user_attrs.get("constraints", [])


def _sampler(optuna: Any, name: str, seed: int) -> Any:
    """The sampler; constraints through `Trial.set_constraint` (Optuna >= 5) or `constraints_func`."""
    kwargs = {} if hasattr(optuna.trial.Trial, "set_constraint") else {"constraints_func": _constraints_of}
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kwargs)
    return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)


def run_optuna(
    exp: Experiment,
    source: str,
    store_path: str | Path,
    constraints: search.Constraints,
    objectives: Sequence[search.Objective],
    *,
    progress: Callable[[str], None] = lambda _: None,
    fresh: bool = False,
    bar: Callable[[int], Any] | None = None,
) -> pd.DataFrame:
    """Run the study's missing trials; return one row per completed trial, in trial order."""
    optuna = _optuna()
    where = f"{source}: sweep" if source else "sweep"
    values = sweep_values(exp, where, allow_ranges=True)
    space = [v if isinstance(v, search.Axis) else search.Axis(k, tuple(v)) for k, v in values.items()]
    resolver = Resolver(exp, source)
    store_path = Path(store_path)
    names = set().union(set(), *(e.names for e in constraints.design))
    with SweepStore(store_path, fresh=fresh) as store:  # checks the folder, and locks it for the study too
        db = store_path.with_name("optuna.sqlite")
        if fresh:
            db.unlink(missing_ok=True)
        storage, name = f"sqlite:///{db}", _study_name(exp, space, objectives, constraints)
        # a resumed study continues its random stream instead of replaying the first trials
        asked = _asked(optuna, storage, name)
        study = optuna.create_study(
            storage=storage, study_name=name, load_if_exists=True,
            directions=["maximize" if o.maximize else "minimize" for o in objectives],
            sampler=_sampler(optuna, exp.search.sampler, exp.search.seed + asked),
        )  # fmt: skip
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        for t in study.trials:  # trials of a killed run: never told, never to be
            if t.state == optuna.trial.TrialState.RUNNING:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        todo = max(0, exp.search.samples - sum(t.state in finished for t in study.trials))
        progress(
            f"optuna study {study.study_name}: {exp.search.samples} trials, {exp.search.samples - todo} done, {todo} to run"
        )
        graphs: dict[str, Simulator] = {}
        with _bar(bar, todo) as tick:
            for _ in range(todo):
                _trial(study, optuna, space, resolver, store, constraints, objectives, names, graphs)
                tick()
        trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        settings = [json.loads(t.user_attrs["settings"]) for t in trials]
        store.register(t.user_attrs["point"] for t in trials)
        frame = store.frame(lambda o: settings[o])
    frame.insert(0, "trial", [t.number for t in trials][: len(frame)])
    return frame


def _trial(
    study: Any, optuna: Any, space: Sequence[search.Axis], resolver: Resolver, store: SweepStore,
    constraints: search.Constraints, objectives: Sequence[search.Objective], names: set[str], graphs: dict[str, Simulator],
) -> None:  # fmt: skip
    """Ask one trial, evaluate it (pruned if it breaks a design constraint), tell the result."""
    trial = study.ask()
    point = {a.key: _suggest(trial, a) for a in space}
    resolver.keyed(point)  # a bad workload or simulation setting is the user's error
    try:
        resolved = resolver.resolve(point)
    except InputError as exc:  # arch values that do not fit together: an infeasible design
        trial.set_user_attr("infeasible", str(exc))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    row = design_row(resolver.exp, point, resolved, names)
    if not constraints.check(pd.DataFrame([row]), "design", 1)[0]:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    task = Task(resolved.workload_key, resolved.workload, ((0, resolved.key, resolved.arch, resolved.simulation),))
    one = {resolved.workload_key: graphs[resolved.workload_key]} if resolved.workload_key in graphs else {}
    _, key, summary = next(_iter_task(task, one))
    graphs.update(one)  # every workload's simulator is kept: samplers alternate between them
    store.add(key, point, summary)
    row = {**row, **summary}
    search.check_names(constraints, list(row), "search.constraints")
    gaps = [violation(e, row) for e in constraints.run]
    if hasattr(trial, "set_constraint"):
        for i, gap in enumerate(gaps):
            trial.set_constraint(f"c{i}", gap)
    trial.set_user_attr("constraints", gaps)
    trial.set_user_attr("point", key)
    trial.set_user_attr("settings", json.dumps(point, default=str))
    study.tell(trial, [float(row[o.column]) for o in objectives])


def _asked(optuna: Any, storage: str, name: str) -> int:
    """How many trials the study `name` already has (0 when it does not exist yet)."""
    try:
        return len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:
        return 0


class _bar:
    """A tick callback for `todo` trials: a progress bar's update, or nothing."""

    def __init__(self, factory: Callable[[int], Any] | None, todo: int) -> None:
        self.bar = factory(todo) if factory else None

    def __enter__(self) -> Callable[[], None]:
        if self.bar is None:
            return lambda: None
        b = self.bar.__enter__()
        return lambda: b.update(1)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _study_name(exp: Experiment, space: Sequence[search.Axis], objectives: Sequence[search.Objective],
                constraints: search.Constraints) -> str:  # fmt: skip
    payload = {
        "space": [asdict(a) for a in space], "objectives": [o.label for o in objectives],
        "constraints": [e.text for e in constraints.design + constraints.run], "sampler": exp.search.sampler,
        "seed": exp.search.seed, "arch": exp.arch, "arch_overrides": exp.arch_overrides,
        "workload": asdict(exp.workload), "simulation": asdict(exp.simulation), "passes": exp.passes,
        "code": version.code_digest(),
    }  # fmt: skip
    return f"{exp.name}-{digest(payload)[:12]}"
