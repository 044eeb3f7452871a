"""The fused-attention constants of the h200 preset (called by `experiments/gpu/derive_constants.py`).

Model (`sim.cost.gpu._attention_cycles`): one thread block per (batch x head, query tile), in waves
over the SMs; a wave costs `attention_tile_us` + key tiles x the longer of their MMAs
(`attention_efficiency` of the SM's tensor rate) and their exps (`attention_gscores_s` over the SMs)
+ `attention_partial_us` when the last key tile is partial; plus `attention_fixed_us` per call.

cuDNN (PyTorch's default on sm90), from `sdpa/sdpa.csv` (kernels profiled inside graph-replay chains):
1. the marginal cost of a wave per (head dim, sequence): the slope of kernel time over waves
   between the two largest batch x heads of at least two waves;
2. the rates from the full-tile rows: exp rate from the slope of per-wave cost over key tiles at
   head dim 64 (exp-bound), MMA efficiency from that slope at head dim 128 (MMA-bound);
3. the wave start-up: median over full-tile rows of (per-wave cost - key tiles x per-tile cost);
4. the partial-tile cost: median over the partial-tile rows of one key tile (sequence 64 against a
   128-key tile) of what is left;
5. the fixed cost: median over every row of (kernel time - the wave model).
FlashAttention-2 and memory-efficient: rates from `attention.csv` maxima, start-up from its
sequence-16 rows less one key tile (no partial-tile term), fixed cost from its rows of <= 2 waves (the
same structure fitted to sdpa.csv's FlashAttention-2 rows gave a worse median error, 9.4% against 8.4%).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

CHAIN_CALLS = 12  # sdpa.csv: calls per chain
# preset key, attention.csv benchmark, backend index (kind - GK_ATTENTION)
FROM_SDPA = (("cudnn", "cudnn", 0),)  # fitted to sdpa.csv
FROM_EVENTS = (("flash2", "flash", 1), ("efficient", "efficient", 2))  # attention.csv (event-timed)


@functools.cache
def _shape() -> dict:
    import sim
    from sim.runtime.expand import _pad

    arch = sim.load_arch("h200")
    a = arch.array
    return {"sms": arch.cores, "hz": arch.frequency_mhz * 1e6, "rate": a.rows * a.cols * a.count, "pad": _pad,
            "gpu": arch.gpu, "dram_gbs": arch.dram.bandwidth_gbs}  # fmt: skip


def _rows(frame: pd.DataFrame, key: str, gk: int) -> pd.DataFrame:
    """Add padded head dim, waves, key tiles and the partial flag to rows with columns s, kv, d, bh."""
    p = _shape()
    g = p["gpu"]
    tq, tkv = g.attention_tile_q[key], g.attention_tile_kv[key]
    out = frame.copy()
    out["dp"] = [p["pad"](int(x), gk) for x in out.d]
    out["waves"] = np.ceil(out.bh * np.ceil(out.s / tq) / p["sms"])
    out["iters"] = np.ceil(out.kv / tkv)
    out["partial"] = (out.kv % tkv) != 0
    return out


def wave_model(
    rows: pd.DataFrame, key: str, efficiency: float, gscores: float, tile_us: float, partial_us: float
) -> np.ndarray:
    """Kernel time (us) without the fixed cost: `_attention_cycles` and its DRAM floor, in numpy."""
    p = _shape()
    g = p["gpu"]
    tq, tkv = g.attention_tile_q[key], g.attention_tile_kv[key]
    per = np.maximum(2.0 * tq * tkv * rows.dp / (p["rate"] * efficiency) / p["hz"] * 1e6,
                     tq * tkv / (gscores * 1e9 / p["sms"]) * 1e6)  # fmt: skip
    compute = rows.waves * (tile_us + np.where(rows.partial, partial_us, 0.0) + rows.iters * per)
    mem = rows.bh * (2 * rows.s * rows.dp + 2 * rows.kv * rows.dp) * 2.0 / (p["dram_gbs"] * 1e9) * 1e6
    return np.maximum(compute, mem).to_numpy(float)


def sdpa_rows(path: Path, op: str, key: str, gk: int) -> pd.DataFrame:
    """sdpa.csv graph rows of backend `op`: shape columns and the kernel time per call (`y`, us)."""
    s = pd.read_csv(path, dtype={"shape": str})
    g = s[s.op == op].copy()
    shape = g["shape"].str.split("x", expand=True).astype(int)
    g["s"], g["d"], g["bh"] = shape[0], shape[1], shape[2]
    g["kv"] = g.s
    g["y"] = g.kernel_us / CHAIN_CALLS
    return _rows(g, key, gk)


def marginal_waves(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (head dim, sequence): the cost of one more wave, between the two largest batch x heads (>= 2 waves)."""
    out = []
    for (dp, _, _), q in rows.groupby(["dp", "d", "s"]):
        q = q.sort_values("bh")
        if len(q) >= 2 and q.waves.iloc[-1] >= 2 and q.waves.iloc[-1] > q.waves.iloc[-2]:
            a, b = q.iloc[-2], q.iloc[-1]
            out.append(
                {"dp": dp, "iters": b.iters, "partial": b.partial, "per_wave": (b.y - a.y) / (b.waves - a.waves)}
            )
    return pd.DataFrame(out)


def _slope(m: pd.DataFrame) -> float:
    (_, slope), *_ = np.linalg.lstsq(np.c_[np.ones(len(m)), m.iters], m.per_wave.to_numpy(float), rcond=None)
    return float(slope)


def fit_backend(path: Path, op: str, key: str, gk: int) -> dict[str, float]:
    p = _shape()
    g = p["gpu"]
    tq, tkv = g.attention_tile_q[key], g.attention_tile_kv[key]
    rows = sdpa_rows(path, op, key, gk)
    m = marginal_waves(rows)
    full = m[~m.partial]
    gscores = tq * tkv / (_slope(full[full.dp == 64]) * 1e-6) * p["sms"] / 1e9
    mma_cycles = _slope(full[full.dp == 128]) * 1e-6 * p["hz"]
    efficiency = 2.0 * tq * tkv * 128 / (p["rate"] * mma_cycles)
    per = np.maximum(
        2.0 * tq * tkv * m.dp / (p["rate"] * efficiency) / p["hz"] * 1e6, tq * tkv / (gscores * 1e9 / p["sms"]) * 1e6
    )
    rest = m.per_wave - m.iters * per
    tile_us = float(np.median(rest[~m.partial]))
    short_partial = m.partial & (m.iters == 1)
    partial_us = max(0.0, float(np.median(rest[short_partial])) - tile_us) if short_partial.any() else 0.0
    model = wave_model(rows, key, efficiency, gscores, tile_us, partial_us)
    fixed = max(0.0, float(np.median(rows.y.to_numpy(float) - model)))
    err = np.abs(np.log((model + fixed) / rows.y.to_numpy(float)))
    return {"efficiency": round(efficiency, 3), "gscores": round(gscores), "tile_us": round(tile_us, 2),
            "partial_us": round(partial_us, 2), "fixed_us": round(fixed, 2), "median_error": float(np.median(err)),
            "rows": len(rows), "marginal": len(m)}  # fmt: skip


def attention_constants(d: Path, att: pd.DataFrame, cal: dict, ev: float, peak: float) -> dict[str, tuple[float, str]]:
    """Constant name -> (value, source) for the attention_* fields of the h200 preset."""
    from sim.cost.gpu import GK_ATTENTION

    out: dict[str, tuple[float, str]] = {}
    for key, op, i in FROM_SDPA:
        f = fit_backend(d / "sdpa" / "sdpa.csv", op, key, GK_ATTENTION + i)
        src = f"sdpa.csv {op} ({f['rows']} shapes, {f['marginal']} marginal wave costs)"
        out[f"attention_efficiency.{key}"] = (
            f["efficiency"],
            src + ": head dim 128, slope of per-wave cost over key tiles",
        )
        out[f"attention_gscores_s.{key}"] = (f["gscores"], src + ": head dim 64, slope of per-wave cost over key tiles")
        out[f"attention_tile_us.{key}"] = (f["tile_us"], src + ": full-tile rows, median per-wave cost - key tiles")
        out[f"attention_partial_us.{key}"] = (f["partial_us"], src + ": one partial key tile, median of what is left")
        out[f"attention_fixed_us.{key}"] = (
            f["fixed_us"],
            src + f": median (time - wave model); model median |log error| {f['median_error']:.1%}",
        )
    cols = {"seq_q": "s", "seq_kv": "kv", "head_dim": "d"}
    for key, name, i in FROM_EVENTS:
        gk = GK_ATTENTION + i
        e = round(cal["attention"][f"{name}_max_tflops"] / peak, 3)
        gs = float(att[(att.benchmark == name) & (att.head_dim <= 64)].gscores_s.max().round())
        out[f"attention_efficiency.{key}"] = (e, f"calibration.yaml attention.{name}_max_tflops / 989")
        out[f"attention_gscores_s.{key}"] = (gs, f"attention.csv benchmark={name} head_dim <= 64: max gscores_s")
        ours = _rows(att[att.benchmark == name].rename(columns=cols), key, gk)
        seq16 = ours[(ours.s == 16) & (ours.bh >= 10240)]
        one_tile = wave_model(seq16, key, e, gs, 0.0, 0.0)
        tile_us = round(float(np.median((seq16.time_us.to_numpy() - ev - one_tile) / seq16.waves.to_numpy())), 2)
        out[f"attention_tile_us.{key}"] = (tile_us, f"attention.csv benchmark={name} seq 16, bh >= 10240: median "
                                                    "(time - event - one key tile per wave) / waves")  # fmt: skip
        out[f"attention_partial_us.{key}"] = (0.0, "not measured apart (in the start-up, from sequence-16 rows)")
        short = ours[ours.waves <= 2]
        model = wave_model(short, key, e, gs, tile_us, 0.0)
        out[f"attention_fixed_us.{key}"] = (
            round(max(0.0, float(np.median(short.time_us.to_numpy() - ev - model))), 2),
            f"attention.csv benchmark={name}, <= 2 waves ({len(short)} rows): median (time - event - wave model)",
        )
    return out
