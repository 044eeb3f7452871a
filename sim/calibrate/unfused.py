"""diffusers' unfused attention (AttnProcessor) as a chain replayed from a CUDA graph and launched
eagerly: per step the head split copies of q, k, v (`head_to_batch_dim`: reshape + permute +
reshape, a copy each), baddbmm of the scores, softmax, bmm, the head merge copy; the step's output
feeds the next step's q, k and v. Rows as `chains.py` (graph replay + the eager twin, profiled), to
compare each kernel's time in graph replay with its eager time, and the device gap per launch.
"""

from __future__ import annotations

from typing import Any

from ._bench import Context
from .chains import chain_row
from .scaling import _sweep

FAMILY = "unfused"
LENGTH = 12
# (batch, tokens, heads, head_dim): DiT-XL/2 256^2, SD 1.5 UNet 64^2 and 32^2 levels, PixArt-alpha 1024^2
SHAPES = ((2, 256, 16, 72), (2, 4096, 8, 40), (2, 1024, 8, 80), (2, 4096, 16, 72))


def run(ctx: Context) -> None:
    torch, n_k = ctx.torch, (2 if ctx.quick else LENGTH)

    def body(b: int, s: int, h: int, d: int) -> None:
        x = torch.randn(b, s, h * d, device=ctx.device, dtype=ctx.dtype)

        def split(t: Any) -> Any:
            return t.reshape(b, s, h, d).permute(0, 2, 1, 3).reshape(b * h, s, d)

        def chain() -> Any:
            z = x
            for _ in range(n_k):
                q, k, v = split(z), split(z * 1.0), split(z * 1.0)  # three distinct projections' outputs
                empty = torch.empty(b * h, s, s, device=ctx.device, dtype=ctx.dtype)
                probs = torch.baddbmm(empty, q, k.transpose(-1, -2), beta=0, alpha=d**-0.5).softmax(dim=-1)
                o = torch.bmm(probs, v)
                z = o.reshape(b, h, s, d).permute(0, 2, 1, 3).reshape(b, s, h * d)
            return z

        nbytes = float(n_k * (8 * b * s * h * d + 2 * b * h * s * s) * x.element_size())
        chain_row(ctx, "unfused", "attention_step", f"{b}x{s}x{h}x{d}", nbytes, 4.0 * n_k * b * h * s * s * d, chain,
                  family=FAMILY)  # fmt: skip

    _sweep(ctx, "unfused attention", [(1, 16, 2, 8)] if ctx.quick else list(SHAPES), body)


__all__ = ["run"]
