"""The README model table: every registered model with its parameters and FLOPs.

    python experiments/model_table.py > experiments/results/models.md

Params are ours (each op counted once); FLOPs are GEMM FLOPs (2 x MACs) of one invocation at
the default options: per denoiser pass for components, whole pipeline (all steps) otherwise.
The reference column names what the count was checked against (see tests/test_torch_*.py for
exact checks and tests/test_zoo_*.py for paper-size checks).
"""

from __future__ import annotations

import workloads
from workloads.registry import registry


def _si(x: float) -> str:
    for scale, unit in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def main() -> None:
    print("| model | family | kind | params | GEMM FLOPs | default options | reference |")
    print("|---|---|---|---|---|---|---|")
    for name, spec in registry().items():
        if spec.family == "imported":
            continue
        graph = workloads.build(name)
        opts = ", ".join(f"{k}={v}" for k, v in spec.options.items() if k not in ("config", "batch") and v != "")
        kind = "component (one pass)" if spec.component else "pipeline"
        print(f"| `{name}` | {spec.family} | {kind} | {graph.total_params():,} | {_si(graph.total_flops())} | {opts} | {spec.reference} |")


if __name__ == "__main__":
    main()
