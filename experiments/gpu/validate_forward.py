"""End-to-end forward passes on a real GPU, for validating ttvsim against measurements.

diffusers / transformers classes built from the published configs (the zoo's: workloads/zoo/*.py
cite their sources; experiments/gpu/forward_models.py) with random fp16 weights -- nothing is
downloaded. Default cases (other sizes: `--models sd15_unet@768px_b1,modelscope_unet@f24,...`;
also sd21_unet 768^2, sdxl_unet 1024^2 and latte 16x512^2, batch 2):

  sd15_unet        UNet2DConditionModel, 512^2 (latents 64^2), batch 2, CLIP context 77x768
  sd15_vae_decoder AutoencoderKL.decode (post_quant_conv + decoder), latents 64^2 -> 512^2, batch 1
  dit_xl2          DiTTransformer2DModel, 256^2 (latents 32^2), batch 2, class labels
  pixart_alpha     PixArtTransformer2DModel, 1024^2 (latents 128^2), batch 2, T5 context 120x4096
  modelscope_unet  UNet3DConditionModel, 16 frames x 256^2 (latents 32^2), batch 2, context 77x1024
  cogvideox_2b     CogVideoXTransformer3DModel, 49 frames 480x720 (latents 13x60x90), batch 2
                   (batch 1 where batch 2 runs out of memory), T5 context 226x4096
  llama2_7b_decode LlamaForCausalLM, one eager decode step, batch 1, KV cache of 512 tokens

For each diffusion model and each attention path -- `fused` (the model's default processor:
F.scaled_dot_product_attention) and `unfused` (diffusers' classic `AttnProcessor`:
baddbmm -> softmax -> bmm; CogVideoX, whose processor has no classic twin, gets its own
processor with SDPA replaced by that same baddbmm/softmax/bmm sequence):
  (a) eager time: CUDA events around one forward, median of 3..10 after warm-up (+ wall clock);
  (b) CUDA-graph replay time: the forward captured in torch.cuda.CUDAGraph, median of >= 10 replays;
  (c) one eager forward under torch.profiler: every GPU kernel with the aten op that launched it
      (innermost and outermost), classified into op classes twice -- by kernel name and by aten op.
LLaMA: the eager decode step's wall time and its GPU busy fraction (kernel time / wall time).
Under the profiler every diffusers Attention module runs in a `scope:temporal` / `scope:spatial`
range (temporal: inside UNet3D's TransformerTemporalModel or Latte's temporal blocks), written as
the `scope` column of forward_kernels.csv (the temporal-attention share as frames grow).

Outputs (written as they are measured): forward_times.csv (model, attention, mode, time_ms,
kernels, ...), forward_op_classes.csv (model, attention, basis, op_class, kernel_time_ms, share),
forward_kernels.csv (per kernel name x launching op: launches, total time), log.txt.
Each model runs inside try/except; memory is freed between models; --budget-s stops cleanly.

    python experiments/gpu/validate_forward.py --out DIR [--budget-s 500] [--models a,b] [--smoke]

`--smoke` builds shrunken configs at tiny sizes (a test of the script, minutes -> seconds);
`--device cpu` runs it without a GPU (no graphs; numbers mean nothing).
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_models import MODELS, Case, build, build_llama, parse_case, patched_sdpa, set_attention, sized
from forward_profile import (
    GRAPH_KERNEL_COLUMNS,
    TIMELINE_COLUMNS,
    TIMES_COLUMNS,
    _fmt,
    attention_scopes,
    profile_forward,
    profile_graph,
    reclassify,
    record_profile,
    replay_variants,
    timeline_rows,
)


# -- harness -------------------------------------------------------------------------------------------
class Run:
    def __init__(self, torch: Any, out: str, device: str, budget_s: float):
        self.torch, self.out, self.device = torch, out, device
        self.cuda = device.startswith("cuda")
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget_s
        os.makedirs(out, exist_ok=True)
        self._log = open(os.path.join(out, "log.txt"), "a", buffering=1)
        self._files: dict[str, tuple[Any, Any]] = {}
        self.failures: list[str] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")

    def fail(self, what: str, exc: BaseException) -> None:
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        self.log(f"FAILED {what}: {type(exc).__name__}: {first}")
        self._log.write(traceback.format_exc() + "\n")
        self.failures.append(f"{what}: {type(exc).__name__}: {first}")

    def write(self, name: str, columns: list[str], row: dict[str, Any]) -> None:
        if name not in self._files:
            path = os.path.join(self.out, f"{name}.csv")
            fresh = not os.path.exists(path) or os.path.getsize(path) == 0
            f = open(path, "a", newline="", buffering=1)  # appended to by each --isolate child
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if fresh:
                w.writeheader()
            self._files[name] = (f, w)
        f, w = self._files[name]
        w.writerow({k: _fmt(row.get(k)) for k in columns})
        f.flush()

    def time_row(self, model: str, attention: str, mode: str, time_ms: float, note: str, **extra: Any) -> None:
        """One forward_times.csv row (`extra`: kernels, batch, reps, spread_ms)."""
        self.write("forward_times", TIMES_COLUMNS, {"model": model, "attention": attention, "mode": mode,
                                                    "time_ms": time_ms, "note": note, **extra})  # fmt: skip

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._log.close()


def time_eager(run: Run, fwd: Callable[[], Any], reps: int) -> tuple[list[float], list[float]]:
    """CUDA-event and wall-clock times (ms) of `reps` eager forwards, each from an idle GPU."""
    torch = run.torch
    ev, wall = [], []
    for _ in range(reps):
        run.sync()
        if run.cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
        t = time.perf_counter()
        fwd()
        if run.cuda:
            e.record()
        run.sync()
        wall.append((time.perf_counter() - t) * 1e3)
        ev.append(s.elapsed_time(e) if run.cuda else wall[-1])
    return ev, wall


def time_graph(run: Run, fwd: Callable[[], Any], reps: int, after: Callable[[Any], None] | None = None) -> list[float]:
    """Capture `fwd` in a CUDA graph; CUDA-event time (ms) of each of `reps` replays; then
    `after(graph)` (e.g. profiled replays) before the graph is freed."""
    torch = run.torch
    run.free()  # the eager runs' cached blocks would otherwise sit beside the side stream's and the graph's pools
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fwd()
    torch.cuda.current_stream().wait_stream(s)
    run.free()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fwd()
    g.replay()
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    if after is not None:
        after(g)
    del g
    return times


CHANNELS_LAST = False  # --channels-last: 4-D weights and inputs in NHWC (conv models only)


def run_diffusion(run: Run, case: Case, args: argparse.Namespace) -> None:
    torch = run.torch
    name = case.name
    dtype = torch.float16 if run.cuda else torch.float32
    for attention in [a.strip() for a in args.attentions.split(",") if a.strip()]:
        label = case.label + ("+channels_last" if CHANNELS_LAST else "")
        if run.left() < 20:
            run.log(f"{label} [{attention}]: skipped, out of time budget")
            run.failures.append(f"{label} [{attention}]: out of time budget")
            continue
        model = fwd = None
        for attempt in range(2):
            try:
                t_build = time.perf_counter()
                model, fwd_raw, note = build(case, torch, run.device, dtype, args.smoke, CHANNELS_LAST)
                b = sized(case, args.smoke).batch
                patch, pnote = set_attention(model, name, attention)
                if patch == "patch":

                    def fwd(f=fwd_raw):
                        with torch.no_grad(), patched_sdpa(torch):
                            return f()
                else:

                    def fwd(f=fwd_raw):
                        with torch.no_grad():
                            return f()

                run.log(
                    f"{label} [{attention}] built in {time.perf_counter() - t_build:.1f} s, batch {b}, {note}; {pnote}"
                )
                # warm-up (also finds out-of-memory before timing)
                t = time.perf_counter()
                fwd()
                run.sync()
                first = (time.perf_counter() - t) * 1e3
                break
            except Exception as exc:
                oom = "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
                run.fail(f"{label} [{attention}] build/warm-up (batch {case.batch})", exc)
                model = fwd = None
                run.free()
                if oom and attempt == 0 and name == "cogvideox_2b" and case.batch > 1:
                    case = replace(case, batch=1)  # the label says the batch that ran
                    label = case.label + ("+channels_last" if CHANNELS_LAST else "")
                    continue
                break
        if fwd is None:
            continue
        try:
            fwd()
            run.sync()
            ev, _ = time_eager(run, fwd, 1)
            est = ev[0]
            n_eager = int(min(10, max(3, 3000 / max(est, 1e-3))))
            ev, wall = time_eager(run, fwd, n_eager)
            run.time_row(label, attention, "eager", statistics.median(ev), f"CUDA events; first call {first:.1f} ms",
                         batch=b, reps=n_eager, spread_ms=max(ev) - min(ev))  # fmt: skip
            run.time_row(label, attention, "eager_wall", statistics.median(wall), "perf_counter + synchronize",
                         batch=b, reps=n_eager, spread_ms=max(wall) - min(wall))  # fmt: skip
            run.log(
                f"  {label} [{attention}] eager {statistics.median(ev):.2f} ms (wall {statistics.median(wall):.2f})"
            )
        except Exception as exc:
            run.fail(f"{label} [{attention}] eager", exc)
            est = None
        try:
            with attention_scopes(torch, model):
                prof = profile_forward(run, fwd)
            record_profile(run, label, attention, prof)
            if args.timeline:
                for row in timeline_rows(label, attention, "eager", prof["timeline"]):
                    run.write("forward_timeline", TIMELINE_COLUMNS, row)
            for mode, val, note in (
                (
                    "kernel_sum",
                    prof["kernel_sum_us"] / 1e3,
                    "sum of GPU kernel/memcpy/memset durations, one eager forward",
                ),
                ("kernel_busy", prof["busy_us"] / 1e3, "union of kernel intervals (GPU busy time)"),
                ("profiled_wall", prof["wall_ms"], "wall clock of the profiled forward (profiler overhead included)"),
            ):
                run.time_row(label, attention, mode, val, note, kernels=prof["launches"], batch=b, reps=1)
        except Exception as exc:
            run.fail(f"{label} [{attention}] profile", exc)
        if run.cuda and not args.no_graph:
            try:
                if est is not None and est * 14 / 1e3 > run.left() - 10:
                    raise TimeoutError(f"graph replays need ~{est * 14 / 1e3:.0f} s, {run.left():.0f} s left")
                reps = int(min(20, max(10, 2000 / max(est or 1.0, 1e-3))))
                gprof: dict[str, Any] = {}

                def after(graph: Any) -> None:
                    gprof.update(profile_graph(run, graph))
                    gprof.update(replay_variants(run, graph))

                g = time_graph(run, fwd, reps, after=after)
                run.time_row(label, attention, "graph", statistics.median(g), "CUDA graph replay, CUDA events",
                             batch=b, reps=reps, spread_ms=max(g) - min(g))  # fmt: skip
                run.log(f"  {label} [{attention}] graph replay {statistics.median(g):.2f} ms (median of {reps})")
                record_graph_profile(run, label, attention, b, gprof, args.timeline)
            except Exception as exc:
                run.fail(f"{label} [{attention}] graph", exc)
        del model, fwd
        run.free()


def record_graph_profile(
    run: Run, label: str, attention: str, batch: int, prof: dict[str, Any], timeline: bool
) -> None:
    """Kernel time inside profiled graph replays: forward_times rows `graph_kernel_sum` and
    `graph_span`, forward_graph_kernels.csv, and (--timeline) the replay's kernel timeline."""
    if not prof:
        return
    for mode, val, note in (
        ("graph_kernel_sum", prof["kernel_sum_us"] / 1e3, "sum of kernel durations inside one profiled graph replay"),
        ("graph_span", prof["span_us"] / 1e3, "first kernel start to last kernel end, one profiled graph replay"),
        (
            "graph_back_to_back",
            prof.get("back_to_back_ms"),
            "CUDA events around 10 replays launched back to back, per replay",
        ),
        (
            "graph_launch_host",
            (prof.get("launch_host_us") or 0) / 1e3,
            "host time of one graph.replay() call (median of 10)",
        ),
    ):
        if val is None:
            continue
        run.time_row(label, attention, mode, val, note, kernels=prof["launches"], batch=batch, reps=1)
    for row in sorted(prof["rows"], key=lambda r: -r["time_us"]):
        run.write("forward_graph_kernels", GRAPH_KERNEL_COLUMNS, {"model": label, "attention": attention, **row})
    if timeline:
        for row in timeline_rows(label, attention, "graph", prof["timeline"]):
            run.write("forward_timeline", TIMELINE_COLUMNS, row)
    run.log(f"  {label} [{attention}] profiled replay: {prof['launches']} kernels, {prof['kernel_sum_us'] / 1e3:.2f} ms "
            f"kernel time, span {prof['span_us'] / 1e3:.2f} ms")  # fmt: skip


def run_llama(run: Run, case: Case, args: argparse.Namespace) -> None:
    torch = run.torch
    dtype = torch.float16 if run.cuda else torch.float32
    name, kv, batch = case.label + ("+crop" if args.kv_crop else ""), sized(case, args.smoke).kv, case.batch
    t = time.perf_counter()
    model, cfg = build_llama(case, torch, run.device, dtype, args.smoke)
    run.log(
        f"{name} built in {time.perf_counter() - t:.1f} s ({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params)"
    )
    ids = torch.randint(0, cfg["vocab_size"], (batch, kv), device=run.device)
    tok = torch.randint(0, cfg["vocab_size"], (batch, 1), device=run.device)
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
        run.sync()

        def step():
            # the cache grows by one token a step (kv .. kv + 14 over the run), as in generation; cropping
            # it back would leave a non-contiguous view whose next cat runs PyTorch's non-vectorized
            # kernel at ~0.65 TB/s (dispatch.csv cat_cache), an artifact the runs before 2026-11-30 have
            # (`--kv-crop` repeats them: rows say model+crop)
            logits = model(input_ids=tok, past_key_values=cache, use_cache=True).logits
            if args.kv_crop:
                cache.crop(-1)
            return logits

        for _ in range(3):
            step()
        ev, wall = time_eager(run, step, 10 if not args.smoke else 3)
        what = f"decode step, KV cache {kv} growing one token a step"
        run.time_row(name, "sdpa", "eager", statistics.median(ev), f"{what}; CUDA events", batch=batch, reps=len(ev),
                     spread_ms=max(ev) - min(ev))  # fmt: skip
        run.time_row(name, "sdpa", "eager_wall", statistics.median(wall), f"{what}; wall clock", batch=batch,
                     reps=len(wall), spread_ms=max(wall) - min(wall))  # fmt: skip
        prof = profile_forward(run, step)
    record_profile(run, name, "sdpa", prof)
    med = statistics.median(wall)
    for mode, val, note in (
        ("kernel_sum", prof["kernel_sum_us"] / 1e3, "sum of kernel durations, one decode step"),
        ("kernel_busy", prof["busy_us"] / 1e3, "union of kernel intervals"),
        ("profiled_wall", prof["wall_ms"], "wall clock of the profiled step"),
        ("busy_fraction", prof["busy_us"] / 1e3 / med, f"GPU busy / median unprofiled wall ({med:.3f} ms): unitless"),
        (
            "busy_fraction_span",
            prof["busy_us"] / max(prof["span_us"], 1e-9),
            "GPU busy / first-kernel-start..last-kernel-end span (profiled step): unitless",
        ),
    ):
        run.time_row(name, "sdpa", mode, val, note, kernels=prof["launches"], batch=batch, reps=1)
    run.log(
        f"  {name}: eager step {statistics.median(ev):.2f} ms (wall {med:.2f}), {prof['launches']} kernels, "
        f"kernel sum {prof['kernel_sum_us'] / 1e3:.2f} ms, busy fraction {prof['busy_us'] / 1e3 / med:.2f}"
    )
    step = model = cache = None  # drop the 13 GB of weights before the next model
    run.free()


def isolate(args: argparse.Namespace, argv: list[str]) -> int:
    """Run each model in a child process with what is left of the budget; CSVs are appended."""
    import subprocess

    t0 = time.monotonic()
    passthrough, skip = [], False
    for a in argv:  # drop --isolate / --models / --budget-s from what the children get
        if skip:
            skip = False
            continue
        if a in ("--models", "--budget-s"):
            skip = True
            continue
        if a == "--isolate" or a.startswith(("--models=", "--budget-s=")):
            continue
        passthrough.append(a)
    os.makedirs(args.out, exist_ok=True)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        left = args.budget_s - (time.monotonic() - t0)
        if left < 25:
            msg = f"{name}: skipped, out of time budget ({left:.0f} s left)"
            print(msg, flush=True)
            with open(os.path.join(args.out, "log.txt"), "a") as f:
                f.write(msg + "\n")
            continue
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            *passthrough,
            "--models",
            name,
            "--budget-s",
            f"{left - 8:.0f}",
        ]
        try:
            rc = subprocess.run(cmd, timeout=left, check=False).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc != 0:
            msg = f"{name}: child process ended with {rc}"
            print(msg, flush=True)
            with open(os.path.join(args.out, "log.txt"), "a") as f:
                f.write(msg + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="output folder (required unless --reclassify)")
    p.add_argument("--budget-s", type=float, default=500.0)
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated cases: a model, or model@sizes such as sd15_unet@768px_b1, modelscope_unet@f24, "
        "llama2_7b_decode@kv2048_b8 (experiments/gpu/forward_models.py)",
    )
    p.add_argument("--attentions", default="fused,unfused", help="attention paths of the diffusion models")
    p.add_argument(
        "--kv-crop",
        action="store_true",
        help="LLaMA: crop the cache back after each step (the runs before 2026-11-30; rows say model+crop)",
    )
    p.add_argument(
        "--timeline",
        action="store_true",
        help="write forward_timeline.csv: every kernel of the "
        "profiled eager forward and of one profiled graph replay (start, duration, gap to the next)",
    )
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--no-graph", action="store_true")
    p.add_argument("--device", default="cuda")
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="NHWC weights and inputs (models with 4-D convolutions only); rows say model+channels_last",
    )
    p.add_argument(
        "--reclassify",
        metavar="DIR",
        help="recompute DIR/forward_op_classes.csv and the class columns of DIR/forward_kernels.csv "
        "with this file's classifiers (no GPU)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="run each model in its own child process (a sticky CUDA error or leaked memory stays there)",
    )
    args = p.parse_args(argv)
    if not args.out and not args.reclassify:
        p.error("--out is required")
    if args.reclassify:
        return reclassify(args.reclassify)
    if args.isolate:
        return isolate(args, argv if argv is not None else sys.argv[1:])
    global CHANNELS_LAST
    CHANNELS_LAST = args.channels_last
    try:
        import torch
    except ImportError:
        print("validate_forward: PyTorch is not installed", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("validate_forward: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    try:
        import diffusers
        import transformers
    except ImportError as exc:
        print(f"validate_forward: {exc} (pip install diffusers transformers)", file=sys.stderr)
        return 2
    run = Run(torch, args.out, args.device, args.budget_s)
    dev = torch.cuda.get_device_name(0) if run.cuda else "cpu"
    run.log(
        f"validate_forward on {dev}: torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"transformers {transformers.__version__}{' [smoke]' if args.smoke else ''}"
    )
    if run.cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            case = parse_case(spec)
        except ValueError as exc:
            run.log(str(exc))
            run.failures.append(str(exc))
            continue
        if run.left() < 20:
            run.log(f"{spec}: skipped, out of time budget")
            run.failures.append(f"{spec}: out of time budget")
            continue
        try:
            if case.name == "llama2_7b_decode":
                run_llama(run, case, args)
            else:
                run_diffusion(run, case, args)
        except Exception as exc:
            run.fail(spec, exc)
        run.free()
    run.log(f"done; {len(run.failures)} failures: " + "; ".join(run.failures))
    run.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
