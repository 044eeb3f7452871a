"""`precision`: set the dtypes of ops by op class or op-name glob.

    {name: precision, by_class: {linear: fp8, conv: int8}}             # weights and activations
    {name: precision, by_class: {linear: {weights: int8}}}              # weight-only quantization
    {name: precision, by_class: {attention: {scores: fp32}}}            # SD 2.1's upcast_attention
    {name: precision, by_name: {"unet.up_blocks.*": fp16}, default: fp16}

A dtype string sets an op's inputs, weights and outputs (its activations and weights); a
mapping sets only the named fields: `inputs`, `weights`, `outputs`, `activations` (= inputs and
outputs), `accum`, `scores` (attention's materialized score matrix). Name globs override the
class rule; `default` applies to every other op. Ops no rule selects keep running at the
hardware's native operand type (the arch's `word_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..ir import COMPUTE_DTYPES, DTYPE_BITS, OpGraph, Precision
from . import Pass
from ._select import check_classes, require, rule_for

FIELDS = ("inputs", "weights", "outputs", "activations", "accum", "scores")


@dataclass(frozen=True)
class PrecisionOptions:
    by_class: dict[str, Any] = field(default_factory=dict)
    by_name: dict[str, Any] = field(default_factory=dict)
    default: str = ""


def _check_rule(rule: Any, where: str) -> None:
    if isinstance(rule, str):
        require(rule in COMPUTE_DTYPES, f"unknown dtype '{rule[:40]}'; expected one of {', '.join(COMPUTE_DTYPES)}", where)
        return
    require(isinstance(rule, dict) and rule, "expected a dtype or a mapping of fields to dtypes", where)
    for key, dtype in rule.items():
        require(key in FIELDS, f"unknown field '{str(key)[:40]}'; expected one of {', '.join(FIELDS)}", where)
        allowed = DTYPE_BITS if key == "accum" else COMPUTE_DTYPES
        require(dtype in allowed, f"unknown dtype {str(dtype)[:40]!r}; expected one of {', '.join(allowed)}", f"{where}.{key}")


def _apply(base: Precision, rule: str | dict[str, str]) -> Precision:
    if isinstance(rule, str):
        return replace(base, inputs=rule, weights=rule, outputs=rule)
    fields = dict(rule)
    act = fields.pop("activations", None)
    if act:
        fields = {"inputs": act, "outputs": act, **fields}
    return replace(base, **fields)


def precision(graph: OpGraph, opts: PrecisionOptions) -> OpGraph:
    check_classes(opts.by_class, "precision.by_class")
    for name, rules in (("by_class", opts.by_class), ("by_name", opts.by_name)):
        for key, rule in rules.items():
            _check_rule(rule, f"precision.{name}.{key}")
    if opts.default:
        _check_rule(opts.default, "precision.default")
    changed = {}
    for op in graph.ops():
        rule = rule_for(op, opts.by_class, opts.by_name, opts.default or None)
        if rule is not None:
            changed[op.name] = replace(op, precision=_apply(op.dtypes, rule))
    return graph.with_ops(changed)


PASS = Pass("precision", PrecisionOptions, precision, "dtypes of inputs, weights, outputs, accumulation per op class / name glob")
