"""Spatial vs temporal attention in text-to-video models as the frame count grows.

Paper: temporal attention takes more than 60% of attention time in TTV models and its share
grows with the number of frames, although it is a few percent of attention FLOPs: sequences of
8-64 frames over batch x H x W positions are tiny, use the arrays poorly and are memory- and
layout-bound.
"""

from __future__ import annotations

import pandas as pd

import sim
import workloads

from .common import Claim, Study, figure, pct

MODELS = ("modelscope_t2v_unet", "latte_transformer", "make_a_video_decoder")


def run(arch: sim.Arch, small: bool = False) -> Study:
    frames_list = (8, 16) if small else (8, 16, 32, 64)
    rows = []
    for model in [m for m in MODELS if m in workloads.registry()]:
        for frames in frames_list:
            graph = workloads.build(model, frames=frames)
            result = sim.simulate(graph, arch)
            attn = result.ops[result.ops["op_class"] == "attention"]
            time = attn.groupby("attn_axis")["time_s"].sum()
            flops = pd.Series({op.attrs["axis"]: 0 for op in graph if op.op_class == "attention"}, dtype=float)
            for op in graph:
                if op.op_class == "attention":
                    flops[op.attrs["axis"]] += op.flops * op.repeat
            rows.append({
                "model": model, "frames": frames,
                "temporal_time_share": time.get("temporal", 0.0) / time.sum(),
                "temporal_flop_share": flops.get("temporal", 0.0) / flops.sum(),
                "attention_time_s": time.sum(),
                "temporal_layout_s": _layout_time(result),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    study = Study("temporal", "Spatial vs temporal attention as frames grow", arch.name, tables={"temporal": frame})
    at16 = frame[frame.frames == 16]
    if len(at16):
        study.claims.append(Claim(
            "Temporal share of attention time at 16 frames", "> 60%",
            ", ".join(f"{m}: {pct(s)}" for m, s in zip(at16.model, at16.temporal_time_share)),
            bool((at16.temporal_time_share > 0.6).all()),
            "ttvsim charges temporal attention for padded FlashAttention tiles (a 16-frame sequence "
            "occupies a 128-row tile); models whose spatial attention dominates FLOPs may still fall short",
        ))  # fmt: skip
        study.claims.append(Claim(
            "Temporal share of attention FLOPs", "a few percent",
            ", ".join(f"{m}: {pct(s)}" for m, s in zip(at16.model, at16.temporal_flop_share)),
            bool((at16.temporal_flop_share < 0.15).all()),
        ))  # fmt: skip
    grows = all(g.sort_values("frames").temporal_time_share.is_monotonic_increasing for _, g in frame.groupby("model"))
    study.claims.append(Claim("Temporal share grows with frames", "yes", "yes" if grows else "no", grows))
    fig, ax = figure()
    for model, g in frame.groupby("model"):
        ax.plot(g["frames"], g["temporal_time_share"], marker="o", label=f"{model} time")
        ax.plot(g["frames"], g["temporal_flop_share"], linestyle="--", marker="x", label=f"{model} FLOPs")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("frames")
    ax.set_ylabel("temporal share of attention")
    ax.legend(fontsize=7)
    study.figures["temporal_share"] = fig
    return study


def _layout_time(result: sim.Result) -> float:
    """Seconds of data-movement ops (the frame reshapes/permutes around temporal layers)."""
    o = result.ops
    return float(o.loc[o["op_class"] == "data_movement", "time_s"].sum())
