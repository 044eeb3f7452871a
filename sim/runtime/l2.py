"""Producer -> consumer L2 reuse and kernel size, from the op graph in execution order.

A GPU's L2 holds what the last kernels touched: a pointwise kernel reading a tensor that a recent
kernel wrote (or read) finds it in L2 when the bytes touched since fit there (LRU reuse distance).
`reuse(op, graph)` gives, for `op`'s inputs produced inside the graph, their words and the largest
reuse distance (bytes touched by the ops run between the input's last use and `op`); the cost
model (`sim.cost.gpu`) compares that distance with the arch's L2 (`global_buffer.size_kb`), which
the runtime expansion does not see. Bytes per op: its inputs, output and parameters at the op's
storage width, an op-level estimate (a conv's layout transposes are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.ir import Op, OpGraph, numel

WORD_BYTES = 2  # fp16/bf16 storage of the validated models (the op-level byte estimate)


def op_bytes(op: Op) -> int:
    """Bytes an op's kernels touch once: inputs, output and parameters."""
    return WORD_BYTES * (sum(numel(s) for s in op.inputs) + numel(op.output) + op.params)


@dataclass(frozen=True)
class _Order:
    position: dict[str, int]
    touched: np.ndarray  # touched[i]: bytes of ops 0..i-1 (prefix sums)


def _order(graph: OpGraph) -> _Order:
    """Each op's position in execution order and the bytes touched before it (kept with the graph)."""
    return graph.memo(_Order, lambda: _build_order(graph))


def _build_order(graph: OpGraph) -> _Order:
    ops = graph.ops()
    touched = np.concatenate([[0], np.cumsum([op_bytes(op) for op in ops])]).astype(np.int64)
    return _Order({op.name: i for i, op in enumerate(ops)}, touched)


def reuse(op: Op, graph: OpGraph) -> tuple[int, int]:
    """(input words produced inside the graph, their largest reuse distance in bytes); (0, 0) if
    none. An input's last use is its producer or the latest of the producer's other consumers
    run before `op`."""
    order = _order(graph)
    here = order.position[op.name]
    words, distance = 0, 0
    for name in graph.graph.predecessors(op.name):
        last = order.position[name]
        for other in graph.graph.successors(name):
            pos = order.position[other]
            if last < pos < here:
                last = pos
        words += numel(graph[name].output)
        distance = max(distance, int(order.touched[here] - order.touched[last + 1]))
    return min(words, sum(numel(s) for s in op.inputs)), distance
