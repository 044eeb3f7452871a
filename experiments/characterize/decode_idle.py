"""Autoregressive decoding: device idle time between small kernels, with and without capture.

Paper: autoregressive generation (Parti, LLM decode) on GPUs is dominated by idle time between
small kernels; capturing the step as a graph (CUDA Graphs) removes most of the launch gaps.

ttvsim's IR ops are what a fusing compiler would launch (an RMSNorm is one op). Eager PyTorch
launches every aten op: where torch and transformers are installed, the study also traces
transformers' LLaMA-2-7B for one token through the PyTorch frontend (1,119 kernels instead of
580 ops; no KV cache, so attention reads one key instead of the cache: ~2% of the step's bytes)
and simulates that eager kernel stream.
"""

from __future__ import annotations

import pandas as pd

import sim
import workloads
from workloads.errors import InputError

from .common import Claim, Study, figure, pct

MODELS = ("llama2_7b_decode", "parti_decoder_step", "llama2_7b_prefill")
OVERHEADS_US = (1.0, 2.0, 4.0, 8.0, 16.0)
EAGER = "llama2_7b_decode (eager, traced)"


def eager_llama_graph() -> workloads.OpGraph | None:
    """transformers' LLaMA-2-7B on one token, traced kernel by kernel; None without torch."""
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        from workloads.frontends import TensorSpec, trace
    except ImportError:
        return None
    config = LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
    )  # fmt: skip
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    try:
        return trace(model, TensorSpec((1, 1), "int64"), stage="llm", name=EAGER, kwargs={"use_cache": False}).graph
    except InputError:
        return None


def run(arch: sim.Arch, small: bool = False) -> Study:
    if arch.host.launch_overhead_us <= 0:
        arch = sim.load_arch(arch, {"host": {"launch_overhead_us": 4.0}})
    captured = sim.load_arch(arch, {"host": {"graph_capture": True}})
    graphs = {m: workloads.build(m) for m in MODELS if m in workloads.registry()}
    eager = None if small else eager_llama_graph()
    if eager is not None:
        graphs[EAGER] = eager
    rows, sweep = [], []
    for model, graph in graphs.items():
        simulator = sim.Simulator(graph)
        for label, a in (("eager", arch), ("graph capture", captured)):
            result = simulator.run(a)
            s = result.summary()
            rows.append({"model": model, "mode": label, "latency_ms": 1e3 * s["latency_s"],
                         "launches": int(s["launch_cycles"] / (a.host.launch_overhead_us * a.frequency_mhz)),
                         "idle_share": s["launch_cycles"] / s["cycles"]})  # fmt: skip
        if "decode" in model:
            for us in OVERHEADS_US:
                s = simulator.run(sim.load_arch(arch, {"host": {"launch_overhead_us": us}})).summary()
                sweep.append({"model": model, "launch_overhead_us": us, "idle_share": s["launch_cycles"] / s["cycles"]})
    frame, sensitivity = pd.DataFrame(rows), pd.DataFrame(sweep)
    study = Study("decode_idle", "Autoregressive decode: idle time between kernels", arch.name,
                  tables={"idle": frame, "overhead_sensitivity": sensitivity})  # fmt: skip
    eager_rows = frame[frame["mode"] == "eager"].set_index("model")["idle_share"]
    cap_rows = frame[frame["mode"] == "graph capture"].set_index("model")["idle_share"]
    decode = [m for m in eager_rows.index if "decode" in m]
    judged = EAGER if EAGER in eager_rows else decode[0]
    study.claims.append(Claim(
        f"Idle share of a decode step ({arch.host.launch_overhead_us:g} us per kernel launch)", "dominant (> 50%)",
        ", ".join(f"{m}: {pct(eager_rows[m])}" for m in decode), bool(eager_rows[judged] > 0.5),
        "judged on the eager kernel stream where torch is installed; see the overhead sensitivity table "
        "for the per-kernel host cost at which idle time dominates",
    ))  # fmt: skip
    study.claims.append(Claim(
        "Idle share with graph capture", "most idle time removed",
        ", ".join(f"{m}: {pct(cap_rows[m])}" for m in decode),
        bool(all(cap_rows[m] < eager_rows[m] / 5 for m in decode)),
    ))  # fmt: skip
    if eager is None:
        study.notes.append("torch/transformers not installed: the eager (traced) LLaMA row is omitted.")
    fig, ax = figure()
    for model, g in sensitivity.groupby("model"):
        ax.plot(g["launch_overhead_us"], g["idle_share"], marker="o", label=model)
    ax.axhline(0.5, color="gray", linewidth=0.8, linestyle="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("host cost per kernel launch (us)")
    ax.set_ylabel("device idle share of a decode step")
    ax.set_title(f"Launch gaps on {arch.name} (graph capture removes them)")
    ax.legend(fontsize=7)
    study.figures["idle"] = fig
    return study
