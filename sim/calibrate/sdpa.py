"""Fused attention kernels timed by the profiler inside CUDA-graph replay chains: 12 dependent
F.scaled_dot_product_attention calls per chain (each call's output is the next call's q, k and v),
cuDNN and FlashAttention-2 forced, over self-attention sequence lengths {64, 256, 1024, 4096} x head
dims {64, 72, 128} x batch*heads {16, 32, 64, 128, 256, 1024, 4096} within a work cap, and sequences
of 8192 and 17776 (head dims 64, 128; batch*heads 2, 8).

`attention.csv` times single calls with CUDA events, whose ~5 us overhead dominates the short
kernels of few thread-block waves (DiT-XL/2's 256-token attention, the temporal attention of video
UNets); here every kernel's duration comes from the profiler (`kernel_us`, per chain, with cuDNN's
memset), so the fixed and per-wave costs of the fused attention model can be fitted to kernel time.
Rows as `chains.py` (graph replay + profiled kernels, and the eager twin).
"""

from __future__ import annotations

from typing import Any

from ._bench import Context
from .chains import chain_row
from .scaling import _guard, _sweep

FAMILY = "sdpa"
LENGTH = 12
SEQS = (64, 256, 1024, 4096)
HEAD_DIMS = (64, 72, 128)
BATCH_HEADS = (16, 32, 64, 128, 256, 1024, 4096)
MAX_FLOPS = 2e12  # per chain
# long sequences (a video DiT's full attention: CogVideoX-2B at 49 frames has 17,776 tokens), cap x 4
LONG = tuple((s, d, bh) for s in (8192, 17776) for d in (64, 128) for bh in (2, 8))


def cases(quick: bool) -> list[tuple[int, int, int]]:
    """(seq, head_dim, batch*heads) within the work cap."""
    if quick:
        return [(16, 64, 2)]
    short = [(s, d, bh) for s in SEQS for d in HEAD_DIMS for bh in BATCH_HEADS if _flops(s, d, bh) <= MAX_FLOPS]
    return short + [c for c in LONG if _flops(*c) <= 4 * MAX_FLOPS]


def _flops(s: int, d: int, bh: int) -> float:
    return 4.0 * bh * s * s * d * LENGTH


def run(ctx: Context) -> None:
    torch, n_k = ctx.torch, (2 if ctx.quick else LENGTH)

    def body(s: int, d: int, bh: int) -> None:
        heads = 8 if bh % 8 == 0 else 1
        x = torch.randn(bh // heads, s, heads, d, device=ctx.device, dtype=ctx.dtype).transpose(1, 2)
        nbytes = float(n_k * 4 * x.numel() * x.element_size())
        sdpa_chain_rows(ctx, x, n_k, FAMILY, f"{s}x{d}x{bh}", nbytes, 4.0 * n_k * bh * s * s * d)

    _sweep(ctx, "sdpa", cases(ctx.quick), body)


BACKENDS = (("cudnn", "CUDNN_ATTENTION"), ("flash", "FLASH_ATTENTION"))


def sdpa_chain_rows(ctx: Context, x: Any, n_k: int, family: str, shape: str, nbytes: float, flops: float,
                    residual: bool = False) -> None:  # fmt: skip
    """Rows (benchmark `sdpa`, op = backend) of `n_k` dependent F.scaled_dot_product_attention calls on
    `x` per forced backend (each call's output the next one's q, k, v; plus a residual add when
    `residual`)."""
    F = ctx.torch.nn.functional
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        ctx.log(f"{family}: torch.nn.attention missing, no SDPA chains")
        return
    for name, backend in BACKENDS:
        if not hasattr(SDPBackend, backend):
            continue

        def chain(be: Any = getattr(SDPBackend, backend)) -> Any:
            z = x
            with sdpa_kernel([be]):
                for _ in range(n_k):
                    o = F.scaled_dot_product_attention(z, z, z)
                    z = z + o if residual else o
            return z

        _guard(ctx, f"{family} sdpa {name} {shape}",
               lambda chain=chain, name=name: chain_row(ctx, "sdpa", name, shape, nbytes, flops, chain, family=family))  # fmt: skip


__all__ = ["cases", "run", "sdpa_chain_rows"]
