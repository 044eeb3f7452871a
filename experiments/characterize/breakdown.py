"""Operator-class time breakdown per model (with fused attention): the stacked-bar figure.

Paper: after Flash Attention, convolution takes up to 44% of diffusion TTI execution time and
linear layers up to 49% of transformer TTI execution time.
"""

from __future__ import annotations

import sim

from .common import Claim, Study, class_frame, figure, options, pct, pipelines, simulate

ORDER = ("conv", "linear", "attention", "norm", "softmax", "activation", "elementwise", "data_movement", "resample", "embedding")

# The paper's two headline shares: (family, operator class, claim, paper value, agreeing range, why that range).
_CLAIMS = (
    ("diffusion-tti", "conv", "Convolution share of diffusion TTI time", "up to 44%", (0.3, 0.6),
     ("agrees when within 30-60%: the exact number depends on GPU kernel efficiency that a "
      "datasheet-calibrated preset only approximates")),
    ("transformer-tti", "linear", "Linear share of transformer TTI time", "up to 49%", (0.35, 0.8),
     ("ttvsim's token transformers are weight-streaming bound in decoding, so linear layers "
      "can exceed the paper's share")),
)  # fmt: skip


def run(arch: sim.Arch, small: bool = False) -> Study:
    specs = pipelines()
    results = {s.name: simulate(s.name, arch, **options(s, small)) for s in specs}
    frame = class_frame(results)
    frame.insert(1, "family", [s.family for s in specs])
    frame.insert(2, "latency_s", [results[s.name].latency_s for s in specs])
    cols = [c for c in ORDER if c in frame.columns]
    frame = frame[["model", "family", "latency_s", *cols]]

    study = Study("breakdown", "Operator-class time breakdown (fused attention)", arch.name, tables={"shares": frame})
    for family, col, label, paper, (lo, hi), note in _CLAIMS:
        rows = frame[frame.family == family]
        if len(rows):
            top = rows.loc[rows[col].idxmax()]
            study.claims.append(Claim(
                f"{label} (max over models)", paper, f"up to {pct(top[col])} ({top['model']})",
                bool(lo <= top[col] <= hi), note,
            ))  # fmt: skip

    fig, ax = figure(9, 4.5)
    bottom = [0.0] * len(frame)
    for col in cols:
        ax.bar(frame["model"], frame[col], bottom=bottom, label=col)
        bottom = [b + v for b, v in zip(bottom, frame[col])]
    ax.set_ylabel("share of time")
    ax.set_title(f"Time by operator class on {arch.name} (fused attention)")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    study.figures["shares"] = fig
    return study
