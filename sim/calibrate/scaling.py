"""Size- and shape-dependent rates of the kernels around unfused attention and small GEMMs, each
row timed with CUDA events (`time_us`, L2 flushed) and split into its kernels by the profiler
(`kernel_us`: the kernels' own time, no event overhead; `kernels`: their names):

  softmax     F.softmax over the last dim, row length 16..65536 at 512 MiB, and a total-size
              series at row lengths 4096 and 17776 (PyTorch picks a warp-per-row, a register or a
              shared-memory kernel by row length)
  bgemm       the unfused attention's batched GEMMs as diffusers runs them: baddbmm(beta=0) of
              q [bh, Lq, d] x k^T (scores written) and bmm of probs [bh, Lq, Lk] x v (scores read)
  gemv        small-M F.linear (M = 1, 8, 64) over weights of 1..268 M elements: weight streaming
  head_copy   diffusers' head split ([b, s, h, d] -> [b, h, s, d] contiguous) and merge (back)
  layer_norm  narrow rows (head-dim q/k norms) and LayerNorm of a non-contiguous (head-split) view
  graph_gap   a CUDA graph of 200 realistic small kernels (DiT-XL/2 sizes): replay time per kernel
              minus the profiled kernel time = the device gap between dependent kernels
  sustained   a CogVideoX-size GEMM launched back to back for ~2 s: rate over time (power/clocks)

bytes = what the op must read + write once; gbs = bytes / kernel_us.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._bench import Context, capture_graph, short_kernel

COLUMNS = ["benchmark", "op", "shape", "dtype", "bytes", "flops", "time_us", "min_us", "kernel_us", "gbs",
           "tflops", "launches", "kernels"]  # fmt: skip

SOFTMAX_WIDTHS = (16, 32, 64, 77, 120, 226, 256, 512, 1024, 1025, 1536, 2048, 3072, 4096, 6144, 8192, 12288,
                  16384, 17776, 24576, 32768, 65536)  # fmt: skip
# (Lq, Lk, head_dim, batch*heads) of the unfused attention's batched GEMMs
BGEMM_SHAPES = ((16, 16, 64, 40960), (16, 16, 40, 40960), (64, 64, 64, 2560), (256, 256, 72, 32),
                (256, 256, 64, 320), (1024, 1024, 64, 160), (1024, 1024, 80, 16), (4096, 4096, 40, 16),
                (4096, 4096, 72, 32), (4096, 4096, 64, 16), (8192, 8192, 64, 16), (17776, 17776, 64, 8),
                (17776, 17776, 64, 60), (4096, 77, 40, 16), (1024, 77, 80, 16), (4096, 120, 72, 32))  # fmt: skip
GEMV_KN = ((1024, 1024), (1920, 1920), (2048, 2048), (4096, 4096), (4096, 11008), (11008, 4096), (8192, 8192),
           (4096, 32000), (8192, 28672), (16384, 16384))  # fmt: skip
# (batch, seq, heads, head_dim)
HEAD_SHAPES = ((2, 4096, 8, 40), (2, 1024, 8, 80), (2, 256, 8, 160), (2, 256, 16, 72), (2, 4096, 16, 72),
               (2, 17776, 30, 64), (32, 1024, 5, 64), (2048, 16, 5, 64), (512, 16, 10, 64), (2, 65536, 8, 64),
               (2, 16384, 8, 64), (2, 1024, 8, 64), (2, 256, 8, 64))  # fmt: skip
LN_SHAPES = ((16384, 64), (262144, 64), (1066560, 64), (262144, 72), (262144, 128), (35552, 1920), (512, 1152))


def _row(ctx: Context, bench: str, op: str, shape: str, nbytes: float, flops: float, fn: Callable[[], Any],
         profile: bool = True, family: str = "scaling", dtype: str | None = None, **bench_kw: Any) -> None:  # fmt: skip
    """One measurement row of `family`'s CSV: event time, and the profiled kernels unless not `profile`;
    `dtype` names the operands' dtype where it is not the run's."""
    r = ctx.bench(fn, **bench_kw)
    row: dict[str, Any] = {"benchmark": bench, "op": op, "shape": shape, "dtype": dtype or ctx.dtype_name, "bytes": nbytes,
                           "flops": flops, "time_us": r["time_us"], "min_us": r["min_us"]}  # fmt: skip
    if profile:
        ks = ctx.kernels(fn, calls=2)
        ks = [k for k in ks if not k["kernel"].startswith(("Memset", "Memcpy"))] or ks
        ku = sum(k["time_us"] for k in ks)
        row.update(kernel_us=ku, launches=sum(k["calls"] for k in ks),
                   kernels=";".join(f"{short_kernel(k['kernel'], 90)}={k['time_us']:.1f}us" for k in ks))  # fmt: skip
    t = row.get("kernel_us") or r["time_us"]
    row["gbs"] = nbytes / t / 1e3
    row["tflops"] = flops / t / 1e6 if flops else None
    ctx.write(family, COLUMNS, row)


def _guard(ctx: Context, what: str, body: Callable[[], None]) -> bool:
    """Run one measurement; False when the budget is spent."""
    if ctx.out_of_time(what):
        return False
    try:
        body()
    except Exception as exc:
        ctx.error(what, exc)
    if ctx.cuda:
        ctx.torch.cuda.empty_cache()
    return True


def _sweep(ctx: Context, name: str, cases: Sequence[tuple[int, ...]], body: Callable[..., None]) -> bool:
    """`body(*case)` for every case, each guarded; False when the budget ran out."""
    for case in cases:
        if not _guard(ctx, f"scaling {name} {'x'.join(map(str, case))}", lambda case=case: body(*case)):
            return False
    return True


def run(ctx: Context) -> None:
    for part in (_softmax, _bgemm, _gemv, _head_copy, _layer_norm, _graph_gap, _sustained):
        if not part(ctx):
            return


def _softmax(ctx: Context) -> bool:
    torch = ctx.torch
    total = 1 << (12 if ctx.quick else 28)
    cases = [(max(1, total // w), w) for w in (SOFTMAX_WIDTHS[:4] if ctx.quick else SOFTMAX_WIDTHS)]
    if not ctx.quick:
        cases += [((1 << p) // w, w) for w in (4096, 17776) for p in (22, 24, 26, 30, 32)]

    def body(rows: int, w: int) -> None:
        x = torch.randn(rows, w, device=ctx.device, dtype=ctx.dtype)
        _row(ctx, "softmax", "softmax_lastdim", f"{rows}x{w}", 2.0 * x.numel() * x.element_size(), 0.0,
             lambda: x.softmax(dim=-1), target_ms=10.0, max_reps=30)  # fmt: skip

    return _sweep(ctx, "softmax", cases, body)


def _bgemm(ctx: Context) -> bool:
    torch = ctx.torch

    def body(lq: int, lk: int, d: int, bh: int) -> None:
        q = torch.randn(bh, lq, d, device=ctx.device, dtype=ctx.dtype)
        k = torch.randn(bh, lk, d, device=ctx.device, dtype=ctx.dtype)
        v = torch.randn(bh, lk, d, device=ctx.device, dtype=ctx.dtype)
        flops = 2.0 * bh * lq * lk * d
        es = q.element_size()
        shape = f"{bh}x{lq}x{lk}x{d}"
        scale = 1.0 / math.sqrt(d)

        def qk() -> Any:
            empty = torch.empty(bh, lq, lk, dtype=q.dtype, device=q.device)
            return torch.baddbmm(empty, q, k.transpose(-1, -2), beta=0, alpha=scale)

        _row(ctx, "bgemm", "baddbmm_qk", shape, es * (bh * (lq + lk) * d + bh * lq * lk), flops, qk,
             target_ms=10.0, max_reps=30)  # fmt: skip
        probs = qk()
        _row(ctx, "bgemm", "bmm_pv", shape, es * (bh * lq * lk + 2 * bh * lq * d), flops,
             lambda: torch.bmm(probs, v), target_ms=10.0, max_reps=30)  # fmt: skip

    return _sweep(ctx, "bgemm", ((16, 16, 64, 64), (64, 64, 40, 16)) if ctx.quick else BGEMM_SHAPES, body)


def _gemv(ctx: Context) -> bool:
    F = ctx.torch.nn.functional

    def body(m: int, k_: int, n: int) -> None:
        x = ctx.torch.randn(m, k_, device=ctx.device, dtype=ctx.dtype)
        w = ctx.torch.randn(n, k_, device=ctx.device, dtype=ctx.dtype)
        _row(ctx, "gemv", "linear", f"{m}x{k_}x{n}", x.element_size() * (m * k_ + k_ * n + m * n),
             2.0 * m * k_ * n, lambda: F.linear(x, w), target_ms=10.0, max_reps=60)  # fmt: skip

    cases = [(m, k_, n) for k_, n in (GEMV_KN[:2] if ctx.quick else GEMV_KN) for m in (1, 8, 64)]
    return _sweep(ctx, "gemv", cases, body)


def _head_copy(ctx: Context) -> bool:
    def body(b: int, s: int, h: int, d: int) -> None:
        x = ctx.torch.randn(b, s, h * d, device=ctx.device, dtype=ctx.dtype)
        nbytes = 2.0 * x.numel() * x.element_size()
        split = lambda: x.reshape(b, s, h, d).permute(0, 2, 1, 3).reshape(b * h, s, d)  # noqa: E731
        _row(ctx, "head_copy", "split", f"{b}x{s}x{h}x{d}", nbytes, 0.0, split, target_ms=10.0, max_reps=40)
        y = split()
        merge = lambda: y.reshape(b, h, s, d).permute(0, 2, 1, 3).reshape(b, s, h * d)  # noqa: E731
        _row(ctx, "head_copy", "merge", f"{b}x{s}x{h}x{d}", nbytes, 0.0, merge, target_ms=10.0, max_reps=40)

    return _sweep(ctx, "head_copy", HEAD_SHAPES[:2] if ctx.quick else HEAD_SHAPES, body)


def _layer_norm(ctx: Context) -> bool:
    F = ctx.torch.nn.functional

    def body(rows: int, w: int) -> None:
        x = ctx.torch.randn(rows, w, device=ctx.device, dtype=ctx.dtype)
        g = ctx.torch.randn(w, device=ctx.device, dtype=ctx.dtype)
        nbytes = 2.0 * x.numel() * x.element_size()
        _row(ctx, "layer_norm", "contiguous", f"{rows}x{w}", nbytes, 0.0,
             lambda: F.layer_norm(x, (w,), g, g, 1e-6), target_ms=10.0, max_reps=40)  # fmt: skip
        if rows % 2 == 0 and w <= 128:  # [b, s, h, d] viewed as [b, h, s, d]: LayerNorm copies it first
            heads = 30 if rows % 60 == 0 else 8
            v = x.view(2, rows // (2 * heads), heads, w).transpose(1, 2)
            _row(ctx, "layer_norm", "head_view", f"{rows}x{w}", nbytes, 0.0,
                 lambda: F.layer_norm(v, (w,), g, g, 1e-6), target_ms=10.0, max_reps=40)  # fmt: skip

    return _sweep(ctx, "layer_norm", LN_SHAPES[:2] if ctx.quick else LN_SHAPES, body)


def _graph_gap(ctx: Context) -> bool:
    """200 dependent DiT-size kernels (linear 512x1152x1152, LayerNorm, SiLU, add) in one graph."""
    torch = ctx.torch
    if not ctx.cuda:
        return True
    F = torch.nn.functional

    def body() -> None:
        for kind in ("linear", "layer_norm", "silu", "mix"):
            x = torch.randn(512, 1152, device=ctx.device, dtype=ctx.dtype)
            w = torch.randn(1152, 1152, device=ctx.device, dtype=ctx.dtype) * 0.03
            g = torch.ones(1152, device=ctx.device, dtype=ctx.dtype)
            steps = {"linear": lambda z: F.linear(z, w), "layer_norm": lambda z: F.layer_norm(z, (1152,), g, g),
                     "silu": F.silu}  # fmt: skip
            order = [kind] * 200 if kind != "mix" else ["linear", "layer_norm", "silu", "add"] * 50

            def chain() -> Any:
                z = x
                for s in order:
                    z = z + x if s == "add" else steps[s](z)
                return z

            graph = capture_graph(torch, chain)
            _row(ctx, "graph_gap", kind, "200x512x1152", 0.0, 0.0, graph.replay, profile=False, flush=False,
                 target_ms=20.0, max_reps=30)  # fmt: skip
            ks = ctx.kernels(chain, calls=2)
            ctx.write("scaling", COLUMNS, {"benchmark": "graph_gap", "op": f"{kind}_kernels", "shape": "200x512x1152",
                                           "dtype": ctx.dtype_name, "kernel_us": sum(k["time_us"] for k in ks),
                                           "launches": sum(k["calls"] for k in ks)})  # fmt: skip
            del graph

    return _guard(ctx, "scaling graph_gap", body)


def sustained_rows(ctx: Context, family: str, name: str, shape: str, flops: float, nbytes: float,
                   fn: Callable[[], Any], seconds: float = 2.0, per_window: int = 50) -> None:  # fmt: skip
    """`fn` back to back for `seconds` after a 1 s rest: one row per `per_window` calls (op `name@t=...s`),
    the per-call event time of that window (the clocks fall once the board reaches its power cap)."""
    torch = ctx.torch
    torch.cuda.synchronize()
    time.sleep(1.0)  # let the card cool to its idle state first
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(per_window):
            fn()
        e.record()
        e.synchronize()
        us = s.elapsed_time(e) * 1e3 / per_window
        ctx.write(family, COLUMNS, {"benchmark": "sustained", "op": f"{name}t={time.monotonic() - t0:.2f}s",
                                    "shape": shape, "dtype": ctx.dtype_name, "flops": flops or None,
                                    "bytes": nbytes or None, "time_us": us, "gbs": nbytes / us / 1e3 if nbytes else None,
                                    "tflops": flops / us / 1e6 if flops else None})  # fmt: skip


def _sustained(ctx: Context) -> bool:
    """F.linear 35552x1920x7680 back to back for ~2 s: per-call time in 100 ms windows."""
    torch = ctx.torch
    if not ctx.cuda:
        return True
    F = torch.nn.functional

    def body() -> None:
        x = torch.randn(35552, 1920, device=ctx.device, dtype=ctx.dtype)
        w = torch.randn(7680, 1920, device=ctx.device, dtype=ctx.dtype)
        sustained_rows(ctx, "scaling", "", "35552x1920x7680", 2.0 * 35552 * 1920 * 7680, 0.0, lambda: F.linear(x, w))

    return _guard(ctx, "scaling sustained", body)
