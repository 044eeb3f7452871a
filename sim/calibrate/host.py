"""Host overhead: what a kernel costs when the GPU work per kernel is tiny.

- eager chain: 1000 dependent tiny in-place adds (x.add_(1), 1024 elements) issued from Python;
  wall-clock / 1000 = the eager dispatch + launch cost per kernel (the GPU is idle waiting);
  the CUDA-event span of the same chain is recorded too.
- eager out-of-place chain (y = x + 1: dispatch + caching-allocator), and single-kernel torch
  ops with out= (the bare launch);
- the same 1000-kernel chain captured once in a torch.cuda.CUDAGraph and replayed: replay
  time / 1000 = the per-kernel gap the GPU itself leaves between back-to-back graph kernels;
  and a one-kernel graph's replay wall time (the graph launch cost);
- per-op host cost of common multi-kernel ops at tiny sizes (F.linear, F.group_norm,
  F.layer_norm, SDPA): wall-clock per call in a loop, so the simulator can charge per op.
"""

from __future__ import annotations

import statistics
import time

from ._bench import Context, capture_graph

COLUMNS = ["benchmark", "method", "n_kernels", "time_us_total", "us_per_kernel", "gpu_us_per_kernel", "reps"]


def run(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    dev, dt = ctx.device, ctx.dtype
    chain = 100 if ctx.quick else 1000
    reps = 3 if ctx.quick else 7

    def wall(fn, inner: int) -> tuple[float, float]:
        """(median wall-clock us per call, median CUDA-event us per call) over `reps` loops of `inner` calls."""
        walls, gpus = [], []
        for _ in range(reps):
            ctx.sync()
            if ctx.cuda:
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            if ctx.cuda:
                e.record()
            ctx.sync()
            walls.append((time.perf_counter() - t) * 1e6 / inner)
            gpus.append(s.elapsed_time(e) * 1e3 / inner if ctx.cuda else walls[-1])
        return statistics.median(walls), statistics.median(gpus)

    def row(bench: str, method: str, n: int, per_kernel: float, gpu: float | None = None) -> None:
        ctx.write(
            "host",
            COLUMNS,
            {
                "benchmark": bench,
                "method": method,
                "n_kernels": n,
                "time_us_total": per_kernel * n,
                "us_per_kernel": per_kernel,
                "gpu_us_per_kernel": gpu,
                "reps": reps,
            },
        )

    x = torch.ones(1024, device=dev, dtype=dt)
    y = torch.ones(1024, device=dev, dtype=dt)
    o = torch.empty_like(x)

    def inplace_chain():
        for _ in range(chain):
            x.add_(1.0)

    def outofplace_chain():
        z = x
        for _ in range(chain):
            z = z + 1.0
        return z

    for name, fn, method in (
        ("eager_chain_inplace", inplace_chain, "x.add_(1) x1000, wall-clock / 1000"),
        ("eager_chain_outofplace", outofplace_chain, "z = z + 1 x1000, wall-clock / 1000"),
    ):
        try:
            for _ in range(2):
                fn()
            w, g = wall(fn, 1)
            row(name, method, chain, w / chain, g / chain)
        except Exception as exc:
            ctx.error(f"host {name}", exc)

    for name, fn, method in (
        ("bare_launch_add_out", lambda: torch.add(x, y, out=o), "torch.add(a, b, out=c) loop, wall / call"),
        ("bare_launch_add_inplace", lambda: x.add_(y), "a.add_(b) loop, wall / call"),
        ("bare_launch_fill", lambda: o.fill_(1.0), "c.fill_(1) loop, wall / call"),
    ):
        try:
            fn()
            w, g = wall(fn, chain)
            row(name, method, 1, w, g)
        except Exception as exc:
            ctx.error(f"host {name}", exc)

    # -- CUDA graph replay ------------------------------------------------------------------------
    if ctx.cuda:
        try:
            g = capture_graph(torch, inplace_chain)
            g.replay()
            torch.cuda.synchronize()
            w, gpu = wall(g.replay, 5)
            row(
                "graph_chain",
                "1000-kernel CUDA graph replay; CUDA-event span / 1000 (gpu column)",
                chain,
                gpu / chain,
                gpu / chain,
            )
            row("graph_chain_wall", "1000-kernel CUDA graph replay; wall-clock / 1000", chain, w / chain, gpu / chain)
            g1 = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g1):
                x.add_(1.0)
            g1.replay()
            torch.cuda.synchronize()
            w, gpu = wall(g1.replay, chain)
            row("graph_launch_1kernel", "one-kernel graph: replay() loop, wall / replay", 1, w, gpu)
            del g, g1
        except Exception as exc:
            ctx.error("host graph replay", exc)
        try:  # GPU time of one tiny kernel, in isolation (profiler)
            ks = ctx.kernels(lambda: x.add_(1.0), calls=20)
            if ks:
                row("tiny_kernel_gpu_time", f"profiler: {ks[0]['kernel'][:80]}", 1, ks[0]["time_us"], ks[0]["time_us"])
        except Exception as exc:
            ctx.error("host tiny kernel profile", exc)

    # -- per-op host cost at tiny sizes -----------------------------------------------------------------
    a = torch.randn(16, 64, device=dev, dtype=dt)
    w_ = torch.randn(64, 64, device=dev, dtype=dt)
    b_ = torch.randn(64, device=dev, dtype=dt)
    img = torch.randn(1, 64, 4, 4, device=dev, dtype=dt)
    q = torch.randn(1, 2, 16, 64, device=dev, dtype=dt)
    conv_w = torch.randn(64, 64, 3, 3, device=dev, dtype=dt)
    ops = (
        ("op_linear_bias", lambda: F.linear(a, w_, b_)),
        ("op_group_norm", lambda: F.group_norm(img, 32, b_, b_, 1e-5)),
        ("op_layer_norm", lambda: F.layer_norm(a, (64,), b_, b_, 1e-5)),
        ("op_silu", lambda: F.silu(a)),
        ("op_sdpa", lambda: F.scaled_dot_product_attention(q, q, q)),
        ("op_conv2d_3x3_bias", lambda: F.conv2d(img, conv_w, b_, padding=1)),
    )
    for name, fn in ops:
        if ctx.out_of_time(f"host {name}"):
            return
        try:
            n_k = None
            try:
                n_k = round(sum(k["calls"] for k in ctx.kernels(fn, calls=5))) if ctx.cuda else None
            except Exception as exc:
                ctx.error(f"host {name} (profile)", exc)
            for _ in range(3):
                fn()
            w, g = wall(fn, 200)
            ctx.write(
                "host",
                COLUMNS,
                {
                    "benchmark": name,
                    "method": "tiny-size op loop, wall / call (us_per_kernel column = per op)",
                    "n_kernels": n_k,
                    "time_us_total": w,
                    "us_per_kernel": w / n_k if n_k else None,
                    "gpu_us_per_kernel": g,
                    "reps": reps,
                },
            )
        except Exception as exc:
            ctx.error(f"host {name}", exc)
