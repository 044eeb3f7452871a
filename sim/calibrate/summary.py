"""calibration.yaml: the constants derived from the CSV rows, each with a comment that names
the rows it comes from. Written by hand (not yaml.dump) so the comments survive; it parses
with yaml.safe_load."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable
from typing import Any

Row = dict[str, Any]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _sel(rows: Iterable[Row], **eq: Any) -> list[Row]:
    return [r for r in rows if all(str(r.get(k)) == str(v) for k, v in eq.items())]


def _vals(rows: Iterable[Row], col: str) -> list[float]:
    return [v for v in (_num(r.get(col)) for r in rows) if v is not None]


def _med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _max(xs: list[float]) -> float | None:
    return max(xs) if xs else None


def _min(xs: list[float]) -> float | None:
    return min(xs) if xs else None


def _r(v: float | None, nd: int = 3) -> Any:
    if v is None:
        return None
    return float(f"{v:.{nd}g}") if abs(v) < 1e5 else round(v)


class _Yaml:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.values: dict[str, Any] = {}

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}" if text else "")

    def section(self, name: str) -> None:
        self.lines.append(f"{name}:")

    def put(self, key: str, value: Any, why: str, indent: int = 2) -> None:
        self.values[key] = value
        if value is None:
            text = "null"
            why = f"NOT MEASURED -- {why}"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value)
        elif isinstance(value, str):
            text = json.dumps(value)
        else:
            text = repr(value)
        self.lines.append(f"{' ' * indent}{key}: {text}  # {why}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def write(out: str, info: dict[str, Any], rows: dict[str, list[Row]], skipped: list[str], argv: list[str]) -> str:
    y = _Yaml()
    y.comment("GPU calibration constants for ttvsim, measured by `python -m sim.calibrate` (sim/calibrate/).")
    y.comment("Each constant names the CSV rows (file: benchmark/filters, statistic) it is derived from.")
    y.comment(
        "Times are medians of L2-flushed CUDA-event-timed repeats after warm-up; GB/s counts bytes read + written."
    )
    y.section("device")
    for k, v in info.items():
        y.lines.append(f"  {k}: {json.dumps(v)}")
    y.lines.append(f"  command: {json.dumps('python -m sim.calibrate ' + ' '.join(argv))}")

    gemm = rows.get("gemm", [])
    y.section("gemm")
    y.put(
        "peak_tflops",
        _r(_max(_vals(_sel(gemm, benchmark="peak"), "tflops"))),
        f"gemm.csv benchmark=peak (8192^3 torch.matmul {info.get('dtype', 'float16')}, random normal, 20-200 repeats): tflops",
    )
    y.put("max_tflops_any_shape", _r(_max(_vals(gemm, "tflops"))), "gemm.csv all rows: max tflops")
    best = max(gemm, key=lambda r: _num(r.get("tflops")) or 0.0) if gemm else None
    y.put(
        "max_tflops_shape",
        f"{best['api']} M={best['M']} K={best['K']} N={best['N']}" if best else None,
        "gemm.csv: the row of max_tflops_any_shape",
    )
    sq = {int(r["M"]): _r(_num(r["tflops"])) for r in _sel(gemm, benchmark="square", api="linear")}
    y.put("square_linear_tflops", sq or None, "gemm.csv benchmark=square api=linear (x @ w^T): tflops by M=K=N")
    sq = {int(r["M"]): _r(_num(r["tflops"])) for r in _sel(gemm, benchmark="square", api="matmul")}
    y.put("square_matmul_tflops", sq or None, "gemm.csv benchmark=square api=matmul (x @ w): tflops by M=K=N")
    y.put(
        "small_m_weight_gbs_m1",
        _r(_max(_vals(_sel(gemm, benchmark="small_m", M=1), "gbs"))),
        "gemm.csv benchmark=small_m M=1 (K,N = 4096/11008): max gbs (weight streaming)",
    )
    sm = {int(r["M"]): _r(_num(r["time_us"])) for r in _sel(gemm, benchmark="small_m", K=4096, N=4096)}
    y.put("small_m_4096x4096_time_us", sm or None, "gemm.csv benchmark=small_m K=N=4096: time_us by M")
    unet = _sel(gemm, benchmark="unet")
    by_m = {}
    for m in sorted({int(r["M"]) for r in unet}, reverse=True):
        by_m[m] = _r(_med(_vals(_sel(unet, M=m), "tflops")))
    y.put("unet_median_tflops_by_m", by_m or None, "gemm.csv benchmark=unet: median tflops over K,N in 320..5120, by M")
    y.put("min_gemm_time_us", _r(_min(_vals(gemm, "time_us"))), "gemm.csv all rows: min time_us (GEMM kernel floor)")

    mem = rows.get("memory", [])
    y.section("memory")
    y.put(
        "copy_peak_gbs",
        _r(_max(_vals(_sel(mem, benchmark="copy_peak"), "gbs"))),
        "memory.csv benchmark=copy_peak (1-4 GiB copy_, no flush): max gbs (read + write)",
    )
    big_ew = [r for r in _sel(mem, benchmark="elementwise") if (_num(r.get("numel")) or 0) * 2 >= 256 << 20]
    y.put(
        "elementwise_gbs",
        _r(_med(_vals(big_ew, "gbs"))),
        "memory.csv benchmark=elementwise, tensors >= 256 MiB (add/mul/add_/silu/gelu/gelu_tanh): median gbs",
    )
    per_op = {}
    for op in ("add", "mul", "add_scalar_inplace", "silu", "gelu", "gelu_tanh"):
        per_op[op] = _r(_max(_vals(_sel(big_ew, op=op), "gbs")))
    y.put(
        "elementwise_gbs_by_op",
        per_op if any(per_op.values()) else None,
        "memory.csv benchmark=elementwise op=*, tensors >= 256 MiB: max gbs",
    )
    ew = _sel(mem, benchmark="elementwise")
    smallest = _min([_num(r["numel"]) or 0 for r in ew]) if ew else None
    small = [r for r in ew if _num(r["numel"]) == smallest]
    y.put(
        "elementwise_floor_us",
        _r(_med(_vals(small, "time_us"))),
        "memory.csv benchmark=elementwise at the smallest size (64 KiB tensors, L2 flushed): median time_us = per-kernel floor",
    )
    copies = _sel(mem, benchmark="copy")
    y.put(
        "copy_gbs_by_size",
        {str(int(_num(r["numel"]) or 0) * 2): _r(_num(r["gbs"])) for r in copies} or None,
        "memory.csv benchmark=copy: gbs by tensor bytes (L2 flushed)",
    )
    y.put(
        "bias_add_gbs",
        _r(_med(_vals(_sel(mem, benchmark="bias_add"), "gbs"))),
        "memory.csv benchmark=bias_add (nchw+c11 and tc+c): median gbs",
    )
    perms = _sel(mem, benchmark="permute")
    tp = {}
    for op in sorted({r["op"] for r in perms}):
        tp[op] = _r(_med(_vals(_sel(perms, op=op), "gbs")))
    y.put("transpose_gbs", _r(_med(_vals(perms, "gbs"))), "memory.csv benchmark=permute (all ops): median gbs")
    y.put("transpose_gbs_by_op", tp or None, "memory.csv benchmark=permute: median gbs per op")
    y.put("cat_gbs", _r(_med(_vals(_sel(mem, benchmark="cat"), "gbs"))), "memory.csv benchmark=cat: median gbs")
    y.put(
        "upsample_nearest_gbs",
        _r(_med(_vals(_sel(mem, benchmark="upsample"), "gbs"))),
        "memory.csv benchmark=upsample (input read + 4x output write): median gbs",
    )
    y.put(
        "layer_norm_gbs_max",
        _r(_max(_vals(_sel(mem, benchmark="layer_norm"), "gbs"))),
        "memory.csv benchmark=layer_norm: max gbs",
    )
    y.put(
        "layer_norm_gbs_median",
        _r(_med(_vals(_sel(mem, benchmark="layer_norm"), "gbs"))),
        "memory.csv benchmark=layer_norm: median gbs over tokens 128..35552 x width 320..4096",
    )
    y.put(
        "softmax_gbs_max",
        _r(_max(_vals(_sel(mem, benchmark="softmax"), "gbs"))),
        "memory.csv benchmark=softmax: max gbs",
    )

    gn = rows.get("groupnorm", [])
    y.section("groupnorm")
    unet_gn = [r for r in gn if str(r.get("N")) == "2" and str(r.get("groups")) == "32"]
    y.put(
        "stats_gbs_per_block_median",
        _r(_med(_vals(unet_gn, "stats_gbs_per_block"))),
        "groupnorm.csv N=2 groups=32 (SD UNet sizes): median stats_gbs_per_block = input bytes / stats-kernel time / (N*groups)",
    )
    y.put(
        "stats_gbs_per_block_max",
        _r(_max(_vals(gn, "stats_gbs_per_block"))),
        "groupnorm.csv all rows: max stats_gbs_per_block",
    )
    y.put(
        "stats_gbs_per_block_by_config",
        {
            f"N{r['N']}_C{r['C']}_{r['H']}x{r['W']}": _r(_num(r.get("stats_gbs_per_block")))
            for r in gn
            if _num(r.get("stats_gbs_per_block")) is not None
        }
        or None,
        "groupnorm.csv: stats_gbs_per_block per configuration",
    )
    y.put(
        "stats_gbs_by_blocks_series",
        {
            int(r["blocks"]): _r(_num(r.get("stats_gbs")))
            for r in gn
            if str(r.get("C")) == "320" and str(r.get("H")) == "32" and _num(r.get("stats_gbs")) is not None
        }
        or None,
        "groupnorm.csv C=320 32x32, N=1..64: whole-kernel stats gbs by thread blocks (N*groups)",
    )
    y.put("apply_gbs_median", _r(_med(_vals(gn, "apply_gbs"))), "groupnorm.csv: median apply_gbs (read + write)")
    y.put(
        "total_gbs_median_unet",
        _r(_med(_vals(unet_gn, "gbs"))),
        "groupnorm.csv N=2 groups=32: median end-to-end gbs (x read + y written / event time; at small sizes the "
        "event time includes the host gaps between the op's 3 kernel launches)",
    )
    y.put(
        "total_gbs_kernels_median_unet",
        _r(_med([_num(r["bytes"]) / _num(r["kernel_sum_us"]) / 1e3 for r in unet_gn if _num(r.get("kernel_sum_us"))])),
        "groupnorm.csv N=2 groups=32: median bytes / kernel_sum_us (the 3 kernels' GPU time only)",
    )
    y.put(
        "kernel_sum_us_by_config",
        {
            f"N{r['N']}_C{r['C']}_{r['H']}x{r['W']}": _r(_num(r.get("kernel_sum_us")))
            for r in gn
            if _num(r.get("kernel_sum_us")) is not None
        }
        or None,
        "groupnorm.csv: kernel_sum_us (stats + params + apply kernels) per configuration",
    )

    conv = rows.get("conv", [])
    y.section("conv")
    c33 = [r for r in conv if str(r.get("benchmark")).startswith("conv3x3") and str(r.get("stride")) == "1"]
    for layout in ("nchw", "channels_last"):
        y.put(
            f"conv3x3_median_tflops_{layout}",
            _r(_med(_vals(_sel(c33, layout=layout), "tflops"))),
            f"conv.csv benchmark=conv3x3* stride 1 layout={layout}: median tflops (events, incl. transposes/bias)",
        )
        y.put(
            f"conv3x3_max_tflops_{layout}",
            _r(_max(_vals(_sel(c33, layout=layout), "tflops"))),
            f"conv.csv benchmark=conv3x3* stride 1 layout={layout}: max tflops",
        )
    for layout in ("nchw", "channels_last"):
        y.put(
            f"conv3x3_median_tflops_{layout}_conv_kernel_only",
            _r(
                _med(
                    [
                        2.0
                        * float(r["N"])
                        * float(r["Cout"])
                        * (float(r["H"]) // int(r["stride"])) ** 2
                        * float(r["Cin"])
                        * 9
                        / _num(r["conv_us"])
                        / 1e6
                        for r in _sel(c33, layout=layout)
                        if _num(r.get("conv_us"))
                    ]
                )
            ),
            f"conv.csv benchmark=conv3x3* stride 1 layout={layout}: median FLOPs / conv_us (the implicit-GEMM "
            f"kernels alone, no transposes or bias)",
        )
    fr = []
    for r in _sel(conv, layout="nchw"):
        t, k = _num(r.get("transpose_us")), _num(r.get("kernel_sum_us"))
        if t is not None and k:
            fr.append(t / k)
    y.put(
        "nchw_transpose_share_median",
        _r(_med(fr)),
        "conv.csv layout=nchw: median transpose_us / kernel_sum_us (cuDNN nchwToNhwc/nhwcToNchw kernels)",
    )
    y.put(
        "nchw_transpose_gbs_median",
        _r(_med(_vals(_sel(conv, layout="nchw"), "transpose_gbs"))),
        "conv.csv layout=nchw: median transpose_gbs (input+weight+output, read + write, over transpose kernel time)",
    )
    y.put(
        "channels_last_transpose_us_median",
        _r(_med(_vals(_sel(conv, layout="channels_last"), "transpose_us"))),
        "conv.csv layout=channels_last: median transpose_us (expected ~0)",
    )
    y.put(
        "bias_share_median",
        _r(
            _med(
                [(_num(r.get("bias_us")) or 0) / _num(r["kernel_sum_us"]) for r in conv if _num(r.get("kernel_sum_us"))]
            )
        ),
        "conv.csv all rows: median bias_us / kernel_sum_us (separate bias-add kernel)",
    )
    ratio = []
    for r in _sel(conv, layout="nchw"):
        key = {k: r[k] for k in ("benchmark", "N", "Cin", "Cout", "H", "ksize", "stride")}
        cl = _sel(_sel(conv, layout="channels_last"), **key)
        if cl and _num(cl[0].get("time_us")) and _num(r.get("time_us")):
            ratio.append(_num(r["time_us"]) / _num(cl[0]["time_us"]))
    y.put(
        "nchw_over_channels_last_time_median",
        _r(_med(ratio)),
        "conv.csv: median time_us(nchw) / time_us(channels_last) over matching layers",
    )

    att = rows.get("attention", [])
    y.section("attention")
    for be in ("flash", "efficient", "cudnn", "math", "default", "unfused"):
        y.put(
            f"{be}_max_tflops",
            _r(_max(_vals(_sel(att, benchmark=be), "tflops"))),
            f"attention.csv benchmark={be}: max tflops (4*BH*Sq*Skv*D / time)",
        )
    for d in (64, 128):
        y.put(
            f"flash_tflops_seq4096_d{d}",
            _r(_max(_vals(_sel(att, benchmark="flash", seq_q=4096, head_dim=d), "tflops"))),
            f"attention.csv benchmark=flash seq 4096 head_dim {d}: max over batch*heads",
        )
    fused = [
        r
        for r in att
        if r.get("benchmark") in ("default", "flash", "efficient", "cudnn") and (_num(r.get("head_dim")) or 999) <= 64
    ]
    y.put(
        "sfu_bound_gscores_s",
        _r(_max(_vals(fused, "gscores_s"))),
        "attention.csv fused backends (default/flash/efficient/cudnn), head_dim <= 64: max gscores_s = scores "
        "(softmax exp()s) per second, G/s; time no longer falls with head_dim here, so this is the exp/SFU ceiling",
    )
    y.put(
        "sfu_bound_gscores_s_flash",
        _r(_max(_vals(_sel(fused, benchmark="flash"), "gscores_s"))),
        "attention.csv benchmark=flash (FlashAttention-2) head_dim <= 64: max gscores_s",
    )
    y.put("sfu_bound_gscores_s_any", _r(_max(_vals(att, "gscores_s"))), "attention.csv all rows: max gscores_s")
    tmp = [r for r in att if str(r.get("seq_q")) == "16" and (_num(r.get("bh")) or 0) >= 10240]
    y.put(
        "temporal_seq16_by_backend",
        {f"{r['benchmark']}_bh{r['bh']}_d{r['head_dim']}": _r(_num(r.get("time_us"))) for r in tmp} or None,
        "attention.csv seq 16, batch*heads >= 10240 (temporal attention): time_us by backend",
    )
    sp = []
    for r in _sel(att, benchmark="unfused"):
        f = _sel(att, benchmark="flash", seq_q=r["seq_q"], seq_kv=r["seq_kv"], head_dim=r["head_dim"], bh=r["bh"])
        if f and _num(f[0].get("time_us")):
            sp.append(_num(r["time_us"]) / _num(f[0]["time_us"]))
    y.put(
        "unfused_over_flash_time_median",
        _r(_med(sp)),
        "attention.csv: median time_us(unfused) / time_us(flash), same shapes",
    )
    y.put(
        "unfused_over_flash_time_max", _r(_max(sp)), "attention.csv: max time_us(unfused) / time_us(flash), same shapes"
    )
    defaults = sorted(
        {k.split("=")[0] for r in _sel(att, benchmark="default") for k in str(r.get("kernels") or "").split(";") if k}
    )
    y.put(
        "default_backend_kernels",
        defaults[:12] or None,
        "attention.csv benchmark=default: kernels column (PyTorch's own choice)",
    )

    host = rows.get("host", [])
    y.section("host")

    def h(bench: str, col: str = "us_per_kernel") -> float | None:
        return _r(_max(_vals(_sel(host, benchmark=bench), col)))

    y.put(
        "eager_us_per_kernel",
        h("eager_chain_inplace"),
        "host.csv eager_chain_inplace: wall-clock / 1000 dependent x.add_(1) from Python (dispatch + launch)",
    )
    y.put(
        "eager_us_per_kernel_outofplace",
        h("eager_chain_outofplace"),
        "host.csv eager_chain_outofplace: wall / 1000 (z = z + 1: dispatch + allocator + launch)",
    )
    y.put(
        "bare_launch_us", h("bare_launch_add_out"), "host.csv bare_launch_add_out: torch.add(a, b, out=c) wall / call"
    )
    y.put(
        "graph_us_per_kernel",
        h("graph_chain"),
        "host.csv graph_chain: CUDA-event span of one replay of a 1000-kernel CUDA graph / 1000 (kernel + gap)",
    )
    y.put(
        "graph_launch_us",
        h("graph_launch_1kernel"),
        "host.csv graph_launch_1kernel: wall per replay() of a one-kernel graph",
    )
    y.put(
        "tiny_kernel_gpu_us",
        h("tiny_kernel_gpu_time"),
        "host.csv tiny_kernel_gpu_time: profiler duration of one 1024-element add",
    )
    per_op = {}
    for r in host:
        if str(r.get("benchmark", "")).startswith("op_"):
            per_op[r["benchmark"][3:]] = _r(_num(r.get("time_us_total")))
    y.put(
        "eager_us_per_op",
        per_op or None,
        "host.csv op_*: wall-clock per call at tiny sizes (whole op, all its kernels)",
    )

    y.comment("")
    y.comment("What failed or was skipped (see log.txt):")
    if skipped:
        for s in skipped[:60]:
            y.comment("  " + s.replace("\n", " ")[:200])
        if len(skipped) > 60:
            y.comment(f"  ... and {len(skipped) - 60} more")
    else:
        y.comment("  nothing")
    path = os.path.join(out, "calibration.yaml")
    with open(path, "w") as f:
        f.write(y.text())
    return path


def load_rows(out: str) -> dict[str, list[Row]]:
    """Re-read the CSVs of a finished run (for re-deriving calibration.yaml offline)."""
    import csv

    rows: dict[str, list[Row]] = {}
    for name in os.listdir(out):
        if name.endswith(".csv"):
            with open(os.path.join(out, name), newline="") as f:
                rows[name[:-4]] = list(csv.DictReader(f))
    return rows
