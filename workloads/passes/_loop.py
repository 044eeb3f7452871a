"""Shared machinery of the step-plan transforms: the denoising loop and graph editing.

The loop stage is the stage whose ops run more than once (`Op.repeat > 1` or an explicit step
set), or, when several stages loop, the one named `unet` or `transformer`; a pipeline with
several denoising loops (a cascade) names one with a pass's `stage` option. The
loop's steps are the union of its ops' step indices. `GraphEdit` rebuilds a graph with ops
replaced, inserted next to an anchor, re-wired or dropped; insertion order is kept, so the
topological order (and the trace) stays the natural one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import networkx as nx

from ..errors import InputError, unknown
from ..ir import Op, OpGraph, numel

# Stage names of the denoiser in the zoo's pipelines: the default loop when others loop too
# (CogVideoX's chunked VAE decoder).
DENOISER_STAGES = ("unet", "transformer")


def is_looped(op: Op) -> bool:
    """Whether `op` runs in loop steps (rather than once)."""
    return op.steps is not None or op.repeat > 1


def loop_stage(graph: OpGraph, stage: str, where: str) -> str:
    """The loop stage of `graph`: `stage` when given, else the only stage with looped ops."""
    looped = list(dict.fromkeys(op.stage for op in graph.ops() if is_looped(op)))
    if stage:
        if stage not in looped:
            raise unknown("loop stage", stage, looped, where=f"{where}.stage")
        return stage
    denoisers = [s for s in looped if s in DENOISER_STAGES]
    if len(looped) > 1 and len(denoisers) == 1:
        return denoisers[0]
    if len(looped) != 1:
        found = ", ".join(looped) or "none"
        raise InputError(f"expected one denoising loop, found {found}: set `stage`", where=where)
    return looped[0]


def loop_ops(graph: OpGraph, stage: str) -> list[Op]:
    """The looped ops of `stage`, in topological order."""
    return [op for op in graph.ops() if op.stage == stage and is_looped(op)]


def loop_steps(graph: OpGraph, stage: str) -> tuple[int, ...]:
    """The loop steps of `stage` in order (the union of its ops' step indices)."""
    return tuple(sorted({s for op in loop_ops(graph, stage) for s in op.step_indices}))


def loop_sinks(graph: OpGraph, stage: str) -> list[Op]:
    """Looped ops of `stage` that no other looped op of the stage consumes (the step's outputs)."""
    names = {op.name for op in loop_ops(graph, stage)}
    return [graph[n] for n in names_in_order(graph, names) if not names & set(graph.graph.successors(n))]


def latent_shape(graph: OpGraph, stage: str) -> tuple[int, ...]:
    """Shape of the latents the loop carries from step to step: the last step output's."""
    return loop_sinks(graph, stage)[-1].output


def names_in_order(graph: OpGraph, names: Iterable[str]) -> list[str]:
    """`names` in the graph's topological order."""
    chosen = set(names)
    return [op.name for op in graph.ops() if op.name in chosen]


def tensor_bytes(op: Op, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of `shape` in `op`'s activation dtype."""
    return numel(shape) * op.word_bytes


class GraphEdit:
    """An editable copy of a graph: ops by name in insertion order, and their dependencies."""

    def __init__(self, graph: OpGraph) -> None:
        self.name = graph.name
        self.order: list[str] = [op.name for op in graph.ops()]
        self.ops: dict[str, Op] = {op.name: op for op in graph.ops()}
        self.deps: dict[str, list[str]] = {n: list(graph.graph.predecessors(n)) for n in self.order}

    def replace(self, op: Op) -> None:
        """Replace the op of the same name."""
        self.ops[op.name] = op

    def insert(self, op: Op, deps: Iterable[str], *, after: str = "", before: str = "") -> None:
        """Add `op` (depending on `deps`) right after `after` (or right before `before`) in
        insertion order."""
        if op.name in self.ops:
            raise ValueError(f"duplicate op name {op.name!r}")
        at = self.order.index(after) + 1 if after else self.order.index(before)
        self.order.insert(at, op.name)
        self.ops[op.name] = op
        self.deps[op.name] = list(dict.fromkeys(deps))

    def rewire(self, consumer: str, old: str, new: str) -> None:
        """`consumer` reads from `new` instead of `old`."""
        deps = self.deps[consumer]
        deps[deps.index(old)] = new
        self.deps[consumer] = list(dict.fromkeys(deps))

    def add_dep(self, consumer: str, dep: str) -> None:
        if dep not in self.deps[consumer]:
            self.deps[consumer].append(dep)

    def drop(self, name: str) -> None:
        """Remove an op; its consumers inherit its dependencies."""
        deps = self.deps.pop(name)
        del self.ops[name]
        self.order.remove(name)
        for consumer, cdeps in self.deps.items():
            if name in cdeps:
                i = cdeps.index(name)
                self.deps[consumer] = list(dict.fromkeys(cdeps[:i] + deps + cdeps[i + 1 :]))

    def build(self) -> OpGraph:
        g = nx.DiGraph()
        for name in self.order:
            g.add_node(name, op=self.ops[name])
        for name in self.order:
            g.add_edges_from((dep, name) for dep in self.deps[name])
        return OpGraph(self.name, g)


def restrict_steps(graph: OpGraph, stage: str, steps: Mapping[str, Iterable[int]] | Iterable[int]) -> OpGraph:
    """`graph` with each looped op of `stage` running only in its steps that are in `steps`
    (one set for all ops, or a set per op name; ops absent from the mapping keep theirs).

    An op left with no step is removed, its consumers inheriting its dependencies.
    """
    per_op = steps if isinstance(steps, Mapping) else None
    common = None if per_op is not None else set(steps)
    edit = GraphEdit(graph)
    for op in loop_ops(graph, stage):
        keep = common if per_op is None else (set(per_op[op.name]) if op.name in per_op else None)
        if keep is None:
            continue
        new = [s for s in op.step_indices if s in keep]
        if not new:
            edit.drop(op.name)
        elif tuple(new) != op.step_indices:
            edit.replace(op.in_steps(new))
    return edit.build()


def variant(op: Op, name: str, **changes) -> Op:
    """A copy of `op` under a new name (a per-step variant or an added op)."""
    return replace(op, name=name, **changes)
