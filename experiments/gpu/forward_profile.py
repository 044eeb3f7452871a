"""Profiling for `validate_forward.py`: kernel and aten-op classifiers, one eager forward under
torch.profiler (kernels with the aten ops that launched them and the attention scope they ran in),
CUDA-graph replays under the profiler (CUPTI reports the kernels of graph launches: per-kernel time
inside the replay and the device gaps between kernels), and `--reclassify`.

`run` is validate_forward's `Run` (torch, cuda, sync(), write(), log()).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import time
from collections.abc import Callable
from typing import Any

from forward_models import temporal_attention_modules

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


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) or math.isinf(v) else f"{v:.6g}"
    return v


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


def profile_forward(run: Any, fwd: Callable[[], Any]) -> dict[str, Any]:
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
        "timeline": starts,
    }


def record_profile(run: Any, model: str, attention: str, prof: dict[str, Any]) -> None:
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


GRAPH_KERNEL_COLUMNS = ["model", "attention", "kernel", "launches", "time_us"]
TIMELINE_COLUMNS = ["model", "attention", "mode", "idx", "kernel", "start_us", "dur_us", "gap_us"]


def _device_events(torch: Any, prof: Any) -> list[tuple[str, float, float]]:
    """(name, start us, duration us) of every kernel/memcpy/memset of a finished profile, by start."""
    from torch.autograd import DeviceType

    dev = [
        (e.name, float(e.time_range.start), float(e.time_range.end - e.time_range.start))
        for e in prof.events()
        if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
    ]
    return sorted(dev, key=lambda r: r[1])


def profile_graph(run: Any, graph: Any, replays: int = 3) -> dict[str, Any]:
    """`replays` back-to-back replays of a captured CUDA graph under torch.profiler: kernels per
    replay by name (launches, time), the replay's kernel sum, and the last replay's timeline (each
    kernel's start, duration and the device gap before the next kernel)."""
    torch = run.torch
    run.sync()
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(replays):
            graph.replay()
        run.sync()
    dev = _device_events(torch, prof)
    per = len(dev) // replays if replays else 0
    by_name: dict[str, list[float]] = {}
    for name, _, d in dev:
        acc = by_name.setdefault(name, [0.0, 0.0])
        acc[0] += 1 / replays
        acc[1] += d / replays
    last = dev[len(dev) - per :] if per else []
    return {
        "rows": [{"kernel": k, "launches": n, "time_us": t} for k, (n, t) in by_name.items()],
        "kernel_sum_us": sum(d for _, _, d in dev) / max(replays, 1),
        "launches": per,
        "span_us": (last[-1][1] + last[-1][2] - last[0][1]) if last else 0.0,
        "timeline": last,
    }


def replay_variants(run: Any, graph: Any, reps: int = 10) -> dict[str, float]:
    """How a replay's time splits between launch and device: `back_to_back_ms`, CUDA-event time per
    replay of `reps` replays launched back to back (each launch overlaps the replay before it), and
    `launch_host_us`, the median host time of one `graph.replay()` call (the GPU idle before it)."""
    torch = run.torch
    run.sync()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        graph.replay()
    b.record()
    b.synchronize()
    host = []
    for _ in range(reps):
        run.sync()
        t = time.perf_counter()
        graph.replay()
        host.append((time.perf_counter() - t) * 1e6)
    run.sync()
    return {"back_to_back_ms": a.elapsed_time(b) / reps, "launch_host_us": sorted(host)[len(host) // 2]}


def timeline_rows(model: str, attention: str, mode: str, events: list[tuple[str, float, float]]) -> list[dict]:
    """Timeline rows (start relative to the first kernel; gap = next start - this end)."""
    t0 = events[0][1] if events else 0.0
    rows = []
    for i, (name, s, d) in enumerate(events):
        gap = events[i + 1][1] - (s + d) if i + 1 < len(events) else None
        rows.append({"model": model, "attention": attention, "mode": mode, "idx": i, "kernel": name[:160],
                     "start_us": s - t0, "dur_us": d, "gap_us": gap})  # fmt: skip
    return rows
