"""Search beyond grids: sampled design points, constraints, objectives, Pareto fronts, Optuna.

    sweep:
      arch.array.rows: [64, 128, 256]                        # a list: choose one of its values
      arch.dram.bandwidth_gbs: {low: 128, high: 2048, log: true, int: true}   # a range (not in grids)
    search:
      mode: lhs                 # grid (the default: sweep_mode decides grid or zip), random, lhs, optuna
      samples: 200              # points drawn (random, lhs) or trials run (optuna)
      seed: 0                   # the same seed draws the same points
      constraints: ["area_mm2 <= 400", "sram_total_mb <= 64", "power_w <= 300"]
      objectives: [latency_s, area_mm2]                      # minimized; "max:throughput_per_w" maximizes

**Sampling.** `random` draws each axis independently; `lhs` (Latin hypercube) splits each axis
into `samples` equal strata and uses each stratum once, in a seeded random order, so every
axis is covered evenly. A list axis maps a stratum to a value index (values are equally likely);
a range maps it into [low, high] (log-uniform with `log: true`; rounded with `int: true`).
Points are deterministic functions of the seed and the sweep section.

**Constraints** are expressions over design keys (`arch.array.rows * arch.array.cols <= 65536`,
any `arch.*` key, swept keys) and metrics: design metrics known before a point runs (`area_mm2`,
`sram_total_mb`, `peak_tops`, `area_*_mm2`) filter points before they are simulated; the others
(`power_w`, `latency_s`, `energy_j`, `edp_js`, any number of the summary) mark the rows of
finished points (`feasible` column). They are parsed with `ast` and evaluated by a whitelist
interpreter: names, numbers, strings, comparisons, `and`/`or`/`not`, `+ - * / // % **`, `min`,
`max`, `abs`; anything else (calls, attributes of non-keys, subscripts, lambdas) is an
`InputError` naming the constraint.

**Objectives** name metrics with their direction (`min:` by default; `latency_s`, `energy_j`,
`edp_js`, `area_mm2`, `power_w` are minimized, `throughput_per_w`, `throughput_per_mm2`,
`peak_tops` maximized unless prefixed). The `pareto` column marks the non-dominated feasible
points (`pareto_front`).

**Optuna** (`mode: optuna`, `sampler: nsga2 | tpe`, extra `ttvsim[dse]`) asks for trials over
the same axes (lists as categorical, ranges as float/int distributions), evaluates each through
the sweep's path and stores it in the sweep store; the study itself lives in `DIR/optuna.sqlite`
(Optuna's RDB storage, study named after the experiment and a digest of its search space), so a
re-run resumes: it runs only the trials still missing to reach `samples`. Design-time
constraint violations are pruned trials (never simulated); run-time ones reach the sampler as
Optuna constraints (feasible when <= 0).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workloads.errors import InputError, short_repr, suggest

from ..arch.schema import doc

MODES = ("grid", "random", "lhs", "optuna")
SAMPLERS = ("nsga2", "tpe")
EXPRESSION_MAX = 500  # characters of a constraint
NODES_MAX = 200  # syntax nodes of a constraint
DESIGN_METRICS = ("area_mm2", "area_arrays_mm2", "area_sram_mm2", "area_vector_mm2", "sram_total_mb", "peak_tops")
RUN_METRICS = ("power_w", "edp_js", "throughput_per_w", "throughput_per_mm2")
MAXIMIZED = ("throughput_per_w", "throughput_per_mm2", "peak_tops", "utilization")


@dataclass(frozen=True)
class SearchSpec:
    mode: str = field(default="grid", metadata=doc("how points are chosen", choices=MODES))
    samples: int = field(default=100, metadata=doc("points drawn (random, lhs) or trials (optuna)", max=10_000_000))
    seed: int = field(default=0, metadata=doc("random seed: the same seed gives the same points", positive=False))
    constraints: Any = field(default_factory=list, metadata=doc("expressions every kept point satisfies"))
    objectives: Any = field(default_factory=list, metadata=doc("metrics to optimize: name, min:name or max:name"))
    sampler: str = field(default="nsga2", metadata=doc("Optuna sampler", choices=SAMPLERS))


# -- axes and sampling ------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One sweep key: a list of choices, or a numeric range."""

    key: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values

    def at(self, u: float) -> Any:
        """The value at quantile `u` in [0, 1)."""
        if not self.is_range:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return int(min(max(round(value), self.low), self.high)) if self.integer else float(value)


RANGE_KEYS = ("low", "high", "log", "int")


def axis(key: str, spec: Any, where: str) -> Axis:
    """An `Axis` from a sweep entry: a non-empty list, or {low, high, log?, int?}."""
    if isinstance(spec, list) and spec:
        return Axis(key, tuple(spec))
    if not isinstance(spec, Mapping):
        raise InputError(f"expected a non-empty list of values or {{low, high}}, got {short_repr(spec)}", where=where)
    extra = [k for k in spec if k not in RANGE_KEYS]
    if extra:
        raise InputError(f"unknown range key {short_repr(extra[0])}{suggest(str(extra[0]), RANGE_KEYS)}", where=where)
    low, high = spec.get("low"), spec.get("high")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"expected a finite number, got {short_repr(value)}", where=f"{where}.{name}")
    log, integer = spec.get("log", False), spec.get("int", False)
    for name, value in (("log", log), ("int", integer)):
        if not isinstance(value, bool):
            raise InputError(f"expected true or false, got {short_repr(value)}", where=f"{where}.{name}")
    if not low <= high or (log and low <= 0):
        raise InputError(f"needs low <= high{' and low > 0 (log)' if log else ''}, got {low} and {high}", where=where)
    return Axis(key, (), float(low), float(high), log, integer)


def axes(sweep: Mapping[str, Any], where: str, allow_ranges: bool = True) -> list[Axis]:
    out = [axis(k, v, f"{where}.{k}") for k, v in sweep.items()]
    if not allow_ranges:
        for a in out:
            if a.is_range:
                raise InputError(
                    "ranges need search.mode random, lhs or optuna; a grid needs a list", where=f"{where}.{a.key}"
                )
    return out


def sample(space: Sequence[Axis], n: int, mode: str, seed: int) -> list[dict[str, Any]]:
    """`n` points over `space`: independent uniform draws (`random`) or a Latin hypercube (`lhs`)."""
    rng = np.random.default_rng(seed)
    if mode == "random":
        u = rng.random((n, len(space)))
    elif mode == "lhs":
        u = np.empty((n, len(space)))
        for j in range(len(space)):
            u[:, j] = (rng.permutation(n) + rng.random(n)) / n
    else:
        raise ValueError(f"not a sampling mode: {mode}")
    return [{a.key: a.at(float(u[i, j])) for j, a in enumerate(space)} for i in range(n)]


class PointList:
    """Materialized design points with the interface of a sweep grid (len, iter, point, groups)."""

    def __init__(
        self, keys: Sequence[str], points: Sequence[Mapping[str, Any]], group_of: Callable[[Mapping], str]
    ) -> None:
        self.keys = tuple(keys)
        self.points = [dict(p) for p in points]
        self.size = len(self.points)
        self._group_of = group_of

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.points)

    def point(self, ordinal: int) -> dict[str, Any]:
        return self.points[ordinal]

    def factors(self) -> Iterator[dict[str, Any]]:
        return iter(self.points)

    def groups(self) -> Iterator[Iterator[int]]:
        by: dict[str, list[int]] = {}
        for i, p in enumerate(self.points):
            by.setdefault(self._group_of(p), []).append(i)
        return map(iter, by.values())


# -- constraint expressions -------------------------------------------------------------------
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}  # fmt: skip
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}  # fmt: skip
_FUNCTIONS = {"min": np.minimum, "max": np.maximum, "abs": np.abs}


@dataclass(frozen=True)
class Expression:
    """A parsed constraint: its text, syntax tree and the (dotted) names it reads."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The value over `values` (name -> number or array; a DataFrame works): vectorized."""
        return _eval(self.tree.body, values)


def parse_expression(text: Any, where: str) -> Expression:
    """Parse a constraint safely (whitelisted syntax only); `InputError` naming `where` otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"expected an expression such as 'area_mm2 <= 400', got {short_repr(text)}", where=where)
    if len(text) > EXPRESSION_MAX:
        raise InputError(f"expression longer than {EXPRESSION_MAX} characters", where=where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError(f"not an expression ({exc.msg}): {short_repr(text)}", where=where) from None
    nodes = list(ast.walk(tree))
    if len(nodes) > NODES_MAX:
        raise InputError(f"expression has more than {NODES_MAX} parts", where=where)
    names: set[str] = set()
    _check(tree.body, names, where)
    return Expression(text.strip(), tree, frozenset(names))


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _check(node: ast.AST, names: set[str], where: str) -> None:
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None or name in _FUNCTIONS or any(part.startswith("_") for part in name.split(".")):
            raise InputError(f"'{ast.unparse(node)[:60]}' is not a design key or metric", where=where)
        names.add(name)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
            raise InputError(f"only numbers and strings are allowed, got {short_repr(node.value)}", where=where)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords or not node.args:
            raise InputError(
                f"calls other than {', '.join(_FUNCTIONS)} are not allowed: {ast.unparse(node)[:60]}", where=where
            )
        children: list[ast.AST] = list(node.args)
    elif isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        children = [node.left, *node.comparators]
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        children = [node.left, node.right]
    elif isinstance(node, ast.BoolOp):
        children = list(node.values)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        children = [node.operand]
    else:
        raise InputError(f"'{ast.unparse(node)[:60]}' is not allowed in a constraint "
                         "(names, numbers, comparisons, and/or/not, + - * / // % **, min, max, abs)", where=where)  # fmt: skip
    for c in children:
        _check(c, names, where)


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, (ast.Name, ast.Attribute)):
        value = values[_dotted(node)]
        return np.asarray(value, dtype=float) if _numeric(value) else np.asarray(value)
    if isinstance(node, ast.Constant):
        return float(node.value) if isinstance(node.value, (int, float)) else node.value
    if isinstance(node, ast.Call):
        fn = _FUNCTIONS[node.func.id]  # type: ignore[union-attr]
        args = [_eval(a, values) for a in node.args]
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return fn(out) if fn is np.abs else out
    if isinstance(node, ast.Compare):
        left, result = _eval(node.left, values), True
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, values)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.BinOp):
        with np.errstate(all="ignore"):  # x / 0 and overflow give inf / nan, which compare False
            return _BINARY[type(node.op)](np.asarray(_eval(node.left, values), dtype=float),
                                          np.asarray(_eval(node.right, values), dtype=float))  # fmt: skip
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        parts = [_eval(v, values) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = combine(out, p)
        return out
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        return (
            np.logical_not(operand)
            if isinstance(node.op, ast.Not)
            else (-operand if isinstance(node.op, ast.USub) else operand)
        )
    raise AssertionError(f"unchecked node {type(node).__name__}")


def _numeric(value: Any) -> bool:
    array = np.asarray(value)
    return array.dtype.kind in "biuf"


@dataclass(frozen=True)
class Constraints:
    """Parsed constraints, split by when they can be checked."""

    design: tuple[Expression, ...]
    run: tuple[Expression, ...]

    def check(self, values: Mapping[str, Any], which: str, n: int) -> np.ndarray:
        """Boolean mask of length `n`: every `which` ('design', 'run' or 'all') constraint holds."""
        exprs = {"design": self.design, "run": self.run, "all": self.design + self.run}[which]
        mask = np.ones(n, dtype=bool)
        for e in exprs:
            mask &= np.broadcast_to(np.asarray(e.evaluate(values), dtype=bool), (n,))
        return mask


def parse_constraints(items: Any, design_names: Callable[[str], bool], where: str) -> Constraints:
    """Parse `search.constraints`; a constraint is a design one when `design_names` accepts all its names."""
    if not isinstance(items, list):
        raise InputError(f"expected a list of expressions, got {short_repr(items)}", where=where)
    design, run = [], []
    for i, text in enumerate(items):
        e = parse_expression(text, f"{where}[{i}]")
        (design if all(design_names(n) for n in e.names) else run).append(e)
    return Constraints(tuple(design), tuple(run))


def check_names(constraints: Constraints, known: Sequence[str], where: str) -> None:
    """Every name a run-time constraint reads is a column of the finished rows."""
    for e in constraints.run:
        for name in sorted(e.names - set(known)):
            raise InputError(f"unknown name '{name}'{suggest(name, known)} in '{e.text}'", where=where)


# -- objectives and the Pareto front ------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    column: str
    maximize: bool

    @property
    def label(self) -> str:
        return f"{'max' if self.maximize else 'min'}:{self.column}"


def parse_objectives(items: Any, where: str) -> list[Objective]:
    """`search.objectives`: names, optionally prefixed min: or max:."""
    if not isinstance(items, list):
        raise InputError(f"expected a list of metric names, got {short_repr(items)}", where=where)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise InputError(f"expected a metric name such as latency_s, got {short_repr(item)}", where=f"{where}[{i}]")
        prefix, sep, name = item.partition(":")
        if sep and prefix not in ("min", "max"):
            raise InputError(f"expected min:NAME or max:NAME, got {short_repr(item)}", where=f"{where}[{i}]")
        column = name if sep else item
        out.append(Objective(column, prefix == "max" if sep else column in MAXIMIZED))
    return out


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `values` (n x k, every column minimized).

    A row is dominated when another row is <= in every column and < in at least one; so of
    duplicate rows none dominates the other and all stay on the front. NaN rows are never on it.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError("values must be a 2-D array (points x objectives)")
    n = len(v)
    finite = ~np.isnan(v).any(axis=1)
    keep = finite.copy()
    order = np.lexsort(v.T[::-1])  # by first column, then the others: dominators come first
    front: list[int] = []
    for i in order:
        if not finite[i]:
            continue
        if front:
            f = v[front]
            dominated = np.all(f <= v[i], axis=1) & np.any(f < v[i], axis=1)
            if dominated.any():
                keep[i] = False
                continue
        front.append(i)
    return keep if n else np.zeros(0, dtype=bool)


def objective_matrix(frame: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """The objectives as a matrix to minimize (maximized ones negated)."""
    return np.column_stack([(-1.0 if o.maximize else 1.0) * frame[o.column].to_numpy(dtype=float) for o in objectives])


def annotate(
    frame: pd.DataFrame, constraints: Constraints, objectives: Sequence[Objective], where: str
) -> pd.DataFrame:
    """`frame` with `feasible` (every constraint holds) and, given objectives, `pareto` columns."""
    out = frame.copy()
    check_names(constraints, list(out.columns), where)
    out["feasible"] = constraints.check(out, "all", len(out)) if len(out) else np.zeros(0, dtype=bool)
    if "infeasible" in out:  # an arch whose values do not fit together (`sim.experiment.execute`)
        out["feasible"] &= out["infeasible"].isna().to_numpy()
    if objectives:
        for o in objectives:
            if o.column not in out:
                raise InputError(f"unknown objective '{o.column}'{suggest(o.column, list(out.columns))}", where=where)
        mask = np.zeros(len(out), dtype=bool)
        feasible = out["feasible"].to_numpy()
        if feasible.any():
            mask[np.flatnonzero(feasible)] = pareto_front(objective_matrix(out[feasible], objectives))
        out["pareto"] = mask
    return out


__all__ = [
    "Axis", "Constraints", "Expression", "Objective", "PointList", "SearchSpec", "annotate", "axes", "pareto_front",
    "parse_constraints", "parse_expression", "parse_objectives", "sample",
]  # fmt: skip
