"""`approx_nonlinear`: run non-linear vector work on the approximate datapath.

    {name: approx_nonlinear, softmax: lut, activation: piecewise, norm: single_pass}

- `softmax: lut` -- softmax ops and the softmax inside attention use a lookup-table exp;
- `activation: piecewise` -- GELU/SiLU/... as piecewise-linear functions;
- `norm: single_pass` -- norms compute their statistics while streaming and do not re-read
  the input (e.g. statistics carried over from the previous denoising step), so a norm that does
  not fit on chip makes one DRAM pass instead of `vector.norm_passes`.

The hardware side (cycles per element of the approximate datapath, and so its energy) is the
arch's `vector.approx_cycles_per_element`. Ops are annotated `approx=<kind>`; `by_name` globs
restrict the pass to some ops. The simulator models cost, not the accuracy these approximations
may lose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir import OpGraph, OpKind
from . import Pass
from ._select import matches, require

KINDS = {
    "softmax": ("exact", "lut"),
    "activation": ("exact", "piecewise"),
    "norm": ("exact", "single_pass"),
}
TARGETS = {
    OpKind.SOFTMAX: "softmax",
    OpKind.ATTENTION: "softmax",
    OpKind.ACTIVATION: "activation",
    OpKind.GROUP_NORM: "norm",
    OpKind.LAYER_NORM: "norm",
}


@dataclass(frozen=True)
class ApproxOptions:
    softmax: str = "exact"
    activation: str = "exact"
    norm: str = "exact"
    by_name: Any = field(default_factory=list)  # op-name globs; empty: every op


def approx_nonlinear(graph: OpGraph, opts: ApproxOptions) -> OpGraph:
    for key, choices in KINDS.items():
        value = getattr(opts, key)
        require(value in choices, f"unknown {key} variant {str(value)[:40]!r}; expected one of {', '.join(choices)}",
                f"approx_nonlinear.{key}")
    require(isinstance(opts.by_name, list) and all(isinstance(g, str) for g in opts.by_name),
            "expected a list of op-name globs", "approx_nonlinear.by_name")
    changed = {}
    for op in graph.ops():
        target = TARGETS.get(op.kind)
        if target is None or getattr(opts, target) == "exact":
            continue
        if opts.by_name and not matches(op, globs=opts.by_name):
            continue
        changed[op.name] = op.annotate(approx=getattr(opts, target))
    return graph.with_ops(changed)


PASS = Pass("approx_nonlinear", ApproxOptions, approx_nonlinear, "LUT exp, piecewise activations, single-pass norms")
