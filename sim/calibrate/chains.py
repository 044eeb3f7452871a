"""Small kernels as a forward pass runs them: chains of dependent kernels replayed from a CUDA graph,
each kernel's input produced by the kernel before it, weights read cold. Every row is one chain:

  time_us     CUDA-event time of one graph replay of the whole chain (no L2 flush: the chain is the
              workload), i.e. kernels + the device gaps between them
  kernel_us   the profiler's kernel time of one replay (CUPTI reports graph kernels; empty if not)
  launches    kernels per replay (profiled), `kernels`: their names and times
and a twin row (op `<op>/eager`) with the profiler's kernel time of the same chain launched eagerly
(the GPU idles between kernels while the host dispatches, as in the profiled eager forwards).

  elementwise  z = z + x, contiguous, numel 2^12..2^26: per-kernel cost against size and grid
  broadcast    z = z * (1 + s) style: z + v[:, None, :] with v a chunk view of an adaLN vector
  layer_norm   F.layer_norm over rows of 1152 (and 4096), rows 2..65536: one thread block per row
  linear       F.linear with bias over distinct (cold) weights, M = 2..4096 x (1152, 1152) and
               up/down pairs (K != N: 1152 -> 4608 -> 1152 as DiT's feed-forward), alone
               (linear -> linear) and inside a block-like chain (LayerNorm -> linear(s) -> residual
               add); the twin chain without the linears gives their cost in context by difference
  tiny         kernels of a few thread blocks (embedding gather of 2 rows, [2, 1152] SiLU)

bytes/flops are per chain (what its kernels must read + write once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._bench import Context, capture_graph, short_kernel
from .scaling import COLUMNS, _guard, _sweep

FAMILY = "chains"
LENGTH = 48  # kernels (or groups) per chain
EW_SIZES = (1 << 12, 1 << 14, 1 << 16, 1 << 18, 589824, 1 << 20, 2359296, 1 << 22, 1 << 24, 1 << 26)
BCAST_TOKENS = (64, 256, 1024, 4096, 16384)  # x 2 samples x 1152
LN_ROWS = (2, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
LN_WIDTHS = (1152, 4096)
LINEAR_SHAPES = ((2, 1152, 1152), (64, 1152, 1152), (256, 1152, 1152), (512, 1152, 1152), (1024, 1152, 1152),
                 (2048, 1152, 1152), (4096, 1152, 1152), (512, 1152, 4608), (2, 1152, 6912), (8192, 1152, 4608))  # fmt: skip


def run(ctx: Context) -> None:
    if not ctx.cuda:  # graph replay needs CUDA; the harness test runs the chains eagerly only
        ctx.log("chains: CPU device, eager chains only")
    for part in (_elementwise, _broadcast, _layer_norm, _linear, _tiny):
        if not part(ctx):
            return


def chain_row(ctx: Context, bench: str, op: str, shape: str, nbytes: float, flops: float,
              chain: Callable[[], Any], family: str = FAMILY) -> None:  # fmt: skip
    """Rows of one chain (in `family`'s CSV): graph replay (event time + profiled graph kernels), and
    its eager kernels."""
    base = {"benchmark": bench, "shape": shape, "dtype": ctx.dtype_name, "bytes": nbytes, "flops": flops or None}
    if ctx.cuda:
        graph = capture_graph(ctx.torch, chain)
        r = ctx.bench(graph.replay, flush=False, target_ms=10.0, max_reps=30)
        ks = ctx.kernels(graph.replay, calls=3)
        ctx.write(family, COLUMNS, {**base, "op": op, "time_us": r["time_us"], "min_us": r["min_us"], **_kernels(ks)})
        del graph
    ks = ctx.kernels(chain, calls=2)
    ctx.write(family, COLUMNS, {**base, "op": f"{op}/eager", **_kernels(ks)})


def _kernels(ks: list[dict[str, Any]]) -> dict[str, Any]:
    ks = [k for k in ks if not k["kernel"].startswith("Memcpy")]
    if not ks:
        return {}
    return {"kernel_us": sum(k["time_us"] for k in ks), "launches": sum(k["calls"] for k in ks),
            "kernels": ";".join(f"{short_kernel(k['kernel'], 90)}={k['time_us']:.1f}us" for k in ks)}  # fmt: skip


def _length(ctx: Context) -> int:
    return 4 if ctx.quick else LENGTH


def add_chain(x: Any, n_k: int) -> Callable[[], Any]:
    """`n_k` dependent adds `z = z + x` (each reads the add before it)."""

    def chain() -> Any:
        z = x
        for _ in range(n_k):
            z = z + x
        return z

    return chain


def _elementwise(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _length(ctx)

    def body(n: int) -> None:
        x = torch.randn(n, device=ctx.device, dtype=ctx.dtype)
        chain_row(ctx, "elementwise", "add", str(n), 3.0 * n * x.element_size() * n_k, 0.0, add_chain(x, n_k))

    return _sweep(ctx, "chains elementwise", [(n,) for n in (EW_SIZES[:2] if ctx.quick else EW_SIZES)], body)


def _broadcast(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _length(ctx)

    def body(tokens: int) -> None:
        x = torch.randn(2, tokens, 1152, device=ctx.device, dtype=ctx.dtype)
        mod = torch.randn(2, 6 * 1152, device=ctx.device, dtype=ctx.dtype)
        shift = mod.chunk(6, dim=1)[2]  # a non-contiguous [2, 1152] view, as adaLN's chunks

        def chain() -> Any:
            z = x
            for _ in range(n_k):
                z = z + shift[:, None, :]
            return z

        chain_row(ctx, "broadcast", "add_chunk", f"2x{tokens}x1152", 2.0 * x.numel() * x.element_size() * n_k, 0.0,
                  chain)  # fmt: skip

    return _sweep(ctx, "chains broadcast", [(t,) for t in (BCAST_TOKENS[:1] if ctx.quick else BCAST_TOKENS)], body)


def _layer_norm(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _length(ctx)
    F = torch.nn.functional

    def body(rows: int, w: int) -> None:
        x = torch.randn(rows, w, device=ctx.device, dtype=ctx.dtype)
        g = torch.ones(w, device=ctx.device, dtype=ctx.dtype)

        def chain() -> Any:
            z = x
            for _ in range(n_k):
                z = F.layer_norm(z, (w,), g, g, 1e-6)
            return z

        chain_row(ctx, "layer_norm", "layer_norm", f"{rows}x{w}", 2.0 * x.numel() * x.element_size() * n_k, 0.0,
                  chain)  # fmt: skip

    cases = [(r, w) for w in LN_WIDTHS for r in LN_ROWS if r * w <= (1 << 28)]
    return _sweep(ctx, "chains layer_norm", [(16, 64)] if ctx.quick else cases, body)


def _linear(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _length(ctx)
    F = torch.nn.functional

    def body(m: int, k: int, n: int) -> None:
        # square: one linear per step; k != n: an up (k -> n) and a down (n -> k) projection per step
        dims = [(k, n)] if k == n else [(k, n), (n, k)]
        steps = [[(torch.randn(o, i, device=ctx.device, dtype=ctx.dtype) * 0.03,
                   torch.randn(o, device=ctx.device, dtype=ctx.dtype)) for i, o in dims] for _ in range(n_k)]  # fmt: skip
        x = torch.randn(m, k, device=ctx.device, dtype=ctx.dtype)
        g = torch.ones(k, device=ctx.device, dtype=ctx.dtype)
        es, shape = x.element_size(), f"{m}x{k}x{n}"
        lin = es * n_k * sum(m * i + i * o + m * o + o for i, o in dims)
        flops = 2.0 * m * n_k * sum(i * o for i, o in dims)
        pointwise = 5.0 * m * k * es * n_k  # LayerNorm (read + write) + residual add (2 reads + write)

        def chain(norm: bool, linear: bool) -> Callable[[], Any]:
            def run_chain() -> Any:
                z = x
                for step in steps:
                    h = F.layer_norm(z, (k,), g, g, 1e-6) if norm else z
                    if linear:
                        for w, b in step:
                            h = F.linear(h, w, b)
                    z = z + h if norm else h
                return z

            return run_chain

        chain_row(ctx, "linear", "alone", shape, lin, flops, chain(False, True))
        chain_row(ctx, "linear", "block", shape, lin + pointwise, flops, chain(True, True))
        chain_row(ctx, "linear", "block_pointwise", shape, pointwise, 0.0, chain(True, False))

    return _sweep(ctx, "chains linear", [(8, 64, 64)] if ctx.quick else LINEAR_SHAPES, body)


def _tiny(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _length(ctx)
    F = torch.nn.functional

    def body() -> None:
        table = torch.randn(1001, 1152, device=ctx.device, dtype=ctx.dtype)
        idx = torch.tensor([3, 7], device=ctx.device)
        v = torch.randn(2, 1152, device=ctx.device, dtype=ctx.dtype)

        def gather() -> Any:
            return [F.embedding(idx, table) for _ in range(n_k)]

        def silu() -> Any:
            z = v
            for _ in range(n_k):
                z = F.silu(z)
            return z

        nbytes = 2.0 * 2 * 1152 * table.element_size() * n_k
        chain_row(ctx, "tiny", "embedding_2rows", "2x1152", nbytes, 0.0, gather)
        chain_row(ctx, "tiny", "silu", "2x1152", nbytes, 0.0, silu)

    return _guard(ctx, "chains tiny", body)


__all__ = ["COLUMNS", "add_chain", "chain_row", "run"]
