"""Where an eager LLaMA-2-7B decode step spends host time, with transformers' DynamicCache grown by one
token a step (as generation does) and cropped back after each step (the earlier harness):
torch.profiler CPU self time per op and CUDA runtime call (cudaMalloc, synchronizations), per step, and
the caching allocator's new segments per step; both variants twice, interleaved, in one process.

    python experiments/gpu/decode_host_profile.py --out DIR [--kv 512] [--steps 5]

Writes DIR/decode_host_ops.csv (variant, op, calls, self_cpu_us, cpu_total_us per step) and prints the
top ops. Random fp16 weights from the published config (workloads/zoo/llama.py); nothing downloaded.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--kv", type=int, default=512)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    import torch
    from forward_models import build_llama, parse_case

    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    model, cfg = build_llama(parse_case("llama2_7b_decode"), torch, args.device, dtype, args.smoke)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for variant in ("grown", "cropped", "grown", "cropped"):
        ids = torch.randint(0, cfg["vocab_size"], (1, args.kv), device=args.device)
        tok = torch.randint(0, cfg["vocab_size"], (1, 1), device=args.device)
        with torch.no_grad():
            cache = model(input_ids=ids, use_cache=True).past_key_values

            def step():
                out = model(input_ids=tok, past_key_values=cache, use_cache=True).logits
                if variant == "cropped":
                    cache.crop(-1)
                return out

            for _ in range(3):
                step()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            acts = [torch.profiler.ProfilerActivity.CPU]
            if args.device.startswith("cuda"):  # CUDA runtime calls (cudaMalloc, synchronizations) as CPU time
                acts.append(torch.profiler.ProfilerActivity.CUDA)
                mem0 = torch.cuda.memory_stats()
            with torch.profiler.profile(activities=acts) as prof:
                for _ in range(args.steps):
                    step()
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
            wall = (time.perf_counter() - t) / args.steps * 1e3
            if args.device.startswith("cuda"):
                mem1 = torch.cuda.memory_stats()
                seg = (mem1["segment.all.allocated"] - mem0["segment.all.allocated"]) / args.steps
                print(
                    f"  {variant}: cudaMalloc'd segments per step {seg:.1f}, "
                    f"reserved {mem1['reserved_bytes.all.current'] / 2**30:.1f} GiB"
                )
        table = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        print(f"== {variant}: {wall:.1f} ms per profiled step")
        for e in table[:12]:
            print(
                f"  {e.key[:60]:60s} calls {e.count / args.steps:7.1f}  self {e.self_cpu_time_total / args.steps / 1e3:8.2f} ms"
            )
        for e in table:
            rows.append({"variant": variant, "op": e.key, "calls": e.count / args.steps,
                         "self_cpu_us": e.self_cpu_time_total / args.steps, "cpu_total_us": e.cpu_time_total / args.steps,
                         "step_ms": wall})  # fmt: skip
    with open(os.path.join(args.out, "decode_host_ops.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
