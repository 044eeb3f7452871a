"""Regenerate tests/data/dense_snapshot.json: dense results of every zoo model x preset x attention.

    python tests/make_snapshot.py

The snapshot pins cycles, compute/stall cycles, DRAM bytes and MACs so that refactors of the
core can prove they change no number (tests/test_snapshot.py). Rewrite it only for an
intentional model change, and name that change in the commit and the README.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PRESETS = ("os128", "tpu_v1", "edge")
ATTENTION = ("fused", "unfused")
FIELDS = ("cycles", "compute_cycles", "stall_cycles", "dram_bytes", "macs")
PATH = Path(__file__).parent / "data" / "dense_snapshot.json"


def models() -> list[str]:
    from workloads.registry import registry

    return [name for name in registry() if name != "scalesim_topology"]


def snapshot_row(model: str, preset: str, attention: str) -> dict[str, float]:
    import sim
    import workloads

    summary = sim.simulate(workloads.build(model), sim.load_arch(preset), attention=attention).summary()
    return {f: summary[f] for f in FIELDS}


def main() -> int:
    data = {
        f"{m}|{p}|{a}": snapshot_row(m, p, a) for m in models() for p in PRESETS for a in ATTENTION
    }
    PATH.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(data)} rows to {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
