"""conv2d sweep over Stable-Diffusion-UNet-like layers, NCHW (PyTorch's default) and
channels_last, eager F.conv2d with bias, cudnn.benchmark left at its default (off).

Each configuration is timed (CUDA events, L2 flushed, median) and profiled once: the kernels it
launches are split into roles -- `transpose` (cuDNN's nchwToNhwc / nhwcToNchw layout
conversions), `bias` (PyTorch's separate elementwise bias add), `conv` (the implicit-GEMM
kernel(s)) and `other` -- so the cost of running NCHW tensors through NHWC kernels is measured
directly. conv.csv has one row per (layer, layout); conv_kernels.csv one row per kernel.
"""

from __future__ import annotations

import re

from ._bench import Context, short_kernel

COLUMNS = [
    "benchmark",
    "layout",
    "N",
    "Cin",
    "Cout",
    "H",
    "W",
    "ksize",
    "stride",
    "dtype",
    "time_us",
    "min_us",
    "tflops",
    "gbs",
    "kernel_sum_us",
    "n_kernels",
    "conv_us",
    "transpose_us",
    "bias_us",
    "other_us",
    "transpose_gbs",
    "kernels",
]
KCOLUMNS = [*COLUMNS[: COLUMNS.index("stride") + 1], "role", "kernel", "launches", "time_us"]
_TRANSPOSE = re.compile(r"nchwtonhwc|nhwctonchw|transpose|permute|layout", re.I)


def role(kernel: str) -> str:
    if _TRANSPOSE.search(kernel):
        return "transpose"
    if "elementwise" in kernel.lower():
        return "bias"
    if kernel.startswith(("Memcpy", "Memset")):
        return "other"
    return "conv"


def configs(quick: bool) -> list[tuple[str, int, int, int, int, int, int]]:
    """(benchmark, N, Cin, Cout, H(=W), ksize, stride)."""
    if quick:
        return [("conv3x3", 1, 8, 8, 8, 3, 1), ("conv1x1", 1, 8, 16, 8, 1, 1)]
    out = []
    for hw in (64, 32, 16, 8):
        for c in (320, 640, 1280):
            out.append(("conv3x3", 2, c, c, hw, 3, 1))
    for hw in (64, 32, 16, 8):
        for c in (320, 640, 1280):
            out.append(("conv1x1", 2, c, c, hw, 1, 1))
    out += [
        ("conv3x3_in", 2, 4, 320, 64, 3, 1),  # conv_in
        ("conv3x3_out", 2, 320, 4, 64, 3, 1),  # conv_out
        ("conv3x3_chg", 2, 320, 640, 32, 3, 1),
        ("conv3x3_chg", 2, 640, 1280, 16, 3, 1),
        ("conv3x3_chg", 2, 1280, 640, 32, 3, 1),
        ("conv3x3_chg", 2, 640, 320, 64, 3, 1),
        ("conv3x3_chg", 2, 2560, 1280, 16, 3, 1),
        ("conv3x3_chg", 2, 960, 320, 64, 3, 1),
        ("conv1x1_skip", 2, 640, 320, 64, 1, 1),
        ("conv1x1_skip", 2, 2560, 1280, 16, 1, 1),
        ("conv3x3_down", 2, 320, 320, 64, 3, 2),
        ("conv3x3_down", 2, 640, 640, 32, 3, 2),
        ("conv3x3_down", 2, 1280, 1280, 16, 3, 2),
        # SD VAE decoder (batch 1)
        ("vae_conv3x3", 1, 512, 512, 64, 3, 1),
        ("vae_conv3x3", 1, 512, 512, 128, 3, 1),
        ("vae_conv3x3", 1, 256, 256, 256, 3, 1),
        ("vae_conv3x3", 1, 128, 128, 512, 3, 1),
        ("vae_conv3x3", 1, 128, 3, 512, 3, 1),
    ]
    return out


def run(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    for bench, n, cin, cout, hw, k, stride in configs(ctx.quick):
        for layout in ("nchw", "channels_last"):
            what = f"conv {bench} {layout} N{n} {cin}->{cout} {hw}x{hw} k{k}s{stride}"
            if ctx.out_of_time(what):
                return
            try:
                x = torch.randn(n, cin, hw, hw, device=ctx.device, dtype=ctx.dtype)
                w = torch.randn(cout, cin, k, k, device=ctx.device, dtype=ctx.dtype) * 0.05
                b = torch.randn(cout, device=ctx.device, dtype=ctx.dtype)
                if layout == "channels_last":
                    x = x.contiguous(memory_format=torch.channels_last)
                    w = w.contiguous(memory_format=torch.channels_last)

                def fn(x=x, w=w, b=b, stride=stride, pad=k // 2):
                    return F.conv2d(x, w, b, stride=stride, padding=pad)

                r = ctx.bench(fn)
                t = r["time_us"]
                ho = (hw + 2 * (k // 2) - k) // stride + 1
                flops = 2.0 * n * cout * ho * ho * cin * k * k
                nbytes = 2.0 * (n * cin * hw * hw + cout * cin * k * k + n * cout * ho * ho)
                row = {
                    "benchmark": bench,
                    "layout": layout,
                    "N": n,
                    "Cin": cin,
                    "Cout": cout,
                    "H": hw,
                    "W": hw,
                    "ksize": k,
                    "stride": stride,
                    "dtype": ctx.dtype_name,
                    "time_us": t,
                    "min_us": r["min_us"],
                    "tflops": flops / t / 1e6,
                    "gbs": nbytes / t / 1e3,
                }
                try:
                    ks = ctx.kernels(fn)
                    sums = {"conv": 0.0, "transpose": 0.0, "bias": 0.0, "other": 0.0}
                    for kr in ks:
                        kr["role"] = role(kr["kernel"])
                        sums[kr["role"]] += kr["time_us"]
                        ctx.write(
                            "conv_kernels",
                            KCOLUMNS,
                            {
                                **row,
                                "role": kr["role"],
                                "kernel": kr["kernel"],
                                "launches": kr["calls"],
                                "time_us": kr["time_us"],
                            },
                        )
                    # the transposes convert input, weight and output: each read once and written once
                    tbytes = 2.0 * 2 * (n * cin * hw * hw + cout * cin * k * k + n * cout * ho * ho)
                    row.update(
                        kernel_sum_us=sum(sums.values()),
                        n_kernels=sum(kr["calls"] for kr in ks),
                        conv_us=sums["conv"],
                        transpose_us=sums["transpose"],
                        bias_us=sums["bias"],
                        other_us=sums["other"],
                        transpose_gbs=tbytes / sums["transpose"] / 1e3 if sums["transpose"] > 0 else None,
                        kernels=";".join(f"{kr['role']}:{short_kernel(kr['kernel'], 90)}" for kr in ks),
                    )
                except Exception as exc:
                    ctx.error(f"{what} (profile)", exc)
                ctx.write("conv", COLUMNS, row)
            except Exception as exc:
                ctx.error(what, exc)
