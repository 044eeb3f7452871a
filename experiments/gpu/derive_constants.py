"""Derive the `gpu:` constants of the h200 preset from the committed H200 microbenchmarks.

    python experiments/gpu/derive_constants.py [DIR]     # DIR: arch_configs/calibration/h200

Prints every constant with the CSV rows and the statistic it comes from. Only microbenchmark
files are read (gemm, conv, conv_kernels, attention, memory, groupnorm, host, calibration.yaml,
scaling/scaling.csv, regimes/regimes.csv, chains/chains.csv, switch/switch.csv, sdpa/sdpa.csv);
the end-to-end forwards (forward_*.csv) are never used. Kernel times come from the profiler
(`*_kernels.csv`, `*_us` columns) where the suite recorded them; CUDA-event times of a single
kernel include a fixed event overhead, measured here as event time - profiler time of the same
bias-add kernel, and subtracted from event-timed rows (memory.csv, attention.csv, gemm.csv).
`tests/test_runtime.py` checks that the preset's values equal this script's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from derive_attention import attention_constants

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "arch_configs" / "calibration" / "h200"


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y = a + b x: (a, b)."""
    a = np.c_[np.ones(len(x)), x]
    (p0, p1), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(p0), float(p1)


def derive(d: Path = DEFAULT_DIR) -> dict[str, tuple[float, str]]:
    """Constant name -> (value, source)."""
    ck = pd.read_csv(d / "conv_kernels.csv")
    mem = pd.read_csv(d / "memory.csv")
    gn = pd.read_csv(d / "groupnorm.csv")
    att = pd.read_csv(d / "attention.csv")
    cal = yaml.safe_load((d / "calibration.yaml").read_text())
    out: dict[str, tuple[float, str]] = {}

    # bias-add kernels (profiler): t = floor + bytes / bw, bytes = output read + written
    b = ck[ck.role == "bias"]
    ob = 2 * b.N * b.Cout * (b.H // b.stride) * (b.W // b.stride) * 2
    floor, slope = _fit(ob.to_numpy(float), b.time_us.to_numpy(float))
    out["kernel_floor_us"] = (round(floor, 2), "conv_kernels.csv role=bias: intercept of time_us = floor + bytes/bw")
    out["broadcast_gbs"] = (
        round(1e-3 / slope),
        "conv_kernels.csv role=bias: 1/slope (NCHW + C11 bias add, read + write)",
    )
    # event overhead: memory.csv bias_add (events) - the profiler's bias kernel of the same shape
    diffs = []
    for _, r in mem[mem.op == "nchw+c11"].iterrows():
        n, c, h, w = map(int, r["shape"].split("x"))
        q = b[(b.N == n) & (b.Cout == c) & (b.H == h) & (b.W == w) & (b.stride == 1)]
        if len(q) and r.time_us < 50:
            diffs.append(r.time_us - q.time_us.median())
    ev = float(np.median(diffs))
    out["event_overhead_us"] = (
        round(ev, 2),
        "memory.csv bias_add nchw+c11 (< 50 us) minus conv_kernels.csv bias, same shape: median",
    )

    out.update(_transposes(ck, d / "regimes" / "regimes.csv"))

    def event_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return frame.bytes.to_numpy(float), frame.time_us.to_numpy(float) - ev

    # contiguous elementwise / copies / permutes (event-timed, overhead subtracted)
    e = mem[(mem.benchmark == "elementwise") & mem.op.isin(["add", "mul", "silu", "gelu", "gelu_tanh"])]
    x, y = event_rows(e)
    out["elementwise_gbs"] = (
        round(1e-3 / _fit(x, y)[1]),
        "memory.csv benchmark=elementwise add/mul/silu/gelu/gelu_tanh: 1/slope of kernel time vs bytes",
    )
    p = mem[mem.benchmark == "permute"]
    x, y = event_rows(p)
    out["permute_gbs"] = (round(1e-3 / _fit(x, y)[1]), "memory.csv benchmark=permute (all ops): 1/slope")
    cp = mem[mem.benchmark.isin(["copy", "cat"])]
    x, y = event_rows(cp)
    out["copy_gbs"] = (round(1e-3 / _fit(x, y)[1]), "memory.csv benchmark=copy,cat: 1/slope")
    up = mem[mem.benchmark == "upsample"]
    x, y = event_rows(up)
    out["resample_gbs"] = (round(1e-3 / _fit(x, y)[1]), "memory.csv benchmark=upsample (nearest 2x): 1/slope")
    sm = mem[mem.benchmark == "softmax"]
    x, y = event_rows(sm)
    out["softmax_gbs"] = (round(1e-3 / _fit(x, y)[1]), "memory.csv benchmark=softmax: 1/slope")
    # LayerNorm: kernel time = floor + bytes / bw + rows * per-row cost
    ln = mem[mem.benchmark == "layer_norm"]
    rows = ln["shape"].str.split("x").str[0].astype(float).to_numpy()
    a = np.c_[np.ones(len(ln)), ln.bytes.to_numpy(float), rows]
    (_, s_b, s_r), *_ = np.linalg.lstsq(a, ln.time_us.to_numpy(float) - ev, rcond=None)
    out["layernorm_gbs"] = (
        round(1e-3 / s_b),
        "memory.csv benchmark=layer_norm: time - event = floor + bytes/bw + rows*row_ns (least squares)",
    )
    out["layernorm_row_ns"] = (round(s_r * 1e3, 3), "memory.csv benchmark=layer_norm: the same fit, per-row term")

    # GroupNorm (profiler columns): statistics pass per thread block, apply pass bandwidth
    out.update(_gn_blocks(gn, floor))
    out["gn_stats_max_gbs"] = (
        float(gn.stats_gbs.max().round()),
        "groupnorm.csv: max stats_gbs (the statistics kernel saturates near 1024 blocks)",
    )
    x = (2.0 * gn.N * gn.C * gn.H * gn.W * 2).to_numpy()
    out["gn_apply_gbs"] = (
        round(1e-3 / _fit(x, gn.apply_us.to_numpy(float))[1]),
        "groupnorm.csv: 1/slope of apply_us vs bytes read + written",
    )

    peak = 989.0  # H200 datasheet dense FP16 TFLOP/s (132 SMs x 4 tensor cores x 512 MAC/clk x 1.83 GHz)
    out["gemm_fixed_us"] = (
        round(cal["gemm"]["min_gemm_time_us"] - ev, 2),
        "calibration.yaml gemm.min_gemm_time_us - event overhead",
    )
    out.update(_scaling(d / "scaling" / "scaling.csv", out["gemm_fixed_us"][0], floor))
    out.update(_regimes(d / "regimes" / "regimes.csv"))
    out.update(_dispatch(d / "dispatch" / "dispatch.csv", floor))
    out.update(_plan_build(d / "holdout" / "llama_growing" / "host_profile" / "decode_host_ops.csv"))
    out.update(_gemm_sweep(d, ev))
    out.update(_chains(d / "chains" / "chains.csv", floor, out["elementwise_gbs"][0]))
    out.update(_switch(d / "switch" / "switch.csv", out["graph_gap_us"][0]))

    # fused attention: MMA efficiency, exp (SFU) rate, wave start-up, partial-tile and fixed cost per backend
    out.update(attention_constants(d, att, cal, ev, peak))

    h = cal["host"]
    out["graph_launch_us"] = (h["graph_launch_us"], "calibration.yaml host.graph_launch_us")
    out["eager_kernel_us"] = (
        h["eager_us_per_kernel_outofplace"],
        "calibration.yaml host.eager_us_per_kernel_outofplace",
    )
    out["compiled_kernel_us"] = (
        h["bare_launch_us"],
        "calibration.yaml host.bare_launch_us (a launch without the aten dispatcher)",
    )
    for op, key in (("linear_bias", "linear"), ("conv2d_3x3_bias", "conv"), ("group_norm", "group_norm"),
                    ("layer_norm", "layer_norm"), ("silu", "activation"), ("sdpa", "attention")):  # fmt: skip
        out[f"eager_op_us.{key}"] = (h["eager_us_per_op"][op], f"calibration.yaml host.eager_us_per_op.{op}")
    return out


CHAIN_STEPS = 48  # steps per chain (sim/calibrate/chains.py LENGTH)


def _chains(path: Path, floor: float, elementwise_gbs: float) -> dict[str, tuple[float, str]]:
    """Constants from `chains/chains.csv` (graph replays of dependent small kernels, profiled):
    the device gap per kernel (replay event time - profiled kernel time, per launch) of pointwise and
    norm kernels and the extra one of GEMMs; the extra time of a biased linear between a LayerNorm
    and a residual add over the GEMM model; the latency of a LayerNorm row's thread block."""
    from sim.cost.gpu import GK_GEMM, GK_LAYERNORM

    c = pd.read_csv(path)
    graph = c[~c.op.str.endswith("/eager")]
    gap = (graph.time_us - graph.kernel_us) / graph.launches
    small = graph.benchmark.isin(["elementwise", "broadcast", "layer_norm", "tiny"]) & (
        graph.kernel_us / graph.launches < 10)  # fmt: skip
    g_gap = float(np.median(gap[small]))
    out = {"graph_gap_us": (round(g_gap, 2), f"chains.csv pointwise/norm/tiny chains, kernels < 10 us ({small.sum()} rows): "
                                            "median (replay - profiled kernels) / launches")}  # fmt: skip
    lin = graph[graph.benchmark == "linear"].set_index(["shape", "op"])
    extra_gap, bias = [], []
    for shape in lin.index.get_level_values(0).unique():
        m, k, n = map(int, shape.split("x"))
        dims = [(k, n)] if k == n else [(k, n), (n, k)]
        alone = lin.loc[(shape, "alone")]
        if alone.launches != CHAIN_STEPS * len(dims):  # split-K reductions: not one GEMM kernel per linear
            continue
        extra_gap.append(
            float(gap[(graph.benchmark == "linear") & (graph["shape"] == shape) & (graph.op == "alone")].iloc[0])
        )
        ctx = (lin.loc[(shape, "block")].kernel_us - lin.loc[(shape, "block_pointwise")].kernel_us) / CHAIN_STEPS
        model = sum(
            _model_us({"m": np.array([m]), "k": np.array([i]), "n": np.array([o])}, GK_GEMM)[0] for i, o in dims
        )
        bias.append((ctx - model) / len(dims))
    out["graph_gemm_gap_us"] = (round(float(np.median(extra_gap)) - g_gap, 2),
                                f"chains.csv linear alone ({len(extra_gap)} shapes, one GEMM kernel per linear): "
                                "median gap per launch - graph_gap_us")  # fmt: skip
    out["gemm_bias_us"] = (round(float(np.median(bias)), 2),
                           "chains.csv linear: median over the same shapes of (block - block_pointwise kernel time per "
                           "linear) - GEMM model")  # fmt: skip
    # LayerNorm: one thread block per row; at <= 64 rows (one block per SM at most) the kernel is that
    # block's latency: time - floor - throughput model = block_us + row bytes / block_gbs (least squares)
    ln = graph[(graph.benchmark == "layer_norm")]
    rows = ln["shape"].str.split("x").str[0].astype(int).to_numpy()
    width = ln["shape"].str.split("x").str[1].astype(int).to_numpy()
    pick = rows <= 64
    r, w = rows[pick], width[pick]
    thr = _model_us({"unit": np.full(len(r), 1), "words_in": r * w, "words_out": r * w, "par": r, "elements": r * w},
                    GK_LAYERNORM, gpu_layernorm_block_us=0.0)  # fmt: skip
    lat = ln.kernel_us.to_numpy(float)[pick] / CHAIN_STEPS - thr
    block_us, per_byte = _fit(4.0 * w, lat)  # a row's bytes read + written (fp16)
    why = f"chains.csv layer_norm rows <= 64 ({pick.sum()} rows, widths 1152/4096): kernel - floor - throughput model"
    out["layernorm_block_us"] = (round(block_us, 2), why + " = block_us + row bytes / block_gbs: intercept")
    out["layernorm_block_gbs"] = (round(1e-3 / per_byte, 2), why + ": 1/slope")
    out.update(_chains_small(c, graph, elementwise_gbs))
    out.update(_gather(graph, path.parents[1] / "reuse" / "reuse.csv"))
    return out


def chain_kernel_us(frame: pd.DataFrame, steps: int = CHAIN_STEPS) -> pd.Series:
    """Profiled time per chain step of a chain's own kernels (`kernels` column: name=time pairs),
    leaving out memcpy kernels (reuse.csv's eviction copy)."""

    def own(kernels: str) -> float:
        pairs = (item.rpartition("=") for item in str(kernels).split(";"))
        return sum(float(t.removesuffix("us")) for name, _, t in pairs if not name.lower().startswith("memcpy"))

    return frame.kernels.map(own) / steps


def _gather(chains: pd.DataFrame, reuse_csv: Path) -> dict[str, tuple[float, str]]:
    """An indexed gather's extra latency over a pointwise kernel of the same residency (graph replay):
    chains.csv 2-row embedding (table in L2) - the 4096-element add chain; reuse.csv 2-row embedding
    from distinct cold tables - the 16384-element add of cold operands."""
    r = pd.read_csv(reuse_csv)
    r = r[~r.op.str.endswith("/eager")]

    def one(frame: pd.DataFrame, bench: str, op: str, shape: str | None = None) -> float:
        pick = (frame.benchmark == bench) & (frame.op == op)
        if shape is not None:
            pick &= frame["shape"].astype(str) == shape
        return float(chain_kernel_us(frame[pick]).iloc[0])

    warm = one(chains, "tiny", "embedding_2rows") - one(chains, "elementwise", "add", "4096")
    cold = one(r, "tiny", "gather_cold") - one(r, "reuse", "cold", "16384")
    return {"gather_latency_us": (round(float(np.median([warm, cold])), 2),
                                  f"chains.csv embedding_2rows - add 4096 ({warm:.2f}); reuse/reuse.csv gather_cold - "
                                  f"cold add 16384 ({cold:.2f}): median, per kernel in graph replay")}  # fmt: skip


def _chains_small(c: pd.DataFrame, graph: pd.DataFrame, elementwise_gbs: float) -> dict[str, tuple[float, str]]:
    """L2 reuse and small kernels from `chains.csv`: z = z + x chains (z just written, x read by the
    kernel before) whose three tensors fit the L2 give the (eager) kernel time of L2-resident operands,
    kernel = floor + reads / l2_read + writes / elementwise (least squares); the twin eager rows of
    the same chains give graph replay's extra time per small kernel."""
    import sim
    from sim.runtime.host import SMALL_OP_BYTES

    l2_bytes = sim.load_arch("h200").global_buffer.size_kb * 1024
    # the eager twins: kernel times as the other memory-bound constants (graph replay's extra per
    # small kernel is graph_small_kernel_us, below)
    add = c[(c.benchmark == "elementwise") & (c.op == "add/eager")]
    n = add["shape"].astype(float).to_numpy()
    fits = 6.0 * n <= l2_bytes  # two fp16 inputs and the output
    per_kernel = add.kernel_us.to_numpy(float)[fits] / CHAIN_STEPS
    writes_us = 2.0 * n[fits] / (elementwise_gbs * 1e3)
    floor, per_byte = _fit(4.0 * n[fits], per_kernel - writes_us)
    why = (
        f"chains.csv elementwise add/eager, 3 tensors within the L2 ({fits.sum()} rows): kernel - writes / "
        "elementwise rate"
    )
    out = {"l2_kernel_floor_us": (round(floor, 2), why + " = floor + reads / l2_read_gbs: intercept"),
           "l2_read_gbs": (round(1e-3 / per_byte), why + ": 1/slope")}  # fmt: skip
    eager = c[c.op.str.endswith("/eager")].assign(op=lambda f: f.op.str.removesuffix("/eager"))
    both = graph.merge(eager, on=["benchmark", "op", "shape"], suffixes=("", "_eager"))
    small = (both.bytes / both.launches <= SMALL_OP_BYTES) & both.benchmark.isin(
        ["elementwise", "broadcast", "layer_norm", "tiny"]
    )
    extra = (both.kernel_us - both.kernel_us_eager)[small] / both.launches[small]
    out["graph_small_kernel_us"] = (round(float(np.median(extra)), 2),
                                    f"chains.csv pointwise/norm/tiny chains of <= 1 MiB per kernel ({small.sum()} rows): "
                                    "median (graph - eager profiled kernel time) / launches")  # fmt: skip
    return out


GN_NEAR_MAX, GN_FAR_MIN = 17e6, 20e6  # groupnorm.csv: the largest input at the fast rate, the smallest at the slow


def _gn_blocks(gn: pd.DataFrame, floor: float) -> dict[str, tuple[float, str]]:
    """GroupNorm statistics with few blocks (<= 128): a block's time (stats_us - floor) = gn_block_us +
    its bytes / gn_block_gbs, least squares over inputs <= 17 MB; inputs >= 20 MB (each block's span
    0.3-4 MB) run ~45% slower per block: gn_block_far_gbs, the median with the same latency; the
    threshold halfway (16.8 MB ran fast, 21 MB slow)."""
    few = gn[gn.blocks <= 128]
    nbytes = (few.N * few.C * few.H * few.W * 2).to_numpy(float)
    span, t = nbytes / few.blocks.to_numpy(float), few.stats_us.to_numpy(float) - floor
    near, far = nbytes <= GN_NEAR_MAX, nbytes >= GN_FAR_MIN
    block_us, per_byte = _fit(span[near], t[near])
    far_gbs = float(np.median(span[far] / ((t[far] - block_us) * 1e3)))
    why = "groupnorm.csv blocks <= 128: stats_us - floor = block_us + input bytes / blocks / gbs"
    return {"gn_block_us": (round(block_us, 2), why + f", inputs <= 17 MB ({near.sum()} rows): intercept"),
            "gn_block_gbs": (round(1e-3 / per_byte, 2), why + ": 1/slope"),
            "gn_block_far_gbs": (round(far_gbs, 2), f"the same, inputs >= 20 MB ({far.sum()} rows): median gbs"),
            "gn_far_from_mb": ((GN_NEAR_MAX + GN_FAR_MIN) / 2e6, "halfway between 17 MB (fast) and 20 MB (slow)")}  # fmt: skip


def _model_us(kernels: dict[str, np.ndarray], gk: int, **fields: object) -> np.ndarray:
    """The h200 preset's GPU cost (burst: no power-cap derate) of the kernels `kernels` (KERNEL fields ->
    arrays), with the hardware-record fields `fields` (`gpu_*`) replaced: microseconds."""
    import sim
    from sim.cost import KERNEL, evaluate, hardware_record

    arch = sim.load_arch("h200")
    hw = hardware_record(arch).copy()
    for name, value in {"gpu_sustained_tensor_ratio": 0.0, **fields}.items():
        hw[name] = value
    n = len(next(iter(kernels.values())))
    rec = np.zeros(n, dtype=KERNEL)
    base = {"a_bits": 16, "b_bits": 16, "c_bits": 16, "mac_dtype": -1, "count": 1, "a_dram": 1, "b_dram": 1,
            "c_dram": 1, "gpu_kind": gk}  # fmt: skip
    for name, value in {**base, **kernels}.items():
        rec[name] = value
    o = evaluate(rec, hw)
    return (o["compute_cycles"] + o["stall_cycles"]) / arch.frequency_mhz


GEMM_EFFICIENCIES = np.round(np.arange(0.74, 0.9001, 0.02), 2)
GEMM_TILE_OVERHEADS = np.arange(64, 257, 32)
GEMM_TILE_FEEDS = np.array([0.0, 100.0, 120.0, 140.0, 160.0, 200.0])  # GB/s per SM; 0: unlimited
# gemm.csv rows whose event time is at least this many times the event overhead enter the fit (shorter
# ones are mostly overhead: 49 of 249 rows would imply kernels under 3.3 us, the shortest GEMM kernel any
# profiled family recorded, so their kernel time is not known to better than the overhead's spread)
GEMM_FIT_MIN_EVENTS = 3.0


def gemm_sweep_errors(
    g: pd.DataFrame, ev: float, efficiency: float, overhead_k: float, feed_gbs: float = 0.0
) -> np.ndarray:
    """Relative error (model / measured - 1) of the GEMM model on every row of `gemm.csv` `g`."""
    from sim.cost.gpu import GK_GEMM

    shapes = {"m": g.M.to_numpy(), "k": g.K.to_numpy(), "n": g.N.to_numpy()}
    t = _model_us(shapes, GK_GEMM, gpu_gemm_efficiency=efficiency, gpu_gemm_tile_overhead_k=overhead_k,
                  gpu_gemm_tile_feed_gbs=feed_gbs)  # fmt: skip
    return t / (g.time_us.to_numpy(float) - ev) - 1


def gemm_pool(d: Path, ev: float) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every measured GEMM the tile model covers, as (kernels, measured us, source): gemm.csv rows (event
    time - overhead; source 0), chains.csv `alone` linears (profiled, bias epilogue, a chain step's
    kernels: one or two linears; source 1) and conv_kernels.csv convolutions (profiled role=conv
    kernels summed per conv, implicit GEMM N x Ho x Wo by Cin x R x S by Cout; source 2)."""
    from sim.cost.gpu import GK_CONV, GK_GEMM, GK_LINEAR

    g = pd.read_csv(d / "gemm.csv")
    rows = [(r.M, r.K, r.N, GK_GEMM, 0, i) for i, r in enumerate(g.itertuples())]
    times = list(g.time_us.to_numpy(float) - ev)
    c = pd.read_csv(d / "chains" / "chains.csv")
    lin = c[(c.benchmark == "linear") & (c.op == "alone")]
    for step, (shape, t) in enumerate(zip(lin["shape"], chain_kernel_us(lin))):
        m, k, n = map(int, shape.split("x"))
        rows += [(m, i, o, GK_LINEAR, 1, len(times)) for i, o in ([(k, n)] if k == n else [(k, n), (n, k)])]
        times.append(t)
    ck = pd.read_csv(d / "conv_kernels.csv")
    keys = ["benchmark", "layout", "N", "Cin", "Cout", "H", "W", "ksize", "stride"]
    for r in ck[ck.role == "conv"].groupby(keys, as_index=False).time_us.sum().itertuples():
        rows.append((r.N * (r.H // r.stride) * (r.W // r.stride), r.Cin * r.ksize**2, r.Cout, GK_CONV, 2, len(times)))
        times.append(r.time_us)
    a = np.array(rows, dtype=np.int64)
    kernels = {"m": a[:, 0], "k": a[:, 1], "n": a[:, 2], "gpu_kind": a[:, 3]}
    source = np.zeros(len(times), dtype=np.int64)
    source[a[:, 5]] = a[:, 4]
    return kernels | {"measurement": a[:, 5]}, np.array(times), source


def gemm_pool_errors(pool: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray], **fields: float) -> np.ndarray:
    """Relative error (model / measured - 1) per measurement of `gemm_pool`, with hardware fields `fields`."""
    kernels, measured, _ = pool
    one = {k: v for k, v in kernels.items() if k != "measurement"}
    model = np.bincount(kernels["measurement"], weights=_model_us(one, 0, **fields), minlength=len(measured))
    return model / measured - 1


def _gemm_sweep(d: Path, ev: float) -> dict[str, tuple[float, str]]:
    """Mainloop efficiency, per-tile prologue/epilogue (in K depth) and per-SM operand feed of the GEMM
    model, chosen on a grid to minimise the median |log(model / measured)| over the GEMM pool (gemm.csv
    rows of at least GEMM_FIT_MIN_EVENTS event overheads, chains.csv linears, conv_kernels.csv convs),
    the memory constants as derived from scaling.csv."""
    pool = gemm_pool(d, ev)
    _, measured, source = pool
    fit = (source > 0) | (measured + ev >= GEMM_FIT_MIN_EVENTS * ev)

    def errors(e: float, k0: float, feed: float) -> np.ndarray:
        return gemm_pool_errors(pool, gpu_gemm_efficiency=e, gpu_gemm_tile_overhead_k=k0, gpu_gemm_tile_feed_gbs=feed)

    best = (np.inf, 0.0, 0.0, 0.0)
    for e in GEMM_EFFICIENCIES:
        for k0 in GEMM_TILE_OVERHEADS:
            for feed in GEMM_TILE_FEEDS:
                score = float(np.median(np.abs(np.log1p(errors(e, k0, feed)[fit]))))
                best = min(best, (score, float(e), float(k0), float(feed)))
    _, e, k0, feed = best
    err = np.abs(errors(e, k0, feed))
    stats = ", ".join(f"{name} {np.median(err[pick]):.1%}/{np.quantile(err[pick], 0.9):.0%}" for name, pick in (
        ("gemm.csv all", source == 0), ("chains linears", source == 1), ("convs", source == 2)))  # fmt: skip
    why = (f"GEMM pool ({fit.sum()} of {len(err)} measurements): grid minimising median |log(model/measured)| "
           f"(median/90th percentile |error|: {stats})")  # fmt: skip
    return {"gemm_efficiency": (e, why + ": mainloop efficiency"), "gemm_tile_overhead_k": (k0, why + ": per-tile K"),
            "gemm_tile_feed_gbs": (feed, why + ": operand feed per SM")}  # fmt: skip


def _transposes(ck: pd.DataFrame, regimes_csv: Path) -> dict[str, tuple[float, str]]:
    """cuDNN's NCHW<->NHWC transposes (profiler): time = launches x floor + bytes / bw + runs x row_ns,
    a run being one (image, channel)'s spatial extent (a weight's: its kernel R x S x T), least squares
    over conv_kernels.csv (2-D convs: nchwToNhwc = input + weight, nhwcToNchw = output) and
    regimes.csv conv3d (temporal 3x1x1 convs: weight runs of 3 elements)."""
    t = ck[ck.role == "transpose"]
    into = t.kernel.str.contains("nchwToNhwc").to_numpy()
    n, cin, cout = t.N.to_numpy(float), t.Cin.to_numpy(float), t.Cout.to_numpy(float)
    hw_in = (t.H * t.W).to_numpy(float)
    hw_out = (t.H // t.stride * (t.W // t.stride)).to_numpy(float)
    k2 = (t.ksize**2).to_numpy(float)
    elems = np.where(into, n * cin * hw_in + cout * cin * k2, n * cout * hw_out)
    runs = np.where(into, n * cin + cout * cin, n * cout)
    rows = [np.c_[t.launches.to_numpy(float), 4.0 * elems, runs]]
    y = [t.time_us.to_numpy(float)]
    r = pd.read_csv(regimes_csv)
    for row in r[r.benchmark == "conv3d"].itertuples():
        b, c, f, h, w = map(float, row.shape.split("x"))
        times = {k.split("<")[0].split("::")[-1]: float(k.rsplit("=", 1)[1][:-2]) for k in row.kernels.split(";")}
        rows.append(
            np.array([[2, 4.0 * (b * c * f * h * w + 3 * c * c), b * c + c * c], [1, 4.0 * b * c * f * h * w, b * c]])
        )
        y.append(np.array([times["nchwToNhwcKernel"], times["nhwcToNchwKernel"]]))
    (_, s_b, s_r), *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(y), rcond=None)
    why = ("conv_kernels.csv transposes + regimes.csv conv3d: time = launches x floor + bytes/bw + runs x row_ns "
           "(least squares; a run = one image x channel, or a weight's kernel extent)")  # fmt: skip
    bw = round(1e-3 / s_b)
    return {"act_transpose_gbs": (bw, why + ": bw"), "weight_transpose_gbs": (bw, why + ": bw (the same kernel)"),
            "transpose_row_ns": (round(s_r * 1e3, 4), why + ": row_ns")}  # fmt: skip


def _regimes(path: Path) -> dict[str, tuple[float, str]]:
    """Constants from `regimes/regimes.csv`: pointwise kernels over non-contiguous views."""
    r = pd.read_csv(path)
    st = r[(r.benchmark == "strided") & r.op.isin(["gelu_chunk", "mul_chunk"])]
    return {"strided_gbs": (round(1e-3 / _fit(st.bytes.to_numpy(float), st.kernel_us.to_numpy(float))[1]),
                            "regimes.csv strided gelu_chunk + mul_chunk (GEGLU over chunk halves): 1/slope of kernel_us vs bytes")}  # fmt: skip


def _scaling(path: Path, gemm_fixed_us: float, floor: float) -> dict[str, tuple[float, str]]:
    """Constants from `scaling/scaling.csv` (profiler kernel times): memory-bound GEMM streaming,
    softmax rate by row length, head split/merge copies."""
    from sim.arch.gpu import SOFTMAX_ROW_LENGTHS

    sc = pd.read_csv(path)
    out: dict[str, tuple[float, str]] = {}
    # memory-bound GEMMs: small-M linears and the unfused attention's batched GEMMs (Lq >= 64; shorter
    # sequences are tile-bound), time = fixed + latency + read bytes / R + write bytes / W, fitted by
    # relative error (least squares of time-weighted rows)
    g = sc[sc.benchmark == "gemv"]
    m, k, n = (g["shape"].str.split("x", expand=True).astype(float)[i] for i in range(3))
    rd, wr = [2 * (m * k + k * n)], [2 * m * n]
    b = sc[sc.benchmark == "bgemm"]
    bh, lq, lk, hd = (b["shape"].str.split("x", expand=True).astype(float)[i] for i in range(4))
    qk = (b.op == "baddbmm_qk").to_numpy()
    rd.append(np.where(qk, 2 * bh * (lq + lk) * hd, 2 * bh * (lq * lk + lk * hd)))
    wr.append(np.where(qk, 2 * bh * lq * lk, 2 * bh * lq * hd))
    keep = np.r_[np.ones(len(g), bool), (lq >= 64).to_numpy()] & (np.r_[g.tflops, b.tflops] < 300)
    y = np.r_[g.kernel_us, b.kernel_us][keep]
    a = np.c_[np.ones(len(y)), np.concatenate(rd)[keep], np.concatenate(wr)[keep]] / y[:, None]
    (lat, s_r, s_w), *_ = np.linalg.lstsq(a, np.ones(len(y)), rcond=None)
    why = "scaling.csv gemv + bgemm (Lq >= 64, < 300 TFLOP/s): kernel_us = fixed + latency + rd/R + wr/W, relative least squares"
    out["gemm_read_gbs"] = (round(1e-3 / s_r), why + ": R")
    out["gemm_write_gbs"] = (round(1e-3 / s_w), why + ": W")
    out["gemm_mem_latency_us"] = (round(lat - gemm_fixed_us, 2), why + ": intercept - gemm_fixed_us")
    # K or N not a multiple of 8 (77 keys): cuBLAS's align1 fallback, time beyond the fixed cost vs the
    # aligned streaming model
    un = ((lk % 8 != 0) | (hd % 8 != 0)).to_numpy()
    brd, bwr = rd[1][un], wr[1][un]
    aligned = lat - gemm_fixed_us + brd * s_r + bwr * s_w
    out["gemm_unaligned_slowdown"] = (
        round(float(np.median((b.kernel_us.to_numpy(float)[un] - gemm_fixed_us) / aligned)), 2),
        "scaling.csv bgemm with Lk = 77: median (kernel_us - gemm_fixed_us) / (latency + rd/R + wr/W)",
    )
    su = sc[sc.benchmark == "sustained"]
    ts = su.op.str.extract(r"t=([0-9.]+)s")[0].astype(float)
    out["sustained_tensor_ratio"] = (
        round(float(su.tflops[ts > 0.1].median() / su.tflops[ts <= 0.1].iloc[0]), 3),
        "scaling.csv sustained (F.linear 35552x1920x7680 back to back): median TFLOP/s after 0.1 s / first window",
    )
    # softmax over 512 MiB at each row length: bytes / (kernel time - floor)
    sm = sc[(sc.benchmark == "softmax") & (sc.bytes > 1e9)]
    width = sm["shape"].str.split("x").str[1].astype(int)
    for w in SOFTMAX_ROW_LENGTHS:
        r = sm[width == w]
        if r.empty:  # measured in dispatch/dispatch.csv
            continue
        out[f"softmax_row_gbs.{w}"] = (
            round(float(r.bytes.iloc[0] / (r.kernel_us.iloc[0] - floor) / 1e3)),
            f"scaling.csv softmax, rows of {w} (1 GiB read + written): bytes / (kernel_us - floor)",
        )
    h = sc[sc.benchmark == "head_copy"]
    out["head_copy_gbs"] = (
        round(1e-3 / _fit(h.bytes.to_numpy(float), h.kernel_us.to_numpy(float))[1]),
        "scaling.csv head_copy (diffusers' head split/merge): 1/slope of kernel_us vs bytes",
    )
    return out


def _switch(path: Path, graph_gap: float) -> dict[str, tuple[float, str]]:
    """From switch.csv: the extra graph-replay gap of a cuDNN SDPA call (its memset node): the cuDNN chains'
    gaps per call (replay - profiled kernels, over the calls) less graph_gap_us per launch (the
    FlashAttention-2 twins, no memset, come out at ~0 the same way); and the host's launch time per graph
    node: slope of the host time of one replay() over the launch graphs' node counts (least squares)."""
    s = pd.read_csv(path, dtype={"shape": str})
    sd = s[(s.benchmark == "sdpa") & (s.op == "cudnn")]
    calls = sd.launches / 3  # memset, attention kernel, residual add per call
    extra = (sd.time_us - sd.kernel_us) / calls - 3 * graph_gap
    host = s[(s.benchmark == "launch") & s.op.str.endswith("/host")]
    _, per_node = _fit(host["shape"].str.split("x").str[0].astype(float).to_numpy(), host.time_us.to_numpy(float))
    return {"graph_memset_gap_us": (round(float(np.median(extra)), 2),
                                    f"switch.csv sdpa cudnn ({len(sd)} shapes): median (replay - kernels) per call "
                                    "- 3 x graph_gap_us"),
            "graph_node_launch_us": (round(per_node, 2), f"switch.csv launch /host ({len(host)} graphs of 48-2400 "
                                     "nodes): slope of replay() host time over nodes")}  # fmt: skip


def _plan_build(path: Path) -> dict[str, tuple[float, str]]:
    """cuDNN attention's plan build per call: self CPU time of aten::_cudnn_attention_forward per call in
    a decode step over a grown cache (first pass: every key length new) minus over a cropped one."""
    h = pd.read_csv(path)
    a = h[h.op == "aten::_cudnn_attention_forward"]
    grown = a[a.variant == "grown"].iloc[0]
    cropped = a[a.variant == "cropped"].self_cpu_us.median()
    return {"cudnn_plan_us": (round(float((grown.self_cpu_us - cropped) / grown.calls), 1),
                              "holdout/llama_growing/host_profile: aten::_cudnn_attention_forward self CPU us per call, "
                              "grown cache (first pass) - cropped (median)")}  # fmt: skip


def _softmax_rows(path: Path) -> set[int]:
    """Row lengths of scaling.csv's softmax rows over 1 GiB (the main table's source where it has them)."""
    sc = pd.read_csv(path)
    sm = sc[(sc.benchmark == "softmax") & (sc.bytes > 1e9)]
    return set(sm["shape"].str.split("x").str[1].astype(int))


def _dispatch(path: Path, floor: float) -> dict[str, tuple[float, str]]:
    """Constants from `dispatch/dispatch.csv` (profiler kernel times): softmax over unaligned fp16 rows
    and over fp32 rows by row length, the CUDA-core fp32 GEMM rate."""
    from sim.arch.gpu import SOFTMAX_FP32_ROW_LENGTHS, SOFTMAX_ROW_LENGTHS, SOFTMAX_UNALIGNED_ROW_LENGTHS

    dp = pd.read_csv(path)
    out: dict[str, tuple[float, str]] = {}
    scaling = _softmax_rows(path.parents[1] / "scaling" / "scaling.csv")
    rest = [w for w in SOFTMAX_ROW_LENGTHS if w not in scaling]  # the register kernel's grid, 9672
    for bench, dtype, lengths, field in (("softmax", "float16", SOFTMAX_UNALIGNED_ROW_LENGTHS, "softmax_unaligned_row_gbs"),
                                         ("softmax", "float16", rest, "softmax_row_gbs"),
                                         ("softmax_fp32", "float32", SOFTMAX_FP32_ROW_LENGTHS, "softmax_fp32_row_gbs")):  # fmt: skip
        sm = dp[(dp.benchmark == bench) & (dp.dtype == dtype)]
        width = sm["shape"].str.split("x").str[1].astype(int)
        for w in lengths:
            r = sm[width == w]
            out[f"{field}.{w}"] = (
                round(float(r.bytes.iloc[0] / (r.kernel_us.iloc[0] - floor) / 1e3)),
                f"dispatch.csv {bench}, {dtype} rows of {w} (512 MiB or 1 GiB read + written): bytes / (kernel_us - floor)",
            )
    g = dp[(dp.benchmark == "gemm_fp32") & (dp.flops >= 2 * 2048.0**3)]
    out["fp32_gemm_tflops"] = (
        round(float(g.tflops.median()), 1),
        "dispatch.csv gemm_fp32 (tf32 off), n >= 2048: median",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for name, (value, source) in derive(Path(args[0]) if args else DEFAULT_DIR).items():
        print(f"{name}: {value}  # {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
