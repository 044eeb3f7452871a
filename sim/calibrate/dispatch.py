"""Kernel choices PyTorch makes from alignment and dtype, each row timed (CUDA events, L2 flushed)
and split into its kernels by the profiler, as `scaling.py`:

  softmax_unaligned  F.softmax over rows whose length is not a multiple of 16 bytes (the shared-memory
                     kernel needs aligned rows; PyTorch falls back to its generic block kernel),
                     next to aligned rows between the measured lengths, fp16, 512 MiB
  softmax_fp32       F.softmax in fp32 (diffusers' `upcast_attention`: scores in fp32), by row length
  bgemm_fp32         the unfused attention's score GEMM with fp32 q and k (upcast_attention) and
                     `allow_tf32` off (PyTorch's default): CUDA-core SGEMM, not tensor cores
  gemm_fp32          square fp32 matmuls (tf32 off) for the CUDA-core FP32 rate
  cast               fp16 -> fp32 and fp32 -> fp16 copies (`.float()`, `.to(fp16)`)
  cat_cache          a KV-cache append: cat([cache, new], dim=2) of [b, h, s, d] caches, the cache
                     contiguous or a cropped view (transformers' DynamicCache after `crop`)

bytes = what the op must read + write once; gbs = bytes / kernel_us; tflops = flops / kernel_us.
"""

from __future__ import annotations

import math
from typing import Any

from ..arch.gpu import SOFTMAX_FP32_ROW_LENGTHS, SOFTMAX_REG_ROWS, SOFTMAX_UNALIGNED_ROW_LENGTHS
from ._bench import Context
from .scaling import _row, _sweep

FAMILY = "dispatch"
# fp16 rows: the register kernel's range every 256 (its rate varies with the row's fit to the block),
# aligned and 4 mod 8 (unaligned); unaligned rows across the other regimes, odd lengths, and aligned
# rows where the shared-memory kernel takes over
# (the rows sim.arch.gpu's softmax tables list, and a few more)
UNALIGNED = (1030, 2052, *(r + 4 for r in SOFTMAX_REG_ROWS), *SOFTMAX_UNALIGNED_ROW_LENGTHS[2:], 4097, 9677, 17777)
ALIGNED_GAPS = (*SOFTMAX_REG_ROWS, 9672, 10240)
FP32_ROWS = SOFTMAX_FP32_ROW_LENGTHS
# (Lq, Lk, head_dim, batch*heads): SD 2.1 768^2 batch 2 (5/10/20 heads of 64), generic
BGEMM_FP32 = ((9216, 9216, 64, 10), (2304, 2304, 64, 20), (576, 576, 64, 40), (144, 144, 64, 40), (9216, 77, 64, 10),
              (4096, 4096, 64, 16), (1024, 1024, 64, 16), (4096, 77, 64, 16))  # fmt: skip
GEMM_FP32 = (1024, 2048, 4096, 8192)
CASTS = (1 << 20, 1 << 24, 1 << 27)
# (batch, heads, cached tokens, head_dim): LLaMA-2-7B per layer
CACHES = ((1, 32, 512, 128), (1, 32, 2048, 128), (8, 32, 512, 128), (1, 32, 8192, 128), (4, 32, 1024, 128))


def run(ctx: Context) -> None:
    for part in (_softmax, _bgemm, _gemm, _cast, _cat):
        if not part(ctx):
            return


def _softmax(ctx: Context) -> bool:
    torch = ctx.torch
    total = 1 << (12 if ctx.quick else 28)  # elements (512 MiB fp16, 1 GiB fp32)
    rows16 = UNALIGNED[:3] if ctx.quick else UNALIGNED + ALIGNED_GAPS
    rows32 = FP32_ROWS[:2] if ctx.quick else FP32_ROWS
    cases = [(max(1, total // w), w, 16) for w in rows16] + [(max(1, total // w), w, 32) for w in rows32]

    def body(rows: int, w: int, bits: int) -> None:
        dtype = ctx.dtype if bits == 16 else torch.float32
        x = torch.randn(rows, w, device=ctx.device, dtype=dtype)
        op = "softmax_unaligned" if bits == 16 and (w * 2) % 16 else "softmax_lastdim"
        _row(ctx, "softmax" if bits == 16 else "softmax_fp32", op, f"{rows}x{w}", 2.0 * x.numel() * x.element_size(),
             0.0, lambda: x.softmax(dim=-1), family=FAMILY, dtype=str(dtype).replace("torch.", ""),
             target_ms=10.0, max_reps=30)  # fmt: skip

    return _sweep(ctx, "softmax", cases, body)


def _no_tf32(ctx: Context) -> Any:
    ctx.torch.backends.cuda.matmul.allow_tf32 = False
    return ctx.torch.float32


def _bgemm(ctx: Context) -> bool:
    torch = ctx.torch
    f32 = _no_tf32(ctx)

    def body(lq: int, lk: int, d: int, bh: int) -> None:
        q = torch.randn(bh, lq, d, device=ctx.device, dtype=f32)
        k = torch.randn(bh, lk, d, device=ctx.device, dtype=f32)

        def qk() -> Any:
            empty = torch.empty(bh, lq, lk, dtype=f32, device=q.device)
            return torch.baddbmm(empty, q, k.transpose(-1, -2), beta=0, alpha=1.0 / math.sqrt(d))

        _row(ctx, "bgemm_fp32", "baddbmm_qk", f"{bh}x{lq}x{lk}x{d}", 4.0 * (bh * (lq + lk) * d + bh * lq * lk),
             2.0 * bh * lq * lk * d, qk, family=FAMILY, dtype="float32", target_ms=10.0, max_reps=30)  # fmt: skip

    return _sweep(ctx, "bgemm_fp32", ((16, 16, 64, 64),) if ctx.quick else BGEMM_FP32, body)


def _gemm(ctx: Context) -> bool:
    torch = ctx.torch
    f32 = _no_tf32(ctx)

    def body(n: int) -> None:
        a = torch.randn(n, n, device=ctx.device, dtype=f32)
        b = torch.randn(n, n, device=ctx.device, dtype=f32)
        _row(ctx, "gemm_fp32", "matmul", f"{n}x{n}x{n}", 12.0 * n * n, 2.0 * n**3, lambda: a @ b, family=FAMILY,
             dtype="float32", target_ms=10.0, max_reps=20)  # fmt: skip

    return _sweep(ctx, "gemm_fp32", [(n,) for n in ((64,) if ctx.quick else GEMM_FP32)], body)


def _cast(ctx: Context) -> bool:
    torch = ctx.torch

    def body(n: int) -> None:
        h = torch.randn(n, device=ctx.device, dtype=ctx.dtype)
        f = h.float()
        _row(ctx, "cast", "to_fp32", str(n), 6.0 * n, 0.0, lambda: h.float(), family=FAMILY, target_ms=10.0)
        _row(ctx, "cast", "to_fp16", str(n), 6.0 * n, 0.0, lambda: f.to(ctx.dtype), family=FAMILY, target_ms=10.0)

    return _sweep(ctx, "cast", [(n,) for n in ((4096,) if ctx.quick else CASTS)], body)


def _cat(ctx: Context) -> bool:
    torch = ctx.torch

    def body(b: int, h: int, s: int, d: int) -> None:
        full = torch.randn(b, h, s + 1, d, device=ctx.device, dtype=ctx.dtype)
        cropped = full[:, :, :s, :]  # what DynamicCache.crop leaves: a non-contiguous view
        contiguous = cropped.contiguous()
        new = torch.randn(b, h, 1, d, device=ctx.device, dtype=ctx.dtype)
        nbytes = 2.0 * (2 * b * h * s * d + b * h * d)  # read the cache and the new token, write both
        for op, cache in (("cat_contiguous", contiguous), ("cat_cropped_view", cropped)):
            _row(ctx, "cat_cache", op, f"{b}x{h}x{s}x{d}", nbytes, 0.0, lambda c=cache: torch.cat([c, new], dim=2),
                 family=FAMILY, target_ms=10.0, max_reps=50)  # fmt: skip

    return _sweep(ctx, "cat_cache", ((1, 2, 8, 16),) if ctx.quick else CACHES, body)


__all__ = ["run"]
