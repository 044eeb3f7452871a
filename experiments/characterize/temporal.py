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
            time = _attention_time(result)
            unfused = _attention_time(sim.simulate(graph, arch, attention="unfused"))
            flops = pd.Series({op.attrs["axis"]: 0 for op in graph if op.op_class == "attention"}, dtype=float)
            for op in graph:
                if op.op_class == "attention":
                    flops[op.attrs["axis"]] += op.flops * op.repeat
            rows.append({
                "model": model, "frames": frames,
                "temporal_time_share": time.get("temporal", 0.0) / time.sum(),
                "temporal_time_share_unfused": unfused.get("temporal", 0.0) / unfused.sum(),
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

    def grows(column: str) -> bool:
        return all(g.sort_values("frames")[column].is_monotonic_increasing for _, g in frame.groupby("model"))

    fused_grows, unfused_grows = grows("temporal_time_share"), grows("temporal_time_share_unfused")
    study.claims.append(Claim(
        "Temporal share grows with frames", "yes",
        f"fused: {'yes' if fused_grows else 'no'}; unfused: {'yes' if unfused_grows else 'no'}", fused_grows,
        "with FlashAttention tiles a short temporal sequence costs a whole tile whatever its length, so "
        "temporal time is flat in frames while spatial attention grows linearly; unfused, the F x F score "
        "traffic grows with frames but from a smaller share",
    ))  # fmt: skip
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


def _attention_time(result: sim.Result) -> pd.Series:
    """Attention seconds by axis (spatial, temporal, ...)."""
    o = result.ops
    return o[o["op_class"] == "attention"].groupby("attn_axis")["time_s"].sum()


def _layout_time(result: sim.Result) -> float:
    """Seconds of data-movement ops (the frame reshapes/permutes around temporal layers)."""
    o = result.ops
    return float(o.loc[o["op_class"] == "data_movement", "time_s"].sum())
