"""L2 reuse between dependent pointwise kernels, small kernels fed by fresh inputs, and patchify
convolutions. Chains as in `chains.py` (48 steps, graph replay + the eager twin, profiled); every
chain's graph first copies a 2 x 128 MiB buffer (more than the L2), so each replay starts with a
cold L2 and the profiled kernel names separate that copy from the chain's kernels.

  reuse     z = z + x over n elements, n = 2^14..2^22, four ways: `warm` (x the same tensor: both
            operands in L2), `cold_operand` (x a distinct, cold tensor per step: z in L2, x from
            DRAM), `cold` (z_i = x_i + y_i, all distinct and cold), `evicted` (z = z + x with a
            128 MiB copy between steps: z and x evicted by the time the add reads them)
  tiny      [2, 1152] SiLU of 48 distinct fresh inputs (no chain), a SiLU chain over positive values
            (no decay towards denormals), [2, 128] fp32 sin of distinct inputs, a 2-row embedding
            gather from distinct (cold) tables
  patch     eager F.conv2d with bias, kernel = stride (patch embeddings: DiT/PixArt 4 -> 1152,
            CogVideoX 16 -> 1920, ViT 3 -> 768) and the 3x3 conv_in control: event time (L2 flushed)
            and the kernels cuDNN launches (NCHW transposes or not)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._bench import Context
from .chains import chain_row
from .scaling import _guard, _row, _sweep

FAMILY = "reuse"
LENGTH = 48
SIZES = (1 << 14, 1 << 16, 1 << 18, 589824, 1 << 20, 1 << 22)
EVICT_WORDS = 64 << 20  # fp16 words of the eviction copy (128 MiB, > the 50-60 MB L2)
# (N, Cin, H, W, Cout, kernel = stride): patch embeddings, then a 3x3 stride-1 control (kernel 3, stride 1)
PATCHES = ((2, 4, 32, 32, 1152, 2), (2, 4, 64, 64, 1152, 2), (2, 4, 128, 128, 1152, 2), (26, 16, 60, 90, 1920, 2),
           (2, 8, 32, 32, 1152, 2), (2, 3, 224, 224, 768, 16), (2, 4, 64, 64, 320, 3))  # fmt: skip


def run(ctx: Context) -> None:
    for part in (_reuse, _tiny, _patch):
        if not part(ctx):
            return


def _steps(ctx: Context) -> int:
    return 4 if ctx.quick else LENGTH


def _evictor(ctx: Context) -> Callable[[], Any]:
    words = 1 << 12 if ctx.quick else EVICT_WORDS
    a = ctx.torch.empty(words, device=ctx.device, dtype=ctx.dtype)
    b = ctx.torch.empty_like(a)
    return lambda: b.copy_(a)


def _reuse(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _steps(ctx)

    def body(n: int) -> None:
        evict = _evictor(ctx)
        x = torch.randn(n, device=ctx.device, dtype=ctx.dtype)
        xs = [torch.randn(n, device=ctx.device, dtype=ctx.dtype) for _ in range(n_k)]
        ys = [torch.randn(n, device=ctx.device, dtype=ctx.dtype) for _ in range(n_k)]

        def warm() -> Any:
            evict()
            z = x
            for _ in range(n_k):
                z = z + x
            return z

        def cold_operand() -> Any:
            evict()
            z = x
            for xi in xs:
                z = z + xi
            return z

        def cold() -> Any:
            evict()
            return [xi + yi for xi, yi in zip(xs, ys)]

        def evicted() -> Any:
            z = x
            for _ in range(n_k):
                evict()
                z = z + x
            return z

        nbytes = 3.0 * n * x.element_size() * n_k  # the adds' own bytes (reads + write)
        for op, chain in (("warm", warm), ("cold_operand", cold_operand), ("cold", cold), ("evicted", evicted)):
            chain_row(ctx, "reuse", op, str(n), nbytes, 0.0, chain, family=FAMILY)

    return _sweep(ctx, "reuse add", [(n,) for n in (SIZES[:1] if ctx.quick else SIZES)], body)


def _tiny(ctx: Context) -> bool:
    torch, n_k = ctx.torch, _steps(ctx)
    F = torch.nn.functional

    def body() -> None:
        evict = _evictor(ctx)
        vs = [torch.randn(2, 1152, device=ctx.device, dtype=ctx.dtype) for _ in range(n_k)]
        pos = torch.rand(2, 1152, device=ctx.device, dtype=ctx.dtype) + 4.0  # silu(x) ~ x: no decay
        ts = [torch.randn(2, 128, device=ctx.device, dtype=torch.float32) for _ in range(n_k)]
        tables = [torch.randn(1001, 1152, device=ctx.device, dtype=ctx.dtype) for _ in range(n_k)]
        idx = torch.tensor([3, 7], device=ctx.device)

        def silu_distinct() -> Any:
            evict()
            return [F.silu(v) for v in vs]

        def silu_positive() -> Any:
            evict()
            z = pos
            for _ in range(n_k):
                z = F.silu(z)
            return z

        def sin_distinct() -> Any:
            evict()
            return [torch.sin(t) for t in ts]

        def gather_cold() -> Any:
            evict()
            return [F.embedding(idx, t) for t in tables]

        es = vs[0].element_size()
        for op, chain, nbytes in (("silu_distinct", silu_distinct, 2 * 2 * 1152 * es), ("silu_positive", silu_positive, 2 * 2 * 1152 * es),
                                  ("sin_distinct", sin_distinct, 2 * 2 * 128 * 4), ("gather_cold", gather_cold, 2 * 2 * 1152 * es)):  # fmt: skip
            chain_row(ctx, "tiny", op, "", float(nbytes * n_k), 0.0, chain, family=FAMILY)

    return _guard(ctx, "reuse tiny", body)


def _patch(ctx: Context) -> bool:
    torch = ctx.torch
    F = torch.nn.functional

    def body(n: int, cin: int, h: int, w: int, cout: int, k: int) -> None:
        stride, pad = (k, 0) if k != 3 else (1, 1)
        x = torch.randn(n, cin, h, w, device=ctx.device, dtype=ctx.dtype)
        wt = torch.randn(cout, cin, k, k, device=ctx.device, dtype=ctx.dtype) * 0.05
        b = torch.randn(cout, device=ctx.device, dtype=ctx.dtype)
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        es = x.element_size()
        nbytes = float((x.numel() + wt.numel() + n * cout * ho * wo) * es)
        flops = 2.0 * n * cout * ho * wo * cin * k * k
        shape = f"{n}x{cin}x{h}x{w}->{cout}k{k}s{stride}"
        _row(ctx, "patch", "conv2d", shape, nbytes, flops, lambda: F.conv2d(x, wt, b, stride, pad), family=FAMILY)

    cases = [(1, 4, 8, 8, 16, 2)] if ctx.quick else list(PATCHES)
    return _sweep(ctx, "patch conv", cases, body)


__all__ = ["run"]
