"""Execution regimes the first sweeps did not cover, each row timed with CUDA events (`time_us`) and
split into its kernels by the profiler (`kernel_us`, `kernels`), written to regimes.csv:

  cold_weights  a chain of F.linear calls over the same weight (L2-resident after the first call, as
                in a microbenchmark) vs over distinct weights whose sum exceeds the L2 (each read
                from DRAM, as in a forward pass): `kernel_us` per launch and graph replay per launch
  conv3d        temporal convolutions (kernel 3x1x1, NCDHW, bias) as video UNets run them: cuDNN's
                layout transposes, the conv and the bias add split out
  strided       pointwise kernels over non-contiguous views: GEGLU's gelu and mul of the two
                chunk halves, a residual add of a permuted 5-D view; contiguous twins for reference
  sustained     cuDNN fused attention (CogVideoX size) and a 1 GiB elementwise add back to back for
                ~2 s each: rate over time (power cap / clocks; the GEMM is in scaling.csv)

Columns as scaling.csv; bytes = what the op must read + write once.
"""

from __future__ import annotations

from ._bench import Context, capture_graph
from .scaling import COLUMNS, _guard, _row, _sweep, sustained_rows

FAMILY = "regimes"
# (M, K, N) of DiT-XL/2 (256^2, batch 2) linears, and a larger-M twin
COLD_SHAPES = ((512, 1152, 1152), (512, 1152, 4608), (512, 4608, 1152), (2, 1152, 6912), (4096, 1152, 1152))
CHAIN = 48  # launches per chain; distinct weights: 48 x >= 2.6 MB > the 60 MB L2
# (batch, channels, frames, height, width) of ModelScope's temporal convs (16 frames, 256^2, batch 2)
CONV3D_SHAPES = ((2, 320, 16, 32, 32), (2, 640, 16, 16, 16), (2, 1280, 16, 8, 8), (2, 1280, 16, 4, 4))
# (tokens, inner) of GEGLU feed-forwards (SD 1.5 and ModelScope widths)
GEGLU_SHAPES = ((32768, 1280), (8192, 2560), (2048, 5120), (8192, 1280), (512, 5120))


def run(ctx: Context) -> None:
    for part in (_cold_weights, _conv3d, _strided, _sustained):
        if not part(ctx):
            return


def _cold_weights(ctx: Context) -> bool:
    torch = ctx.torch
    F = torch.nn.functional
    chain = 4 if ctx.quick else CHAIN

    def body(m: int, k: int, n: int) -> None:
        x = torch.randn(m, k, device=ctx.device, dtype=ctx.dtype)
        ws = [torch.randn(n, k, device=ctx.device, dtype=ctx.dtype) for _ in range(chain)]
        shape = f"{chain}x{m}x{k}x{n}"
        nbytes = x.element_size() * (m * k + k * n + m * n)
        for op, weights in (("hot", [ws[0]] * chain), ("cold", ws)):
            fn = lambda weights=weights: [F.linear(x, w) for w in weights]  # noqa: E731
            _row(ctx, "cold_weights", op, shape, nbytes * chain, 2.0 * m * k * n * chain, fn, family=FAMILY,
                 flush=False, target_ms=5.0, max_reps=20)  # fmt: skip
            if ctx.cuda:
                graph = capture_graph(torch, fn)
                _row(ctx, "cold_weights", f"{op}_graph", shape, nbytes * chain, 2.0 * m * k * n * chain, graph.replay,
                     profile=False, family=FAMILY, flush=False, target_ms=5.0, max_reps=20)  # fmt: skip
                del graph

    return _sweep(ctx, "cold_weights", COLD_SHAPES[:1] if ctx.quick else COLD_SHAPES, body)


def _conv3d(ctx: Context) -> bool:
    torch = ctx.torch

    def body(b: int, c: int, f: int, h: int, w: int) -> None:
        conv = torch.nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0)).to(ctx.device, ctx.dtype)
        x = torch.randn(b, c, f, h, w, device=ctx.device, dtype=ctx.dtype)
        es = x.element_size()
        nbytes = es * (2 * x.numel() + conv.weight.numel())
        with torch.no_grad():
            _row(ctx, "conv3d", "temporal_3x1x1", f"{b}x{c}x{f}x{h}x{w}", nbytes, 2.0 * x.numel() * c * 3,
                 lambda: conv(x), family=FAMILY, target_ms=5.0, max_reps=30)  # fmt: skip

    return _sweep(ctx, "conv3d", ((1, 8, 4, 4, 4),) if ctx.quick else CONV3D_SHAPES, body)


def _strided(ctx: Context) -> bool:
    torch = ctx.torch
    F = torch.nn.functional

    def body(t: int, inner: int) -> None:
        h = torch.randn(t, 2 * inner, device=ctx.device, dtype=ctx.dtype)
        a, gate = h.chunk(2, dim=-1)
        g = F.gelu(gate)
        flat = gate.contiguous()
        n, es = a.numel(), h.element_size()
        shape = f"{t}x{inner}"
        for op, fn, nbytes in (("gelu_chunk", lambda: F.gelu(gate), 2 * n), ("mul_chunk", lambda: a * g, 3 * n),
                               ("gelu_contiguous", lambda: F.gelu(flat), 2 * n), ("mul_contiguous", lambda: flat * g, 3 * n)):  # fmt: skip
            _row(ctx, "strided", op, shape, es * nbytes, 0.0, fn, family=FAMILY, target_ms=5.0, max_reps=30)

    ok = _sweep(ctx, "strided", ((64, 32),) if ctx.quick else GEGLU_SHAPES, body)

    def residual(b: int, c: int, f: int, hh: int, w: int) -> None:
        # (b*f, c, h, w) frames viewed as (b, c, f, h, w) and added to a contiguous (b, c, f, h, w)
        frames = torch.randn(b * f, c, hh, w, device=ctx.device, dtype=ctx.dtype)
        view = frames.view(b, f, c, hh, w).permute(0, 2, 1, 3, 4)
        y = torch.randn(b, c, f, hh, w, device=ctx.device, dtype=ctx.dtype)
        nbytes = 3 * y.numel() * y.element_size()
        shape = f"{b}x{c}x{f}x{hh}x{w}"
        _row(ctx, "strided", "add_permuted5d", shape, nbytes, 0.0, lambda: view + y, family=FAMILY, target_ms=5.0,
             max_reps=30)  # fmt: skip
        _row(ctx, "strided", "add_contiguous5d", shape, nbytes, 0.0, lambda: y + y, family=FAMILY, target_ms=5.0,
             max_reps=30)  # fmt: skip

    return ok and _sweep(ctx, "strided_add", ((1, 8, 4, 4, 4),) if ctx.quick else CONV3D_SHAPES[:2], residual)


def _sustained(ctx: Context) -> bool:
    torch = ctx.torch
    if not ctx.cuda:
        return True
    F = torch.nn.functional

    def attention() -> None:
        q, k, v = (torch.randn(2, 30, 17776, 64, device=ctx.device, dtype=ctx.dtype) for _ in range(3))
        flops = 4.0 * 2 * 30 * 17776 * 17776 * 64
        sustained_rows(ctx, FAMILY, "sdpa@", "2x30x17776x64", flops, 0.0,
                       lambda: F.scaled_dot_product_attention(q, k, v), per_window=10)  # fmt: skip

    def elementwise() -> None:
        x = torch.randn(1 << 29, device=ctx.device, dtype=ctx.dtype)
        y = torch.empty_like(x)
        nbytes = 3.0 * x.numel() * x.element_size()
        sustained_rows(ctx, FAMILY, "add@", "536870912", 0.0, nbytes, lambda: torch.add(x, x, out=y), per_window=20)

    return _guard(ctx, "regimes sustained sdpa", attention) and _guard(ctx, "regimes sustained add", elementwise)


__all__ = ["COLUMNS", "run"]
