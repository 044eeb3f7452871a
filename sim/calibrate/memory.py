"""Memory-bound kernels: GroupNorm (with its per-kernel breakdown), LayerNorm, softmax,
elementwise add/mul/SiLU/GELU at 64 KB..1 GB, broadcast bias adds, contiguous copies (the
device-to-device peak), permutes/transposes (NCHW->NHWC, (b,f,c,h,w)->(b*h*w,f,c), head
splits), channel concatenation and nearest upsampling.

gbs counts the bytes each op must read plus write once (weights/bias included), over the
median L2-flushed time. groupnorm.csv splits PyTorch's GroupNorm into its kernels: `stats`
(RowwiseMoments: one thread block per (sample, group) reduces C/G*H*W elements), `params`
(ComputeFusedParams) and `apply` (the elementwise normalize + affine);
stats_gbs_per_block = input bytes / stats time / (N*groups).
"""

from __future__ import annotations

import re

from ._bench import Context, short_kernel

COLUMNS = ["benchmark", "op", "shape", "numel", "dtype", "bytes", "time_us", "min_us", "gbs", "kernels"]
GN_COLUMNS = [
    "benchmark",
    "N",
    "C",
    "H",
    "W",
    "groups",
    "blocks",
    "dtype",
    "bytes",
    "time_us",
    "min_us",
    "gbs",
    "kernel_sum_us",
    "stats_us",
    "params_us",
    "apply_us",
    "other_us",
    "stats_gbs",
    "stats_gbs_per_block",
    "apply_gbs",
    "kernels",
]
GN_KCOLUMNS = ["N", "C", "H", "W", "groups", "role", "kernel", "launches", "time_us"]

# SD 1.5 UNet activations per level (batch 2) and VAE decoder activations (NCHW)
UNET_VAE_ACTIVATIONS = (
    (2, 320, 64, 64), (2, 640, 32, 32), (2, 1280, 16, 16), (2, 1280, 8, 8), (1, 128, 512, 512), (1, 512, 128, 128),
)  # fmt: skip


def gn_role(kernel: str) -> str:
    k = kernel.lower()
    if re.search(r"moments|welford|reduce", k):
        return "stats"
    if "fusedparams" in k or "computefused" in k or "params" in k:
        return "params"
    if kernel.startswith(("Memcpy", "Memset")):
        return "other"
    return "apply"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:g}MiB"


def run_groupnorm(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    if ctx.quick:
        cfgs = [(2, 64, 8, 8, 32), (1, 32, 16, 16, 32)]
    else:
        cfgs = [(2, c, s, s, 32) for c in (320, 640, 1280) for s in (64, 32, 16, 8)]
        cfgs += [
            (1, 512, 64, 64, 32),
            (1, 512, 128, 128, 32),
            (1, 512, 256, 256, 32),
            (1, 256, 256, 256, 32),
            (1, 256, 512, 512, 32),
            (1, 128, 512, 512, 32),
        ]  # SD VAE decoder levels
        cfgs += [(n, 320, 32, 32, 32) for n in (1, 4, 8, 16, 32, 64)]  # parallelism series (N*groups blocks)
        cfgs += [(32, 640, 16, 16, 32), (32, 1280, 8, 8, 32)]  # ModelScope frames-as-batch
    for n, c, h, w, g in cfgs:
        what = f"groupnorm N{n} C{c} {h}x{w} G{g}"
        if ctx.out_of_time(what):
            return
        try:
            x = torch.randn(n, c, h, w, device=ctx.device, dtype=ctx.dtype)
            wt = torch.randn(c, device=ctx.device, dtype=ctx.dtype)
            bs = torch.randn(c, device=ctx.device, dtype=ctx.dtype)

            def fn(x=x, wt=wt, bs=bs, g=g):
                return F.group_norm(x, g, wt, bs, 1e-5)

            r = ctx.bench(fn)
            t = r["time_us"]
            xb = x.numel() * x.element_size()
            row = {
                "benchmark": "group_norm",
                "N": n,
                "C": c,
                "H": h,
                "W": w,
                "groups": g,
                "blocks": n * g,
                "dtype": ctx.dtype_name,
                "bytes": 2 * xb + 4 * c,
                "time_us": t,
                "min_us": r["min_us"],
                "gbs": (2 * xb + 4 * c) / t / 1e3,
            }
            try:
                ks = ctx.kernels(fn)
                sums = {"stats": 0.0, "params": 0.0, "apply": 0.0, "other": 0.0}
                for kr in ks:
                    kr["role"] = gn_role(kr["kernel"])
                    sums[kr["role"]] += kr["time_us"]
                    ctx.write(
                        "groupnorm_kernels",
                        GN_KCOLUMNS,
                        {
                            "N": n,
                            "C": c,
                            "H": h,
                            "W": w,
                            "groups": g,
                            "role": kr["role"],
                            "kernel": kr["kernel"],
                            "launches": kr["calls"],
                            "time_us": kr["time_us"],
                        },
                    )
                row.update(
                    kernel_sum_us=sum(sums.values()),
                    stats_us=sums["stats"],
                    params_us=sums["params"],
                    apply_us=sums["apply"],
                    other_us=sums["other"],
                    kernels=";".join(f"{kr['role']}:{short_kernel(kr['kernel'], 90)}" for kr in ks),
                )
                if sums["stats"] > 0:
                    row["stats_gbs"] = xb / sums["stats"] / 1e3
                    row["stats_gbs_per_block"] = row["stats_gbs"] / (n * g)
                if sums["apply"] > 0:
                    row["apply_gbs"] = 2 * xb / sums["apply"] / 1e3
            except Exception as exc:
                ctx.error(f"{what} (profile)", exc)
            ctx.write("groupnorm", GN_COLUMNS, row)
        except Exception as exc:
            ctx.error(what, exc)


def run(ctx: Context) -> None:
    torch = ctx.torch
    F = torch.nn.functional
    dev, dt = ctx.device, ctx.dtype
    esz = torch.empty(0, dtype=dt).element_size()

    def measure(bench: str, op: str, shape, fn, nbytes: float, profile: bool = False, **kw) -> None:
        what = f"{bench} {op} {shape}"
        if ctx.out_of_time(what):
            raise TimeoutError
        try:
            r = ctx.bench(fn, **kw)
            t = r["time_us"]
            numel = 1
            for s in shape:
                numel *= s
            row = {
                "benchmark": bench,
                "op": op,
                "shape": "x".join(map(str, shape)),
                "numel": numel,
                "dtype": ctx.dtype_name,
                "bytes": nbytes,
                "time_us": t,
                "min_us": r["min_us"],
                "gbs": nbytes / t / 1e3,
            }
            if profile:
                try:
                    ks = ctx.kernels(fn, calls=2)
                    row["kernels"] = ";".join(f"{short_kernel(kr['kernel'], 100)}={kr['time_us']:.1f}us" for kr in ks)
                except Exception as exc:
                    ctx.error(f"{what} (profile)", exc)
            ctx.write("memory", COLUMNS, row)
        except TimeoutError:
            raise
        except Exception as exc:
            ctx.error(what, exc)

    def rnd(*shape):
        return torch.randn(*shape, device=dev, dtype=dt)

    try:
        # -- device-to-device copy: the bandwidth peak ------------------------------------------
        peak = [1 << 20] if ctx.quick else [1 << 30, 2 << 30, 4 << 30]
        for nbytes in peak:
            a, b = (
                torch.empty(nbytes // esz, device=dev, dtype=dt).normal_(),
                torch.empty(nbytes // esz, device=dev, dtype=dt),
            )
            measure(
                "copy_peak",
                "copy_",
                (nbytes // esz,),
                lambda a=a, b=b: b.copy_(a),
                2.0 * nbytes,
                flush=False,
                target_ms=100,
                min_reps=10,
            )
            del a, b

        sizes = (
            [64 << 10, 1 << 20]
            if ctx.quick
            else [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30]
        )
        # -- elementwise -----------------------------------------------------------------------
        for nbytes in sizes:
            n = nbytes // esz
            a, b = rnd(n), rnd(n)
            out = torch.empty_like(a)
            prof = nbytes == sizes[0] or nbytes == sizes[-1]
            measure("elementwise", "add", (n,), lambda a=a, b=b, o=out: torch.add(a, b, out=o), 3.0 * nbytes, prof)
            measure("elementwise", "mul", (n,), lambda a=a, b=b, o=out: torch.mul(a, b, out=o), 3.0 * nbytes)
            measure("elementwise", "add_scalar_inplace", (n,), lambda a=a: a.add_(1.0), 2.0 * nbytes)
            measure("elementwise", "silu", (n,), lambda a=a: F.silu(a), 2.0 * nbytes, prof)
            measure("elementwise", "gelu", (n,), lambda a=a: F.gelu(a), 2.0 * nbytes)
            measure("elementwise", "gelu_tanh", (n,), lambda a=a: F.gelu(a, approximate="tanh"), 2.0 * nbytes)
            measure("copy", "copy_", (n,), lambda a=a, o=out: o.copy_(a), 2.0 * nbytes)
            del a, b, out

        # -- broadcast bias add ------------------------------------------------------------------
        bias4 = [(2, 8, 8, 8)] if ctx.quick else list(UNET_VAE_ACTIVATIONS)
        for shape in bias4:
            x, bb = rnd(*shape), rnd(shape[1])
            nb = 2.0 * x.numel() * esz + shape[1] * esz
            measure("bias_add", "nchw+c11", shape, lambda x=x, bb=bb: x + bb.view(1, -1, 1, 1), nb)
        bias2 = (
            [(64, 32)]
            if ctx.quick
            else [(8192, 320), (2048, 640), (512, 1280), (2048, 5120), (8192, 1280), (35552, 1920)]
        )
        for shape in bias2:
            x, bb = rnd(*shape), rnd(shape[1])
            nb = 2.0 * x.numel() * esz + shape[1] * esz
            measure("bias_add", "tc+c", shape, lambda x=x, bb=bb: x + bb, nb)

        # -- permutes / transposes ---------------------------------------------------------------
        nchw = [(2, 8, 8, 8)] if ctx.quick else [*UNET_VAE_ACTIVATIONS, (1, 512, 64, 64)]
        for shape in nchw:
            x = rnd(*shape)
            o = torch.empty(shape[0], shape[2], shape[3], shape[1], device=dev, dtype=dt)
            nb = 2.0 * x.numel() * esz
            measure(
                "permute", "nchw_to_nhwc", shape, lambda x=x, o=o: o.copy_(x.permute(0, 2, 3, 1)), nb, shape == nchw[0]
            )
            xl = rnd(shape[0], shape[2], shape[3], shape[1])
            o2 = torch.empty(*shape, device=dev, dtype=dt)
            measure("permute", "nhwc_to_nchw", shape, lambda x=xl, o=o2: o.copy_(x.permute(0, 3, 1, 2)), nb)
            measure(
                "permute",
                "channels_last_contiguous",
                shape,
                lambda x=x: x.contiguous(memory_format=torch.channels_last),
                nb,
            )
        bfchw = (
            [(1, 4, 8, 4, 4)]
            if ctx.quick
            else [(2, 16, 320, 32, 32), (2, 16, 640, 16, 16), (2, 16, 1280, 8, 8), (2, 16, 320, 64, 64)]
        )
        for shape in bfchw:
            b_, f_, c_, h_, w_ = shape
            x = rnd(*shape)
            nb = 2.0 * x.numel() * esz
            o = torch.empty(b_, h_, w_, f_, c_, device=dev, dtype=dt)
            measure(
                "permute",
                "bfchw_to_bhw_f_c",
                shape,
                lambda x=x, o=o: o.copy_(x.permute(0, 3, 4, 1, 2)),
                nb,
                shape == bfchw[0],
            )
            y = rnd(b_ * h_ * w_, f_, c_)
            o2 = torch.empty(*shape, device=dev, dtype=dt)
            measure(
                "permute",
                "bhw_f_c_to_bfchw",
                shape,
                lambda y=y, o=o2, s=shape: o.copy_(y.view(s[0], s[3], s[4], s[1], s[2]).permute(0, 3, 4, 1, 2)),
                nb,
            )
            # UNet3D's temporal transformer input: (b*f, c, h, w) -> (b*h*w, f, c)
        heads = (
            [(2, 64, 5, 8)]
            if ctx.quick
            else [(2, 4096, 5, 64), (2, 4096, 8, 40), (2, 1024, 8, 80), (2, 17776, 30, 64), (2, 4096, 16, 72)]
        )
        for shape in heads:
            x = rnd(*shape)
            o = torch.empty(shape[0], shape[2], shape[1], shape[3], device=dev, dtype=dt)
            nb = 2.0 * x.numel() * esz
            measure("permute", "bshd_to_bhsd", shape, lambda x=x, o=o: o.copy_(x.transpose(1, 2)), nb)
        mats = [(64, 64)] if ctx.quick else [(8192, 320), (8192, 1280), (4096, 4096), (35552, 1920)]
        for shape in mats:
            x = rnd(*shape)
            o = torch.empty(shape[1], shape[0], device=dev, dtype=dt)
            measure("permute", "transpose_2d", shape, lambda x=x, o=o: o.copy_(x.t()), 2.0 * x.numel() * esz)

        # -- cat and upsample (UNet skip connections, up blocks) -----------------------------------
        cats = [(2, 8, 8, 8)] if ctx.quick else [(2, 1280, 16, 16), (2, 640, 32, 32), (2, 320, 64, 64), (2, 1280, 8, 8)]
        for shape in cats:
            x, y = rnd(*shape), rnd(*shape)
            measure("cat", "cat_dim1", shape, lambda x=x, y=y: torch.cat([x, y], dim=1), 4.0 * x.numel() * esz)
            measure(
                "upsample",
                "nearest_2x",
                shape,
                lambda x=x: F.interpolate(x, scale_factor=2.0, mode="nearest"),
                5.0 * x.numel() * esz,
                shape == cats[0],
            )

        # -- LayerNorm and softmax -----------------------------------------------------------------
        lns = (
            [(64, 32)]
            if ctx.quick
            else [(t, w) for w in (320, 640, 1152, 1280, 4096) for t in (128, 512, 2048, 8192, 32768)]
        )
        if not ctx.quick:
            lns += [(35552, 1920), (8192, 1152)]
        for t, w in lns:
            x, g, bb = rnd(t, w), rnd(w), rnd(w)
            measure(
                "layer_norm",
                "layer_norm",
                (t, w),
                lambda x=x, g=g, bb=bb, w=w: F.layer_norm(x, (w,), g, bb, 1e-5),
                2.0 * x.numel() * esz + 2 * w * esz,
                (t, w) == lns[0] or (t, w) == (8192, 1152),
            )
        sms = (
            [(64, 16)]
            if ctx.quick
            else [
                (16 * 4096, 4096),
                (16 * 1024, 1024),
                (256 * 256, 256),
                (4096 * 64, 64),
                (40960 * 16, 16),
                (16 * 4096, 77),
                (16 * 1024, 77),
                (64 * 4096, 4096),
            ]
        )
        for r_, c_ in sms:
            x = rnd(r_, c_)
            measure(
                "softmax",
                "softmax_lastdim",
                (r_, c_),
                lambda x=x: x.softmax(dim=-1),
                2.0 * x.numel() * esz,
                (r_, c_) == sms[0],
            )
    except TimeoutError:
        return
