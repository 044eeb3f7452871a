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
import contextlib
import csv
import gc
import math
import os
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_models import MODELS, Case, build, build_llama, parse_case, sized, temporal_attention_modules

TIMES_COLUMNS = ["model", "attention", "mode", "time_ms", "kernels", "batch", "reps", "spread_ms", "note"]
CLASS_COLUMNS = ["model", "attention", "basis", "op_class", "kernel_time_ms", "share", "launches"]
KERNEL_COLUMNS = [
    "model",
    "attention",
    "kernel",
    "aten_op",
    "aten_inner",
    "class_by_kernel",
    "class_by_op",
    "launches",
    "time_us",
    "scope",
]
CLASSES = ("conv", "linear/GEMM", "attention", "norm", "elementwise/activation", "data movement", "other")


# -- op classes ----------------------------------------------------------------------------------------
_K_ATTN = re.compile(r"flash|fmha|sdpa|softmax|attention|attn", re.I)
_K_MOVE = re.compile(
    r"nchwtonhwc|nhwctonchw|tensortransform|transpose|permute|memcpy|memset|copy|catarray|concat|upsample|"
    r"index|gather|scatter|reflection_pad|constant_pad|repeat|flip|roll|im2col|col2im",
    re.I,
)
_K_NORM = re.compile(r"group_?norm|layer_?norm|rms_?norm|batch_?norm|rowwisemoments|computefusedparams|welford", re.I)
_K_CONV = re.compile(r"fprop|conv|implicit_?gemm|winograd|dgrad|wgrad", re.I)
_K_GEMM = re.compile(r"gemm|nvjet|cublas|cutlass|xmma|wgmma|s16816|h16816|s1688|h1688|matmul|gemv|splitk", re.I)
_K_ELEM = re.compile(r"elementwise|vectorized|unrolled|silu|gelu|sigmoid|tanh|relu|exp|activation|add|mul", re.I)


_K_OTHER = re.compile(r"arange|with_index|philox|randperm|curand", re.I)  # index-generating, not data movement


def classify_kernel(name: str) -> str:
    if _K_OTHER.search(name):
        return "other"
    for cls, pat in (
        ("attention", _K_ATTN),
        ("data movement", _K_MOVE),
        ("norm", _K_NORM),
        ("conv", _K_CONV),
        ("linear/GEMM", _K_GEMM),
        ("elementwise/activation", _K_ELEM),
    ):
        if pat.search(name):
            return cls
    return "other"


_O_ATTN = re.compile(
    r"scaled_dot_product|flash_attention|efficient_attention|cudnn_attention|^aten::_?softmax$|"
    r"^aten::baddbmm$|^aten::bmm$"
)
_O_CONV = re.compile(r"conv|cudnn_convolution")
_O_GEMM = re.compile(r"^aten::(linear|addmm|mm|matmul|addmv|mv|_addmm_activation|einsum)$")
_O_NORM = re.compile(r"group_norm|layer_norm|batch_norm|rms_norm|instance_norm")
_O_MOVE = re.compile(
    r"copy|clone|contiguous|^aten::cat$|stack|_to_copy|^aten::to$|index|gather|scatter|permute|"
    r"transpose|upsample|pad|repeat|expand|reshape|view|flip|roll|narrow|slice|split|chunk|embedding|"
    r"unfold|interpolate|select"
)
_O_ELEM = re.compile(
    r"add|sub|mul|div|silu|gelu|sigmoid|tanh|relu|exp|sin|cos|neg|pow|rsqrt|sqrt|where|clamp|"
    r"fill|zero|masked|lerp|addcmul|addcdiv|abs|erf|log|softplus|dropout|ones|full"
)


def classify_op(op: str) -> str:
    if not op:
        return "other"
    for cls, pat in (
        ("attention", _O_ATTN),
        ("conv", _O_CONV),
        ("linear/GEMM", _O_GEMM),
        ("norm", _O_NORM),
        ("data movement", _O_MOVE),
        ("elementwise/activation", _O_ELEM),
    ):
        if pat.search(op):
            return cls
    return "other"


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


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) or math.isinf(v) else f"{v:.6g}"
    return v


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


def time_graph(run: Run, fwd: Callable[[], Any], reps: int) -> list[float]:
    """Capture `fwd` in a CUDA graph; CUDA-event time (ms) of each of `reps` replays."""
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
    del g
    return times


SCOPE = "scope:"  # record_function ranges named scope:<axis> mark the kernels of temporal/spatial attention


@contextlib.contextmanager
def attention_scopes(torch: Any, model: Any):
    """While active, every diffusers Attention module's forward runs inside a profiler range
    `scope:temporal` or `scope:spatial`, so its kernels (projections included) carry the axis."""
    temporal, other = temporal_attention_modules(model)
    handles = []
    for axis, mods in (("temporal", temporal), ("spatial", other)):
        for m in mods:
            stack: list[Any] = []

            def enter(_m, _args, axis=axis, stack=stack):
                stack.append(torch.profiler.record_function(SCOPE + axis))
                stack[-1].__enter__()

            def leave(_m, _args, _out, stack=stack):
                stack.pop().__exit__(None, None, None)

            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        yield len(temporal)
    finally:
        for h in handles:
            h.remove()


def profile_forward(run: Run, fwd: Callable[[], Any]) -> dict[str, Any]:
    """One eager forward under torch.profiler: kernels with their launching aten ops and the
    attention scope (`attention_scopes`) they ran in."""
    torch = run.torch
    from torch.autograd import DeviceType

    acts = [torch.profiler.ProfilerActivity.CPU]
    if run.cuda:
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    run.sync()
    t = time.perf_counter()
    with torch.profiler.profile(activities=acts) as prof:
        fwd()
        run.sync()
    wall_ms = (time.perf_counter() - t) * 1e3
    events = list(prof.events())

    # (A) kernels attached to the aten op that launched them (kineto's correlation)
    attributed: dict[tuple[str, str, str], list[float]] = {}
    attributed_by_name: dict[str, float] = {}
    for e in events:
        if e.device_type != DeviceType.CPU or not getattr(e, "kernels", None):
            continue
        chain, p = [e.name], e.cpu_parent
        while p is not None:
            chain.append(p.name)
            p = p.cpu_parent
        atens = [c for c in chain if c.startswith("aten::")]
        inner = atens[0] if atens else e.name
        outer = atens[-1] if atens else e.name
        scope = next((c[len(SCOPE) :] for c in chain if c.startswith(SCOPE)), "")
        for k in e.kernels:
            if run.cuda and str(getattr(k, "device", "")).lower() == "cpu":
                continue
            key = (k.name, outer, inner, scope)
            a = attributed.setdefault(key, [0, 0.0])
            a[0] += 1
            a[1] += float(k.duration)
            attributed_by_name[k.name] = attributed_by_name.get(k.name, 0.0) + float(k.duration)

    # (B) every device-side event (kernels, memcpy, memset): totals and the timeline
    dev = []
    for e in events:
        if getattr(e, "is_user_annotation", False):
            continue
        if e.device_type == DeviceType.CUDA or (
            not run.cuda and e.device_type == DeviceType.CPU and e.cpu_parent is None
        ):
            dev.append((e.name, float(e.time_range.start), float(e.time_range.end - e.time_range.start)))
    if not run.cuda:  # CPU test: top-level ops stand in for kernels
        attributed = {}
        for name, _, d in dev:
            a = attributed.setdefault((name, name, name, ""), [0, 0.0])
            a[0] += 1
            a[1] += d
        attributed_by_name = {}
        for (name, _, _, _), (n, d) in attributed.items():
            attributed_by_name[name] = attributed_by_name.get(name, 0.0) + d
    total_by_name: dict[str, list[float]] = {}
    for name, _, d in dev:
        t_ = total_by_name.setdefault(name, [0, 0.0])
        t_[0] += 1
        t_[1] += d
    rows = [
        {"kernel": k, "aten_op": o, "aten_inner": i, "launches": n, "time_us": d, "scope": sc}
        for (k, o, i, sc), (n, d) in attributed.items()
    ]
    for name, (n, d) in total_by_name.items():  # kernels the correlation did not place
        rest = d - attributed_by_name.get(name, 0.0)
        n_attr = sum(v[0] for (k, *_), v in attributed.items() if k == name)
        if rest > 0.5 and n > n_attr:
            rows.append(
                {"kernel": name, "aten_op": "", "aten_inner": "", "launches": n - n_attr, "time_us": rest, "scope": ""}
            )
    starts = sorted(dev, key=lambda r: r[1])
    busy, end = 0.0, -math.inf
    for _, s, d in starts:
        if s >= end:
            busy += d
            end = s + d
        elif s + d > end:
            busy += s + d - end
            end = s + d
    span = (starts[-1][1] + starts[-1][2] - starts[0][1]) if starts else 0.0
    return {
        "rows": rows,
        "kernel_sum_us": sum(d for _, _, d in dev),
        "launches": len(dev),
        "busy_us": busy,
        "span_us": span,
        "wall_ms": wall_ms,
        "attributed_us": sum(v[1] for v in attributed.values()),
    }


def record_profile(run: Run, model: str, attention: str, prof: dict[str, Any]) -> None:
    by_k = dict.fromkeys(CLASSES, 0.0)
    by_o = dict.fromkeys(CLASSES, 0.0)
    n_k = dict.fromkeys(CLASSES, 0)
    n_o = dict.fromkeys(CLASSES, 0)
    for r in sorted(prof["rows"], key=lambda r: -r["time_us"]):
        ck, co = (
            classify_kernel(r["kernel"]),
            classify_op(r["aten_op"]) if r["aten_op"] else classify_kernel(r["kernel"]),
        )
        by_k[ck] += r["time_us"]
        by_o[co] += r["time_us"]
        n_k[ck] += r["launches"]
        n_o[co] += r["launches"]
        run.write(
            "forward_kernels",
            KERNEL_COLUMNS,
            {"model": model, "attention": attention, **r, "class_by_kernel": ck, "class_by_op": co},
        )
    total = sum(by_k.values()) or 1.0
    for basis, sums, counts in (("kernel_name", by_k, n_k), ("aten_op", by_o, n_o)):
        for cls in CLASSES:
            run.write(
                "forward_op_classes",
                CLASS_COLUMNS,
                {
                    "model": model,
                    "attention": attention,
                    "basis": basis,
                    "op_class": cls,
                    "kernel_time_ms": sums[cls] / 1e3,
                    "share": sums[cls] / total,
                    "launches": counts[cls],
                },
            )
    shares = ", ".join(f"{c.split('/')[0]} {by_k[c] / total:.0%}" for c in CLASSES if by_k[c] > 0)
    run.log(
        f"  {model} [{attention}] profile: {prof['launches']} kernels, {prof['kernel_sum_us'] / 1e3:.2f} ms "
        f"kernel time, busy {prof['busy_us'] / 1e3:.2f} ms of {prof['wall_ms']:.2f} ms wall; by kernel: {shares}"
    )


CHANNELS_LAST = False  # --channels-last: 4-D weights and inputs in NHWC (conv models only)


@contextlib.contextmanager
def _patched_sdpa(torch: Any):
    F = torch.nn.functional
    orig = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = unfused_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = orig


def unfused_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
    """The classic diffusers path (Attention.get_attention_scores + bmm) as an SDPA stand-in:
    baddbmm(beta=0) -> softmax -> bmm over [batch*heads, seq, dim]."""
    import torch

    *lead, sq, d = query.shape
    skv, dv = key.shape[-2], value.shape[-1]
    q, k, v = query.reshape(-1, sq, d), key.reshape(-1, skv, d), value.reshape(-1, skv, dv)
    if attn_mask is None:
        base, beta = torch.empty(q.shape[0], sq, skv, dtype=q.dtype, device=q.device), 0
    else:
        base, beta = attn_mask.expand(*lead, sq, skv).reshape(-1, sq, skv), 1
    scores = torch.baddbmm(base, q, k.transpose(-1, -2), beta=beta, alpha=scale or 1.0 / math.sqrt(d))
    del base
    probs = scores.softmax(dim=-1)
    del scores
    return torch.bmm(probs, v).reshape(*lead, sq, dv)


def _attention_modules(model: Any) -> list[Any]:
    """diffusers `Attention` modules (anything with a processor and set_processor)."""
    return [m for m in model.modules() if hasattr(m, "set_processor") and hasattr(m, "processor")]


def set_attention(model: Any, name: str, attention: str) -> tuple[str | None, str]:
    """Switch the model's attention processors; returns ("patch" or None, a note)."""
    from diffusers.models.attention_processor import AttnProcessor

    mods = _attention_modules(model)
    procs = sorted({type(m.processor).__name__ for m in mods})
    if attention == "fused":
        return None, f"{len(mods)} attention modules, default processors: " + "/".join(procs)
    if name == "cogvideox_2b":
        return "patch", f"{len(mods)} x {'/'.join(procs)} with SDPA -> baddbmm/softmax/bmm"
    for m in mods:
        m.set_processor(AttnProcessor())
    return None, f"{len(mods)} attention modules -> diffusers AttnProcessor (baddbmm/softmax/bmm)"


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
                        with torch.no_grad(), _patched_sdpa(torch):
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
            run.write(
                "forward_times",
                TIMES_COLUMNS,
                {
                    "model": label,
                    "attention": attention,
                    "mode": "eager",
                    "time_ms": statistics.median(ev),
                    "batch": b,
                    "reps": n_eager,
                    "spread_ms": max(ev) - min(ev),
                    "note": f"CUDA events; first call {first:.1f} ms",
                },
            )
            run.write(
                "forward_times",
                TIMES_COLUMNS,
                {
                    "model": label,
                    "attention": attention,
                    "mode": "eager_wall",
                    "time_ms": statistics.median(wall),
                    "batch": b,
                    "reps": n_eager,
                    "spread_ms": max(wall) - min(wall),
                    "note": "perf_counter + synchronize",
                },
            )
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
            for mode, val, note in (
                (
                    "kernel_sum",
                    prof["kernel_sum_us"] / 1e3,
                    "sum of GPU kernel/memcpy/memset durations, one eager forward",
                ),
                ("kernel_busy", prof["busy_us"] / 1e3, "union of kernel intervals (GPU busy time)"),
                ("profiled_wall", prof["wall_ms"], "wall clock of the profiled forward (profiler overhead included)"),
            ):
                run.write(
                    "forward_times",
                    TIMES_COLUMNS,
                    {
                        "model": label,
                        "attention": attention,
                        "mode": mode,
                        "time_ms": val,
                        "kernels": prof["launches"],
                        "batch": b,
                        "reps": 1,
                        "note": note,
                    },
                )
        except Exception as exc:
            run.fail(f"{label} [{attention}] profile", exc)
        if run.cuda and not args.no_graph:
            try:
                if est is not None and est * 14 / 1e3 > run.left() - 10:
                    raise TimeoutError(f"graph replays need ~{est * 14 / 1e3:.0f} s, {run.left():.0f} s left")
                reps = int(min(20, max(10, 2000 / max(est or 1.0, 1e-3))))
                g = time_graph(run, fwd, reps)
                run.write(
                    "forward_times",
                    TIMES_COLUMNS,
                    {
                        "model": label,
                        "attention": attention,
                        "mode": "graph",
                        "time_ms": statistics.median(g),
                        "batch": b,
                        "reps": reps,
                        "spread_ms": max(g) - min(g),
                        "note": "CUDA graph replay, CUDA events",
                    },
                )
                run.log(f"  {label} [{attention}] graph replay {statistics.median(g):.2f} ms (median of {reps})")
            except Exception as exc:
                run.fail(f"{label} [{attention}] graph", exc)
        del model, fwd
        run.free()


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
        run.write(
            "forward_times",
            TIMES_COLUMNS,
            {
                "model": name,
                "attention": "sdpa",
                "mode": "eager",
                "time_ms": statistics.median(ev),
                "batch": batch,
                "reps": len(ev),
                "spread_ms": max(ev) - min(ev),
                "note": f"decode step, KV cache {kv} growing one token a step; CUDA events",
            },
        )
        run.write(
            "forward_times",
            TIMES_COLUMNS,
            {
                "model": name,
                "attention": "sdpa",
                "mode": "eager_wall",
                "time_ms": statistics.median(wall),
                "batch": batch,
                "reps": len(wall),
                "spread_ms": max(wall) - min(wall),
                "note": f"decode step, KV cache {kv} growing one token a step; wall clock",
            },
        )
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
        run.write(
            "forward_times",
            TIMES_COLUMNS,
            {
                "model": name,
                "attention": "sdpa",
                "mode": mode,
                "time_ms": val,
                "kernels": prof["launches"],
                "batch": batch,
                "reps": 1,
                "note": note,
            },
        )
    run.log(
        f"  {name}: eager step {statistics.median(ev):.2f} ms (wall {med:.2f}), {prof['launches']} kernels, "
        f"kernel sum {prof['kernel_sum_us'] / 1e3:.2f} ms, busy fraction {prof['busy_us'] / 1e3 / med:.2f}"
    )
    step = model = cache = None  # drop the 13 GB of weights before the next model
    run.free()


def reclassify(folder: str) -> int:
    """Rewrite forward_op_classes.csv (and forward_kernels.csv's class columns) from the raw per-kernel
    rows with the current classifiers; model/attention order and kernel times are unchanged."""
    path_k = os.path.join(folder, "forward_kernels.csv")
    with open(path_k, newline="") as f:
        rows = list(csv.DictReader(f))
    order: list[tuple[str, str]] = []
    sums: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for r in rows:
        r["class_by_kernel"] = classify_kernel(r["kernel"])
        r["class_by_op"] = classify_op(r["aten_op"]) if r["aten_op"] else r["class_by_kernel"]
        key = (r["model"], r["attention"])
        if key not in order:
            order.append(key)
        for basis, cls in (("kernel_name", r["class_by_kernel"]), ("aten_op", r["class_by_op"])):
            acc = sums.setdefault((*key, basis), {c: [0.0, 0.0] for c in CLASSES})
            acc[cls][0] += float(r["time_us"])
            acc[cls][1] += float(r["launches"])
    with open(path_k, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=KERNEL_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(folder, "forward_op_classes.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CLASS_COLUMNS)
        w.writeheader()
        for model, attention in order:
            for basis in ("kernel_name", "aten_op"):
                acc = sums[(model, attention, basis)]
                total = sum(v[0] for v in acc.values()) or 1.0
                for cls in CLASSES:
                    w.writerow(
                        {
                            "model": model,
                            "attention": attention,
                            "basis": basis,
                            "op_class": cls,
                            "kernel_time_ms": _fmt(acc[cls][0] / 1e3),
                            "share": _fmt(acc[cls][0] / total),
                            "launches": int(acc[cls][1]),
                        }
                    )
    print(f"reclassified {len(rows)} kernel rows in {folder}")
    return 0


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
    p.add_argument("--kv-crop", action="store_true", help="LLaMA: crop the cache back after each step (the runs before "
                   "2026-11-30; rows say model+crop)")
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
