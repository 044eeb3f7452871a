"""The `h200` fused-attention model against kernels profiled inside graph-replay chains.

    python experiments/gpu/eval_sdpa.py [--csv arch_configs/calibration/h200/sdpa/sdpa.csv]

`sdpa/sdpa.csv` (family `sdpa`) times cuDNN and FlashAttention-2 SDPA kernels with the profiler
(12 dependent calls per chain) over sequence 64-4096, head dim 64-128 and batch x heads 16-4096.
cuDNN's constants are derived from these rows (`derive_attention.py`; `sdpa/run2/` repeats them and adds
long sequences, held out), FlashAttention-2's from the event-timed `attention.csv`. Prints, per backend,
the model's error per shape and its median / 90th-percentile |error|.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from derive_constants import _model_us  # noqa: E402

CSV = HERE.parents[1] / "arch_configs" / "calibration" / "h200" / "sdpa" / "sdpa.csv"
CALLS = 12  # SDPA calls per chain
BACKENDS = {"cudnn": 0, "flash": 1}  # sdpa.csv op -> offset from GK_ATTENTION


def evaluate(path: Path = CSV) -> pd.DataFrame:
    """One row per (backend, shape): measured kernel time per call (us, cuDNN's memset included), model."""
    from sim.cost.gpu import GK_ATTENTION
    from sim.runtime.expand import _pad

    s = pd.read_csv(path, dtype={"shape": str})
    g = s[s.op.isin(list(BACKENDS))].copy()
    shape = g["shape"].str.split("x", expand=True).astype(int)
    g["seq"], g["head_dim"], g["bh"] = shape[0], shape[1], shape[2]
    g["measured_us"] = g.kernel_us / CALLS
    parts = []
    for op, offset in BACKENDS.items():
        r = g[g.op == op].copy()
        gk = GK_ATTENTION + offset
        kernels = {"m": r.seq.to_numpy(), "n": r.seq.to_numpy(), "count": r.bh.to_numpy(),
                   "k": np.array([_pad(int(d), gk) for d in r.head_dim])}  # fmt: skip
        r["model_us"] = _model_us(kernels, gk)
        parts.append(r)
    out = pd.concat(parts)
    out["error_pct"] = 100 * (out.model_us / out.measured_us - 1)
    return out[["op", "seq", "head_dim", "bh", "measured_us", "model_us", "error_pct"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=CSV)
    args = p.parse_args(argv)
    t = evaluate(args.csv)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for op, r in t.groupby("op"):
        e = r.error_pct.abs()
        print(f"{op}: {len(r)} shapes, median |error| {e.median():.1f}%, 90th percentile {e.quantile(0.9):.1f}%, "
              f"largest {e.max():.1f}%")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
