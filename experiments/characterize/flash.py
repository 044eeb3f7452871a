"""Fused (Flash-style) vs unfused attention speedup per model.

Paper: diffusion TTI benefits 1.1-2.5x more from Flash Attention than transformer TTI, because
diffusion attention is prefill-like (long query sequences, large score matrices) while
transformer TTI decodes token by token (decode-like).
"""

from __future__ import annotations

import pandas as pd

import sim

from .common import Claim, Study, figure, options, pipelines, simulate


def run(arch: sim.Arch, small: bool = False) -> Study:
    rows = []
    for spec in pipelines(("diffusion-tti", "transformer-tti", "ttv")):
        opts = options(spec, small)
        fused = simulate(spec.name, arch, "fused", **opts)
        unfused = simulate(spec.name, arch, "unfused", **opts)
        fa = fused.by("op_class").get("attention", 0.0)
        ua = unfused.by("op_class").get("attention", 0.0)
        rows.append({
            "model": spec.name, "family": spec.family,
            "end_to_end_speedup": unfused.latency_s / fused.latency_s,
            "attention_speedup": ua / fa if fa else float("nan"),
            "attention_share_unfused": ua / unfused.latency_s,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    study = Study("flash", "Flash (fused) attention speedup per model", arch.name, tables={"speedups": frame})
    by_family = frame.groupby("family")["end_to_end_speedup"].mean()
    if {"diffusion-tti", "transformer-tti"} <= set(by_family.index):
        d, t = by_family["diffusion-tti"], by_family["transformer-tti"]
        ratio = (d - 1) / (t - 1) if t > 1 else float("inf")
        study.claims.append(Claim(
            "Flash Attention end-to-end speedup, diffusion TTI vs transformer TTI",
            "diffusion benefits 1.1-2.5x more",
            f"mean speedup {d:.2f}x vs {t:.2f}x (gain ratio {ratio:.1f}x)", bool(d > t),
            "'agrees' means diffusion gains more; ttvsim compares the gains (speedup - 1), the paper "
            "the speedups, so the magnitudes are not directly comparable",
        ))  # fmt: skip
    fig, ax = figure()
    colors = {"diffusion-tti": "tab:blue", "transformer-tti": "tab:orange", "ttv": "tab:green"}
    ax.bar(frame["model"], frame["end_to_end_speedup"], color=[colors.get(f, "gray") for f in frame["family"]])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("end-to-end speedup (unfused / fused)")
    ax.set_title(f"Flash attention speedup on {arch.name} (blue diffusion, orange transformer, green video)")
    ax.tick_params(axis="x", rotation=45)
    study.figures["speedup"] = fig
    return study
