"""`fuse_elementwise`: fold an activation/elementwise op into the GEMM producing its input.

A GEMM (conv, linear, matmul) whose output feeds only one activation or elementwise op no
larger than it (bias add, SiLU, GEGLU gate) writes that op's result instead of its own: one
kernel launch and one DRAM round trip less. The consumer is annotated `epilogue_of=<producer>`
and the producer `epilogue=True`; the lowering reads these annotations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import OpGraph, OpKind, numel
from . import Pass

HOSTS = frozenset({OpKind.CONV1D, OpKind.CONV2D, OpKind.CONV3D, OpKind.LINEAR, OpKind.MATMUL})
EPILOGUES = frozenset({OpKind.ACTIVATION, OpKind.ELEMENTWISE})


@dataclass(frozen=True)
class FuseOptions:
    pass


def epilogues(graph: OpGraph) -> dict[str, str]:
    """Fusable consumer -> producer pairs of `graph`."""
    fused = {}
    g = graph.graph
    for op in graph.ops():
        if op.kind not in EPILOGUES:
            continue
        for name in g.predecessors(op.name):
            producer = graph[name]
            sole_consumer = g.out_degree(name) == 1
            if producer.kind in HOSTS and sole_consumer and numel(op.output) <= numel(producer.output):
                fused[op.name] = name
                break
    return fused


def fuse_elementwise(graph: OpGraph, _opts: FuseOptions) -> OpGraph:
    changed = {}
    for consumer, producer in epilogues(graph).items():
        changed[consumer] = graph[consumer].annotate(epilogue_of=producer)
        changed[producer] = graph[producer].annotate(epilogue=True)
    return graph.with_ops(changed)


PASS = Pass("fuse_elementwise", FuseOptions, fuse_elementwise, "fold activations/elementwise ops into the producing GEMM")
