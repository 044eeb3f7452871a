"""`sparsity`: annotate ops with the sparsity of their operands (`workloads.annotations.Sparsity`).

    {name: sparsity, by_class: {linear: {weights: "2:4"}, conv: {weights: 0.3}}}
    {name: sparsity, by_class: {linear: "2:4", conv: 0.3}}                # shorthand: the weights
    {name: sparsity, attention_scores: 0.3}                               # attention scores kept
    {name: sparsity, attention_scores_by_axis: {spatial: 0.3, temporal: 1.0}}
    {name: sparsity, attention_scores_by_role: {self: 0.3, cross: 1.0}}
    {name: sparsity, attention_scores_by_length: {1024: 0.5, 4096: 0.3}}  # by key length Lk
    {name: sparsity, by_name: {"*.ff.*": {activations: 0.4}}, by_stage: {decoder: {weights: 0.5}}}
    {name: sparsity, by_class: {linear: 0.3}, format: csr, mode: gate}

A rule is an "N:M" string (structured weights; quote it in YAML, where an unquoted 2:4 is the
base-60 integer 124), a number (unstructured weight density in (0, 1]), or a mapping of the
fields `weights`, `activations`, `scores` (densities), `format`, `activation_format` (storage:
dense, bitmask, csr, csc, rle, ellpack_block) and `mode` (skip, gate). `weights` applies to
conv and linear ops with weights, `activations` to conv, linear and attention, `scores` to
attention; a name glob or stage rule sets on each op the fields that apply to it, while a
class rule must only name fields that apply to its class.

Precedence (later wins, field by field): `by_class`, `by_stage`, `by_name` (the last matching
glob). An attention op's score density comes from `attention_scores`, then
`attention_scores_by_axis`, `_by_role`, `_by_length` (the largest threshold <= the op's key
length Lk), then a rule's `scores`. The pass-level `format`, `activation_format` and `mode`
apply to every op the pass annotates, unless its rule sets them ("": keep an existing
annotation's, else the default: ellpack_block for N:M weights, bitmask for a density, dense
activations, skip). A field this pass does not set keeps the value of an earlier sparsity
annotation. An op left fully dense (densities 1.0, N:M with N == M) carries no annotation, so
its results equal the dense ones exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from ..annotations import FORMATS, MODES, SPARSITY, Sparsity, sparsity_of
from ..errors import InputError, unknown
from ..ir import CONV_KINDS, Op, OpGraph, OpKind
from . import Pass
from ._select import check_classes, fraction, require

RULE_FIELDS = ("weights", "activations", "scores", "format", "activation_format", "mode")
DENSITY_FIELDS = ("weights", "activations", "scores")
APPLIES = {"weights": ("conv", "linear"), "activations": ("conv", "linear", "attention"), "scores": ("attention",)}
WEIGHTED_KINDS = CONV_KINDS | {OpKind.LINEAR}  # matmul (class linear) multiplies two activations
ROLES = ("self", "cross")
AXES = ("spatial", "temporal", "joint", "text")


@dataclass(frozen=True)
class SparsityOptions:
    by_class: dict[str, Any] = field(default_factory=dict)
    by_stage: dict[str, Any] = field(default_factory=dict)
    by_name: dict[str, Any] = field(default_factory=dict)
    attention_scores: float | None = None
    attention_scores_by_axis: dict[str, Any] = field(default_factory=dict)
    attention_scores_by_role: dict[str, Any] = field(default_factory=dict)
    attention_scores_by_length: Any = field(default_factory=dict)
    format: str = ""
    activation_format: str = ""
    mode: str = ""


# -- validation ---------------------------------------------------------------------------
def _check_value(key: str, value: Any, where: str) -> None:
    """One rule field, validated as `Sparsity` validates it."""
    try:
        Sparsity(**{key: value})
    except ValueError as exc:
        raise InputError(str(exc), where=where) from None


def _rule(value: Any, where: str) -> dict[str, Any]:
    """A validated rule as a mapping of fields (a bare ratio or density sets the weights)."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = {"weights": value}
    require(isinstance(value, Mapping) and bool(value), "expected an N:M ratio, a density or a mapping of fields", where)
    for key, v in value.items():
        if key not in RULE_FIELDS:
            raise unknown("sparsity field", key, RULE_FIELDS, where=where)
        _check_value(key, v, f"{where}.{key}")
    return dict(value)


def _check_class_rule(cls: str, rule: Mapping[str, Any], where: str) -> None:
    """A class rule names only fields that apply to the class."""
    for key in rule:
        if key in APPLIES and cls not in APPLIES[key]:
            raise InputError(
                f"'{key}' does not apply to {cls} ops (only to {', '.join(APPLIES[key])})", where=f"{where}.{key}"
            )
    if not any(cls in APPLIES[k] for k in DENSITY_FIELDS):
        raise InputError(f"sparsity of {cls} ops is not modeled (only of conv, linear and attention)", where=where)


def _densities(table: Mapping[str, Any], choices: tuple[str, ...], what: str, where: str) -> dict[str, float]:
    out = {}
    for key, value in table.items():
        if key not in choices:
            raise unknown(what, key, choices, where=where)
        out[key] = fraction(value, f"{where}.{key}", closed_low=False)
    return out


def _lengths(table: Any, where: str) -> list[tuple[int, float]]:
    """`attention_scores_by_length` as (threshold, density) pairs sorted by threshold."""
    require(isinstance(table, Mapping), "expected a mapping of key lengths to densities ({4096: 0.3})", where)
    out = []
    for key, value in table.items():
        ok = (isinstance(key, int) and not isinstance(key, bool)) or (isinstance(key, str) and key.isdigit())
        require(ok and 0 < int(key) <= 1 << 40, f"expected a positive key length, got {str(key)[:40]!r}", where)
        out.append((int(key), fraction(value, f"{where}.{key}", closed_low=False)))
    return sorted(out)


@dataclass(frozen=True)
class _Plan:
    """The validated options."""

    by_class: dict[str, dict[str, Any]]
    by_stage: dict[str, dict[str, Any]]
    by_name: dict[str, dict[str, Any]]
    scores: float | None
    scores_by_axis: dict[str, float]
    scores_by_role: dict[str, float]
    scores_by_length: list[tuple[int, float]]
    defaults: dict[str, str]


def _plan(graph: OpGraph, opts: SparsityOptions) -> _Plan:
    check_classes(opts.by_class, "sparsity.by_class")
    rules = {}
    for name in ("by_class", "by_stage", "by_name"):
        rules[name] = {k: _rule(v, f"sparsity.{name}.{k}") for k, v in getattr(opts, name).items()}
    for cls, rule in rules["by_class"].items():
        _check_class_rule(cls, rule, f"sparsity.by_class.{cls}")
    stages = {op.stage for op in graph.ops()}
    for stage in rules["by_stage"]:
        if stage not in stages:
            raise unknown("stage", stage, stages, where="sparsity.by_stage")
    scores = None
    if opts.attention_scores is not None:
        scores = fraction(opts.attention_scores, "sparsity.attention_scores", closed_low=False)
    defaults = {}
    for key, choices in (("format", FORMATS), ("activation_format", FORMATS), ("mode", MODES)):
        value = getattr(opts, key)
        if value:
            require(value in choices, f"unknown {key} '{value[:40]}'; expected one of: {', '.join(choices)}", f"sparsity.{key}")
            defaults[key] = value
    return _Plan(
        by_class=rules["by_class"],
        by_stage=rules["by_stage"],
        by_name=rules["by_name"],
        scores=scores,
        scores_by_axis=_densities(opts.attention_scores_by_axis, AXES, "attention axis", "sparsity.attention_scores_by_axis"),
        scores_by_role=_densities(opts.attention_scores_by_role, ROLES, "attention role", "sparsity.attention_scores_by_role"),
        scores_by_length=_lengths(opts.attention_scores_by_length, "sparsity.attention_scores_by_length"),
        defaults=defaults,
    )


# -- application --------------------------------------------------------------------------
def _applies(key: str, op: Op) -> bool:
    if key == "weights":
        return op.kind in WEIGHTED_KINDS
    return key not in APPLIES or op.op_class in APPLIES[key]


def _score_density(op: Op, plan: _Plan) -> float | None:
    """The attention-score density the score options give `op` (None: not set)."""
    if op.op_class != "attention":
        return None
    value = plan.scores
    value = plan.scores_by_axis.get(op.attrs.get("axis", ""), value)
    value = plan.scores_by_role.get(op.attrs.get("role", ""), value)
    for threshold, density in plan.scores_by_length:
        if op.attrs.get("lk", 0) >= threshold:
            value = density
    return value


def _fields(op: Op, plan: _Plan) -> dict[str, Any]:
    """The fields this pass sets on `op` (empty: the op is not selected)."""
    fields: dict[str, Any] = {}
    scores = _score_density(op, plan)
    if scores is not None:
        fields["scores"] = scores
    matched = [plan.by_class.get(op.op_class), plan.by_stage.get(op.stage)]
    matched += [rule for glob, rule in plan.by_name.items() if fnmatchcase(op.name, glob)]
    for rule in matched:
        fields.update({k: v for k, v in (rule or {}).items() if _applies(k, op)})
    return fields


def _annotated(op: Op, fields: dict[str, Any], plan: _Plan) -> Op:
    """`op` with its sparsity annotation updated by `fields` (removed when fully dense)."""
    old = sparsity_of(op)
    base = asdict(old) if old is not None else {}
    if "weights" in fields and "format" not in fields:
        base.pop("format", None)  # the default format follows the new weight pattern
    new = Sparsity(**{**base, **plan.defaults, **fields})
    if not new.is_dense:
        return op.annotate(**{SPARSITY: new})
    if old is None:
        return op
    return replace(op, annotations={k: v for k, v in op.annotations.items() if k != SPARSITY})


def sparsity(graph: OpGraph, opts: SparsityOptions) -> OpGraph:
    plan = _plan(graph, opts)
    changed = {}
    for op in graph.ops():
        fields = _fields(op, plan)
        if fields:
            new = _annotated(op, fields, plan)
            if new is not op:
                changed[op.name] = new
    return graph.with_ops(changed)


PASS = Pass("sparsity", SparsityOptions, sparsity, "weight (N:M or density), activation and attention-score sparsity, formats, skip/gate")
