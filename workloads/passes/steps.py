"""`steps`: run the denoising loop for a different number of steps.

    {name: steps, steps: 20}            # a 20-step solver (DPM-Solver++, UniPC) instead of 50
    {name: steps, steps: 4}             # a 4-step consistency / distilled model

The trivial baseline of every step-level approximation: each step costs what it did, the loop
runs `steps` of them (steps 0..steps-1). Ops of the loop that ran in every step run in every
new step; ops a transform applied earlier restricted to some steps keep those below `steps`
(apply `steps` first). Quality (a few-step solver or a distilled model) is not modeled.
`stage` names the loop of a pipeline with several (default: the only loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.arch.schema import doc

from ..ir import OpGraph
from . import Pass
from ._loop import GraphEdit, loop_ops, loop_stage


@dataclass(frozen=True)
class StepsOptions:
    steps: int = field(metadata=doc("denoising steps the loop runs", "steps", min=1, max=100_000))
    stage: str = field(default="", metadata=doc("the loop stage (default: the pipeline's only loop)"))


def steps(graph: OpGraph, opts: StepsOptions) -> OpGraph:
    stage = loop_stage(graph, opts.stage, "steps")
    edit = GraphEdit(graph)
    for op in loop_ops(graph, stage):
        if op.steps is None:
            if op.repeat != opts.steps:
                edit.replace(op.in_steps(range(opts.steps)))
            continue
        kept = [s for s in op.steps if s < opts.steps]
        if not kept:
            edit.drop(op.name)
        elif len(kept) != len(op.steps):
            edit.replace(op.in_steps(kept))
    return edit.build()


PASS = Pass("steps", StepsOptions, steps, "run the denoising loop for a given number of steps")
