"""Attention: F.scaled_dot_product_attention with each backend forced (flash, efficient, cudnn,
math) and with PyTorch's own choice (`default`, profiled to name the kernel it picks), and the
unfused path diffusers' classic `AttnProcessor` runs (baddbmm with beta=0 -> softmax -> bmm,
q/k/v as [batch*heads, seq, dim]).

q, k, v are laid out as diffusers makes them ([B, S, H, D] viewed as [B, H, S, D]).
Self-attention over seq {16..4096} x head dim {40..160} x batch*heads {16, 256, 4096}, the
temporal-attention shapes (seq 16, batch*heads = 2*32^2*5 and 2*64^2*5) and SD cross-attention
(77 keys). tflops = 4*BH*Sq*Skv*D / time; gscores_s = BH*Sq*Skv / time (the exp()s per second,
the special-function-unit bound for small head dims); gbs = q, k, v, o bytes once / time.
Shapes over a work cap (5 TFLOP per call; for math/unfused 1 TFLOP and 4 GB of scores) are
skipped.
"""

from __future__ import annotations

import math

from ._bench import Context, short_kernel

COLUMNS = [
    "benchmark",
    "seq_q",
    "seq_kv",
    "head_dim",
    "bh",
    "batch",
    "heads",
    "dtype",
    "time_us",
    "min_us",
    "tflops",
    "gscores_s",
    "gbs",
    "kernels",
]
BACKENDS = ("default", "flash", "efficient", "cudnn", "math", "unfused")


def shapes(quick: bool) -> list[tuple[int, int, int, int]]:
    """(seq_q, seq_kv, head_dim, batch*heads)."""
    if quick:
        return [(16, 16, 64, 16), (64, 64, 40, 16), (32, 77, 80, 16)]
    out = [(16, 16, 64, 10240), (16, 16, 64, 40960), (16, 16, 40, 40960)]  # temporal attention
    out += [(4096, 77, 40, 16), (1024, 77, 80, 16), (256, 77, 160, 16), (64, 77, 160, 16), (4096, 77, 64, 16)]
    for s in (4096, 1024, 256, 64, 16):
        for d in (64, 40, 128, 80, 72, 160):
            for bh in (16, 256, 4096):
                out.append((s, s, d, bh))
    return out


def run(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        SDPBackend = sdpa_kernel = None
    forced = {}
    if SDPBackend is not None:
        for name, attr in (
            ("flash", "FLASH_ATTENTION"),
            ("efficient", "EFFICIENT_ATTENTION"),
            ("cudnn", "CUDNN_ATTENTION"),
            ("math", "MATH"),
        ):
            if hasattr(SDPBackend, attr):
                forced[name] = getattr(SDPBackend, attr)
    dead: set[str] = set()  # backends that failed at every shape so far (fail fast on the rest)
    failures: dict[str, int] = {}

    for sq, skv, d, bh in shapes(ctx.quick):
        heads = 8 if bh % 8 == 0 else 1
        b = bh // heads
        flops = 4.0 * bh * sq * skv * d
        for backend in BACKENDS:
            what = f"attention {backend} sq{sq} skv{skv} d{d} bh{bh}"
            if ctx.out_of_time(what):
                return
            if backend in ("math", "unfused") and (flops > 1e12 or bh * sq * skv * 4 > 4 << 30):
                continue
            if flops > 5e12:
                continue
            if backend in forced or backend in ("default", "unfused"):
                pass
            else:
                continue
            if backend in dead:
                continue
            try:
                q = torch.randn(b, sq, heads, d, device=ctx.device, dtype=ctx.dtype).transpose(1, 2)
                k = torch.randn(b, skv, heads, d, device=ctx.device, dtype=ctx.dtype).transpose(1, 2)
                v = torch.randn(b, skv, heads, d, device=ctx.device, dtype=ctx.dtype).transpose(1, 2)
                if backend == "unfused":
                    # head_to_batch_dim: [B, S, H, D] -> [B*H, S, D] (a copy, outside the timed call)
                    q3, k3, v3 = (x.reshape(bh, x.shape[2], d).contiguous() for x in (q, k, v))
                    scale = 1.0 / math.sqrt(d)

                    def fn(q3=q3, k3=k3, v3=v3, scale=scale):
                        empty = torch.empty(q3.shape[0], q3.shape[1], k3.shape[1], dtype=q3.dtype, device=q3.device)
                        scores = torch.baddbmm(empty, q3, k3.transpose(-1, -2), beta=0, alpha=scale)
                        del empty
                        probs = scores.softmax(dim=-1)
                        del scores
                        return torch.bmm(probs, v3)
                elif backend == "default":

                    def fn(q=q, k=k, v=v):
                        return F.scaled_dot_product_attention(q, k, v)
                else:

                    def fn(q=q, k=k, v=v, be=forced[backend]):
                        with sdpa_kernel([be]):
                            return F.scaled_dot_product_attention(q, k, v)

                r = ctx.bench(fn, target_ms=15.0, max_reps=60)
                t = r["time_us"]
                row = {
                    "benchmark": backend,
                    "seq_q": sq,
                    "seq_kv": skv,
                    "head_dim": d,
                    "bh": bh,
                    "batch": b,
                    "heads": heads,
                    "dtype": ctx.dtype_name,
                    "time_us": t,
                    "min_us": r["min_us"],
                    "tflops": flops / t / 1e6,
                    "gscores_s": bh * sq * skv / t / 1e3,
                    "gbs": 2.0 * (2 * bh * sq * d + 2 * bh * skv * d) / t / 1e3,
                }
                if (backend == "default" and (d in (40, 64) or sq != skv or bh >= 10240)) or (
                    backend == "unfused" and sq >= 256 and bh == 16 and d == 64
                ):
                    try:
                        ks = ctx.kernels(fn, calls=2)
                        row["kernels"] = ";".join(
                            f"{short_kernel(kr['kernel'], 100)}={kr['time_us']:.1f}us" for kr in ks
                        )
                    except Exception as exc:
                        ctx.error(f"{what} (profile)", exc)
                ctx.write("attention", COLUMNS, row)
                failures[backend] = 0
                del q, k, v
            except Exception as exc:
                ctx.error(what, exc)
                failures[backend] = failures.get(backend, 0) + 1
                if failures[backend] >= 6 and backend != "default":
                    ctx.log(f"attention: giving up on backend {backend} after 6 failures in a row")
                    dead.add(backend)
