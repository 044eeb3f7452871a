"""Device gaps in CUDA-graph replay when consecutive kernels differ, and around cuDNN SDPA's memset.

Measured because a profiled DiT-XL/2 forward replayed from a graph takes 0.4-0.5 us per kernel more
than its kernels (graph replay - the profiled kernel sum), against 0.19 us for the chains of one
repeated kernel (`chains.py`); a forward's consecutive kernels are almost always different functions.

  switch     48 dependent pointwise kernels cycling through F distinct binary kernels (add, mul,
             sub, maximum, minimum, div, hypot, copysign; F = 1, 2, 4, 8) at 2^12..2^24 elements
             (kernels of ~1 to ~25 us): the gap per kernel against F and kernel length
  sdpa       24 dependent F.scaled_dot_product_attention calls per chain at DiT-XL/2's shape
             (2 x 16 heads x 256 tokens x 72) and SD 1.5's 32^2 level, cuDNN (a memset node + its
             kernel per call) vs FlashAttention-2 (one kernel), each followed by a residual add
  launch     graphs of 48..2400 dependent adds (2^12, 2^20, 2^22 elements): replays launched back to
             back (`op` nN, as every chain here), one replay from an idle GPU (nN/synced: the forward
             validation's timing), and the host time of one replay() call (nN/host)

Rows as `chains.py` (graph replay time by CUDA events + the profiled kernels of the same replay,
and the eager twin). bytes/flops are per chain.
"""

from __future__ import annotations

from typing import Any

from ._bench import Context
from .chains import add_chain, chain_row
from .scaling import _sweep
from .sdpa import sdpa_chain_rows

FAMILY = "switch"
LENGTH = 48
SIZES = (1 << 12, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24)
FUNCTIONS = (1, 2, 4, 8)
SDPA_SHAPES = ((2, 16, 256, 72), (2, 8, 1024, 80))  # batch, heads, tokens, head dim


def run(ctx: Context) -> None:
    if not ctx.cuda:
        ctx.log("switch: CPU device, eager chains only")
    if _switch(ctx) and _sdpa(ctx):
        _launch(ctx)


def _switch(ctx: Context) -> bool:
    torch = ctx.torch
    ops = (torch.add, torch.mul, torch.sub, torch.maximum, torch.minimum, torch.div, torch.hypot, torch.copysign)
    n_k = 8 if ctx.quick else LENGTH

    def body(n: int, f: int) -> None:
        x = torch.rand(n, device=ctx.device, dtype=ctx.dtype) + 0.5

        def chain() -> Any:
            z = x
            for i in range(n_k):
                z = ops[i % f](z, x)
            return z

        chain_row(ctx, "switch", f"functions_{f}", str(n), 3.0 * n * x.element_size() * n_k, 0.0, chain, family=FAMILY)

    cases = [(n, f) for n in SIZES for f in FUNCTIONS]
    return _sweep(ctx, "switch", [(4096, 1), (4096, 2)] if ctx.quick else cases, body)


def _sdpa(ctx: Context) -> bool:
    n_k = 2 if ctx.quick else 24

    def body(b: int, h: int, s: int, d: int) -> None:
        x = ctx.torch.randn(b, h, s, d, device=ctx.device, dtype=ctx.dtype)
        nbytes = float(n_k * 7 * x.numel() * x.element_size())
        sdpa_chain_rows(ctx, x, n_k, FAMILY, f"{b}x{h}x{s}x{d}", nbytes, 4.0 * n_k * b * h * s * s * d, residual=True)

    return _sweep(ctx, "switch sdpa", [(1, 2, 16, 64)] if ctx.quick else list(SDPA_SHAPES), body)


def _launch(ctx: Context) -> bool:
    torch = ctx.torch
    import statistics
    import time

    from ._bench import capture_graph
    from .scaling import COLUMNS

    def body(n_k: int, n: int) -> None:
        x = torch.randn(n, device=ctx.device, dtype=ctx.dtype)
        chain = add_chain(x, n_k)
        shape, nbytes = f"{n_k}x{n}", 3.0 * n * x.element_size() * n_k
        chain_row(ctx, "launch", f"n{n_k}", shape, nbytes, 0.0, chain, family=FAMILY)
        if not ctx.cuda:
            return
        graph = capture_graph(torch, chain)
        synced, host = [], []
        for _ in range(10):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            a.record()
            t = time.perf_counter()
            graph.replay()
            host.append((time.perf_counter() - t) * 1e6)
            b.record()
            b.synchronize()
            synced.append(a.elapsed_time(b) * 1e3)
        base = {"benchmark": "launch", "shape": shape, "dtype": ctx.dtype_name, "bytes": nbytes}
        ctx.write(
            FAMILY,
            COLUMNS,
            {**base, "op": f"n{n_k}/synced", "time_us": statistics.median(synced), "min_us": min(synced)},
        )
        ctx.write(
            FAMILY, COLUMNS, {**base, "op": f"n{n_k}/host", "time_us": statistics.median(host), "min_us": min(host)}
        )
        del graph

    cases = [(k, n) for n in (1 << 12, 1 << 20, 1 << 22) for k in (48, 240, 1200, 2400)]
    return _sweep(ctx, "switch launch", [(8, 4096)] if ctx.quick else cases, body)


__all__ = ["run"]
