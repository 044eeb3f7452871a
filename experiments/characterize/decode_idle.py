"""Autoregressive decoding: device idle time between small kernels, with and without capture.

Paper: autoregressive generation (Parti, LLM decode) on GPUs is dominated by idle time between
small kernels; capturing the step as a graph (CUDA Graphs) removes most of the launch gaps.
"""

from __future__ import annotations

import pandas as pd

import sim
import workloads

from .common import Claim, Study, figure, pct

MODELS = {"llama2_7b_decode": {}, "parti_decoder_step": {}, "llama2_7b_prefill": {}}


def run(arch: sim.Arch, small: bool = False) -> Study:
    if arch.host.launch_overhead_us <= 0:
        arch = sim.load_arch(arch, {"host": {"launch_overhead_us": 4.0}})
    captured = sim.load_arch(arch, {"host": {"graph_capture": True}})
    rows = []
    for model, opts in MODELS.items():
        if model not in workloads.registry():
            continue
        graph = workloads.build(model, **opts)
        for label, a in (("eager", arch), ("graph capture", captured)):
            s = sim.simulate(graph, a).summary()
            rows.append({"model": model, "mode": label, "latency_ms": 1e3 * s["latency_s"],
                         "idle_share": s["launch_cycles"] / s["cycles"]})  # fmt: skip
    frame = pd.DataFrame(rows)
    study = Study("decode_idle", "Autoregressive decode: idle time between kernels", arch.name, tables={"idle": frame})
    decode = frame[frame.model.str.contains("decode")]
    eager = decode[decode["mode"] == "eager"]
    cap = decode[decode["mode"] == "graph capture"]
    study.claims.append(Claim(
        f"Idle share of a decode step (launch overhead {arch.host.launch_overhead_us:g} us/kernel)",
        "dominant (> 50%)", ", ".join(f"{m}: {pct(v)}" for m, v in zip(eager.model, eager.idle_share)),
        bool((eager.idle_share > 0.5).all()),
    ))  # fmt: skip
    study.claims.append(Claim(
        "Idle share with graph capture", "most idle time removed",
        ", ".join(f"{m}: {pct(v)}" for m, v in zip(cap.model, cap.idle_share)),
        bool((cap.idle_share.to_numpy() < eager.idle_share.to_numpy() / 5).all()),
    ))  # fmt: skip
    fig, ax = figure()
    pivot = frame.pivot(index="model", columns="mode", values="idle_share")
    pivot.plot.bar(ax=ax)
    ax.set_ylabel("device idle share")
    ax.set_title(f"Launch gaps on {arch.name}")
    study.figures["idle"] = fig
    return study
