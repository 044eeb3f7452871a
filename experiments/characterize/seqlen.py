"""Attention sequence lengths through a UNet: the distribution by level.

Paper: in diffusion UNets the sequence length varies 4x between levels (SD: 4096, 1024, 256,
64 tokens at 512x512), unlike transformer TTI where it is fixed.
"""

from __future__ import annotations

import itertools

import pandas as pd

import sim
import workloads

from .common import Claim, Study, figure

MODELS = ("sd15_unet", "sd21_unet", "sdxl_unet", "dit_xl2_transformer")


def run(arch: sim.Arch, small: bool = False) -> Study:
    rows = []
    for model in [m for m in MODELS if m in workloads.registry()]:
        result = sim.simulate(workloads.build(model), arch)
        attn = result.ops[result.ops["op_class"] == "attention"]
        graph_ops = {op.name: op for op in workloads.build(model)}
        for name, t in zip(attn["op"], attn["time_s"]):
            op = graph_ops[name]
            rows.append({"model": model, "role": op.attrs["role"], "lq": op.attrs["lq"], "lk": op.attrs["lk"], "time_s": t})
    ops = pd.DataFrame(rows)
    dist = ops.groupby(["model", "role", "lq", "lk"], as_index=False).agg(layers=("time_s", "size"), time_s=("time_s", "sum"))
    dist["time_share"] = dist["time_s"] / dist.groupby("model")["time_s"].transform("sum")
    study = Study("seqlen", "Attention sequence-length distribution through the denoiser", arch.name, tables={"distribution": dist})
    sd = dist[(dist.model == "sd15_unet") & (dist.role == "self")]
    lengths = sorted(set(sd["lq"]), reverse=True)
    steps = [a / b for a, b in itertools.pairwise(lengths)]
    study.claims.append(Claim(
        "SD 1.5 self-attention sequence lengths at 512x512 (ratio between levels)", "4096/1024/256/64, 4x",
        f"{'/'.join(map(str, lengths))}, {'/'.join(f'{s:g}x' for s in steps)}", lengths == [4096, 1024, 256, 64],
    ))  # fmt: skip
    fig, ax = figure()
    for model, g in dist[dist.role == "self"].groupby("model"):
        ax.plot(g["lq"], g["time_share"], marker="o", label=model)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("self-attention sequence length (tokens)")
    ax.set_ylabel("share of attention time")
    ax.legend()
    study.figures["distribution"] = fig
    return study
