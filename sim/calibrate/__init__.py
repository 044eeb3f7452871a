"""GPU calibration microbenchmarks: measure a real GPU so the simulator's presets can be set from
measurements rather than datasheets.

    python -m sim.calibrate --out DIR [--budget-s 480] [--families gemm,conv,...] [--quick]

Families (each writes a tidy CSV into DIR; a failing benchmark is logged and skipped):

  host       eager dispatch cost per kernel, CUDA-graph replay gap per kernel, bare launch  host.csv
  gemm       F.linear / torch.matmul shape sweep + the 8192^3 peak                           gemm.csv
  groupnorm  F.group_norm, with its stats / params / apply kernel split                      groupnorm.csv, groupnorm_kernels.csv
  memory     d2d copy peak, elementwise, bias add, permutes, cat, upsample, LayerNorm, softmax  memory.csv
  conv       SD-UNet conv2d layers, NCHW vs channels_last, cuDNN transpose kernels split out  conv.csv, conv_kernels.csv
  attention  SDPA per backend (flash/efficient/cudnn/math/default) and unfused baddbmm path   attention.csv
  scaling    size-dependent rates: softmax by row length, batched GEMMs of unfused attention,  scaling.csv
             small-M GEMMs, head split/merge copies, narrow LayerNorm, graph gap, sustained GEMM
  regimes    cold-L2 weights (linear chains), temporal conv3d, strided pointwise (GEGLU      regimes.csv
             chunks, permuted 5-D adds), sustained fused attention and elementwise
  chains     small dependent kernels replayed from a CUDA graph (elementwise/broadcast by      chains.csv
             size, LayerNorm by rows, linears with bias over cold weights alone and between
             a LayerNorm and a residual add, tiny gathers): time per kernel in context
  reuse      L2 reuse of pointwise chains (operands warm, one cold, both cold, evicted between  reuse.csv
             steps), tiny kernels of fresh inputs, patchify convs (kernel = stride)
  unfused    diffusers' unfused attention steps (head copies, baddbmm, softmax, bmm) chained in a   unfused.csv
             CUDA graph and eagerly: per-kernel graph-vs-eager time and gaps
  dispatch   kernel choices by alignment and dtype: softmax over unaligned rows and in fp32,    dispatch.csv
             fp32 GEMMs with tf32 off (upcast attention), fp16<->fp32 casts, KV-cache cat of a
             contiguous vs a cropped cache
  switch     graph-replay gaps when consecutive kernels are different functions (pointwise    switch.csv
             chains cycling through 1-8 kernels by size), and around cuDNN SDPA's memset node
  sdpa       cuDNN and FlashAttention-2 SDPA kernels timed by the profiler in graph-replay    sdpa.csv
             chains over sequence length, head dim and batch x heads

then `calibration.yaml`, the derived constants with the rows each comes from, and `log.txt`.
Needs PyTorch with CUDA: without either it prints one line and exits 2. `--device cpu` runs the
harness on the CPU with tiny sizes (`--quick`) for testing only; its numbers mean nothing.
Nothing here imports torch until `main` runs.
"""

from __future__ import annotations

import argparse
import os
import sys

FAMILIES = ("host", "gemm", "groupnorm", "memory", "conv", "attention", "scaling", "regimes", "chains", "reuse", "unfused", "dispatch",
            "switch", "sdpa")
# Share of the remaining budget each family may use when it starts (in FAMILIES order).
SHARES = {"host": 0.06, "gemm": 0.16, "groupnorm": 0.12, "memory": 0.3, "conv": 0.45, "attention": 0.75, "scaling": 0.8,
          "regimes": 0.9, "chains": 0.95, "reuse": 0.97, "unfused": 0.98, "dispatch": 0.99,
          "switch": 0.99, "sdpa": 1.0}

__all__ = ["FAMILIES", "main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--budget-s", type=float, default=480.0, help="stop starting new benchmarks after this many seconds")
    p.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated subset of {','.join(FAMILIES)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test of the harness)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (harness test only: implies --quick)")
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    p.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="torch.backends.cudnn.benchmark = True (autotuned conv algorithms; default off, as in eager)",
    )
    p.add_argument(
        "--summarize-only",
        action="store_true",
        help="re-derive calibration.yaml from the CSVs already in --out (no measurement, no GPU)",
    )
    return p


def _resummarize(out: str, argv: list[str]) -> int:
    """calibration.yaml again from DIR's CSVs; the device header and command come from the old file."""
    import yaml

    from . import summary

    path = os.path.join(out, "calibration.yaml")
    info: dict = {}
    command = None
    if os.path.exists(path):
        with open(path) as f:
            info = dict((yaml.safe_load(f) or {}).get("device") or {})
        command = info.pop("command", None)
    skipped = []
    log = os.path.join(out, "log.txt")
    if os.path.exists(log):
        with open(log) as f:
            skipped = [line.split("FAILED ", 1)[1].strip() for line in f if "FAILED " in line]
    rows = summary.load_rows(out)
    if not rows:
        print(f"sim.calibrate: no CSVs in {out}", file=sys.stderr)
        return 2
    old = (command or "python -m sim.calibrate").replace("python -m sim.calibrate", "").split()
    summary.write(out, info, rows, skipped, old)
    print(f"re-derived {path} from {', '.join(sorted(rows))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.summarize_only:
        return _resummarize(args.out, list(argv if argv is not None else sys.argv[1:]))
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        print(f"sim.calibrate: unknown family {unknown[0]!r} (choose from {', '.join(FAMILIES)})", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("sim.calibrate: PyTorch is not installed (pip install torch with CUDA)", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("sim.calibrate: no CUDA device visible to PyTorch (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    if args.device == "cpu":
        args.quick = True

    from . import _bench, summary

    ctx = _bench.Context(torch, args.device, getattr(torch, args.dtype), args.out, args.budget_s, args.quick)
    info = _bench.device_info(torch, args.device)
    info["dtype"] = args.dtype
    info["cudnn_benchmark"] = bool(args.cudnn_benchmark)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    ctx.log(
        f"sim.calibrate on {info.get('device')} (driver {info.get('driver')}, torch {info.get('torch')}), "
        f"families {','.join(families)}, budget {args.budget_s:.0f} s{' [quick]' if args.quick else ''}"
    )
    if ctx.cuda:  # ~1 s of large GEMMs so the clocks are up before the first measurement
        import time

        a = torch.randn(4096, 4096, device=args.device, dtype=ctx.dtype)
        t = time.monotonic()
        while time.monotonic() - t < 1.0:
            for _ in range(20):
                a @ a
            torch.cuda.synchronize()
        del a
    from ..results.progress import progress_bar

    chosen = [fam for fam in FAMILIES if fam in families]
    with progress_bar(len(chosen), "families", "calibrate") as bar:  # drawn on a terminal only
        for fam in chosen:
            ctx.begin_family(fam, SHARES[fam])
            try:
                if fam == "groupnorm":
                    from .memory import run_groupnorm as run
                else:
                    run = __import__(f"{__name__}.{fam}", fromlist=["run"]).run
                run(ctx)
            except Exception as exc:  # a family that breaks outside its own guards
                ctx.error(f"family {fam}", exc)
            bar.update(1)
    ctx.family_deadline = ctx.deadline
    path = summary.write(args.out, info, ctx.rows, ctx.skipped, list(argv if argv is not None else sys.argv[1:]))
    ctx.log(
        f"wrote {path} and {', '.join(sorted(f + '.csv' for f in ctx.rows))} to {os.path.abspath(args.out)}"
        f" ({len(ctx.skipped)} skipped/failed)"
    )
    ctx.close()
    return 0
