"""GEMM shape sweep: F.linear (x[M,K] @ w[N,K]^T, what nn.Linear runs) and torch.matmul.

Rows: square 256..8192 (both APIs), small-M (M = 1..256, the decode / weight-streaming
regime), thin shapes (one dimension 16..128), and UNet-like token x channel shapes
(M = 64..8192 tokens, K, N in {320, 640, 1280, 2560, 5120}); plus the peak row, an 8192^3
torch.matmul timed with more repeats. Operands are random normal fp16; L2 is flushed before
every repeat. tflops = 2MNK / time; gbs = the bytes of A, B and C once each / time.
"""

from __future__ import annotations

from ._bench import Context

COLUMNS = ["benchmark", "api", "M", "K", "N", "dtype", "time_us", "min_us", "tflops", "gbs", "reps"]
UNET_CHANNELS = (320, 640, 1280, 2560, 5120)


def shapes(quick: bool) -> list[tuple[str, str, int, int, int]]:
    if quick:
        return [
            ("square", "linear", 64, 64, 64),
            ("square", "matmul", 128, 128, 128),
            ("small_m", "linear", 1, 256, 256),
            ("thin", "linear", 512, 16, 512),
            ("unet", "linear", 64, 32, 64),
        ]
    out: list[tuple[str, str, int, int, int]] = []
    for n in (256, 512, 1024, 1536, 2048, 3072, 4096, 6144, 8192):
        out += [("square", "linear", n, n, n), ("square", "matmul", n, n, n)]
    for m in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        out += [("small_m", "linear", m, 4096, 4096)]
    for m in (1, 16, 128):
        out += [("small_m", "linear", m, 4096, 11008), ("small_m", "linear", m, 11008, 4096)]
    for m, k, n in (
        (8192, 16, 8192),
        (8192, 32, 8192),
        (8192, 64, 8192),
        (8192, 128, 8192),
        (8192, 8192, 16),
        (8192, 8192, 64),
        (8192, 8192, 128),
        (65536, 64, 64),
        (65536, 320, 64),
        (4096, 40, 4096),
        (4096, 4096, 40),
        (154, 768, 320),
        (154, 768, 1280),
        (240, 4096, 1152),
        (452, 4096, 1920),
    ):
        out += [("thin", "linear", m, k, n)]
    for m in (8192, 4096, 2048, 1024, 512, 256, 128, 64):
        for k in UNET_CHANNELS:
            for n in UNET_CHANNELS:
                out += [("unet", "linear", m, k, n)]
    return out


def run(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    dev, dt = ctx.device, ctx.dtype

    def measure(bench: str, api: str, m: int, k: int, n: int, **kw) -> None:
        a = torch.randn(m, k, device=dev, dtype=dt)
        if api == "linear":
            w = torch.randn(n, k, device=dev, dtype=dt)
            fn = lambda: F.linear(a, w)  # noqa: E731
        else:
            w = torch.randn(k, n, device=dev, dtype=dt)
            fn = lambda: torch.matmul(a, w)  # noqa: E731
        r = ctx.bench(fn, **kw)
        t = r["time_us"]
        ctx.write(
            "gemm",
            COLUMNS,
            {
                "benchmark": bench,
                "api": api,
                "M": m,
                "K": k,
                "N": n,
                "dtype": ctx.dtype_name,
                "time_us": t,
                "min_us": r["min_us"],
                "tflops": 2.0 * m * n * k / t / 1e6,
                "gbs": 2.0 * (m * k + k * n + m * n) / t / 1e3,
                "reps": r["reps"],
            },
        )

    big = 512 if ctx.quick else 8192
    try:
        measure("peak", "matmul", big, big, big, target_ms=200, max_reps=200, min_reps=20)
    except Exception as exc:
        ctx.error("gemm peak", exc)
    for bench, api, m, k, n in shapes(ctx.quick):
        if ctx.out_of_time(f"gemm {bench} {m}x{k}x{n}"):
            break
        try:
            measure(bench, api, m, k, n)
        except Exception as exc:
            ctx.error(f"gemm {bench} {api} {m}x{k}x{n}", exc)
