"""Weight sparsity on a systolic accelerator: N:M, unstructured skipping vs gating, storage formats.

One accelerator preset (os128, a 128x128 output-stationary fp16 array with one HBM2 stack),
its sparse units switched on by arch overrides (`sparsity:` section), and the `sparsity` pass
annotating the conv and linear weights of the SD 1.5 UNet and a video UNet (ModelScope T2V):

- layer-wise N:M (2:4, 1:4) on an N:M array (SCALE-Sim 3.0 semantics: K condenses to K*N/M)
  and 2:4 on a sparse-tensor-core mode (twice the math rate);
- unstructured densities 0.1-0.9, zeros skipped (cycles, with load imbalance and the nonzero
  scan) or gated (energy only);
- storage formats (dense, bitmask, CSR, CSC, RLE; ELLPACK-block for N:M) at two densities,
  and a finite DMA decode rate -- with each format's break-even density.

The paper column cites what the published simulators model (SCALE-Sim v3, Sparseloop); the
densities are inputs: whether a network keeps its accuracy at them is not modeled.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

import sim
import workloads
from sim.cost.sparse import break_even
from workloads.annotations import FORMATS

from .common import Claim, Study, costs, figure, pct

PAPER = "SCALE-Sim v3 (Raj et al., ISPASS 2025) and Sparseloop (Wu et al., MICRO 2022) semantics"
PRESET = "os128"
UNITS = {  # arch overrides per hardware variant
    "dense": {},
    "N:M array": {"sparsity": {"structured": True}},
    "2:4 tensor core": {"sparsity": {"tensor_core_2to4": True}},
    "skip": {"sparsity": {"unstructured": "skip"}},
    "gate": {"sparsity": {"unstructured": "gate"}},
}
DECODE_RATE = 16  # elements per cycle for the decode-limited row


def models(small: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (model, options)."""
    if small:
        return {"SD 1.5 UNet": ("sd15_unet", {"resolution": 256}),
                "ModelScope UNet": ("modelscope_t2v_unet", {"frames": 2, "resolution": 128})}  # fmt: skip
    return {"SD 1.5 UNet": ("sd15_unet", {}), "ModelScope UNet": ("modelscope_t2v_unet", {"frames": 8})}


def _weights(value: Any, **pass_options: Any) -> list[dict[str, Any]]:
    rule = {"weights": value}
    return [{"name": "sparsity", "by_class": {"conv": rule, "linear": rule}, **pass_options}]


def configurations(small: bool) -> list[dict[str, Any]]:
    """(family, label, unit, extra overrides, passes) of every configuration."""
    densities = (0.3,) if small else (0.1, 0.3, 0.5, 0.7, 0.9)
    out = [dict(family="dense", label="dense", unit="dense", passes=[])]
    for nm in ("2:4", "1:4"):
        out.append(dict(family="N:M", label=f"{nm} N:M array", unit="N:M array", passes=_weights(nm)))
    out.append(dict(family="N:M", label="2:4 tensor core", unit="2:4 tensor core", passes=_weights("2:4")))
    for mode in ("skip", "gate"):
        for d in densities:
            out.append(dict(family=mode, label=f"{mode} {d:g}", unit=mode, density=d,
                            passes=_weights(d, mode=mode, format="bitmask")))  # fmt: skip
    for d in (0.5,) if small else (0.2, 0.5):
        for fmt in (f for f in FORMATS if f != "ellpack_block"):
            out.append(dict(family="format", label=f"{fmt} {d:g}", unit="skip", density=d, format=fmt,
                            passes=_weights(d, format=fmt)))  # fmt: skip
    out.append(dict(family="format", label="2:4 ellpack_block", unit="N:M array", density=0.5,
                    format="ellpack_block", passes=_weights("2:4", format="ellpack_block")))  # fmt: skip
    out.append(dict(family="format", label=f"bitmask 0.5, decode {DECODE_RATE}/cycle", unit="skip", density=0.5,
                    format="bitmask", decode=DECODE_RATE, passes=_weights(0.5, format="bitmask")))  # fmt: skip
    return out


def _arch(config: dict[str, Any]) -> sim.Arch:
    overrides = {"sparsity": dict(UNITS[config["unit"]].get("sparsity", {}))}
    if config.get("decode"):
        overrides["sparsity"]["decode_elements_per_cycle"] = config["decode"]
    return sim.load_arch(PRESET, overrides if overrides["sparsity"] else None)


def sweep(small: bool) -> pd.DataFrame:
    rows = []
    configs = configurations(small)
    archs = [_arch(c) for c in configs]
    for label, (model, opts) in models(small).items():
        graph = workloads.build(model, **opts)
        for config, arch in zip(configs, archs):
            r = sim.simulate(graph, arch, passes=config["passes"])
            gemm = r.ops[r.ops["op_class"].isin(("conv", "linear"))]
            rows.append({
                "model": label, "family": config["family"], "config": config["label"], "unit": config["unit"],
                "density": config.get("density", 1.0), "format": config.get("format", ""), **costs(r),
                "gemm_compute_cycles": float(gemm["compute_cycles"].sum()),
                "weight_dram_bytes": float(gemm["dram_read_bytes"].sum()),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    dense = frame[frame["config"] == "dense"].set_index("model")
    for col in ("latency_s", "energy_j", "dram_bytes", "gemm_compute_cycles", "weight_dram_bytes"):
        frame[f"{col}_vs_dense"] = frame[col] / dense.loc[frame["model"], col].to_numpy()
    return frame


def break_evens() -> pd.DataFrame:
    """The density below which each format stores fewer bits than dense, at 16 and 8 bits."""
    rows = [{"format": f, **{f"break_even_{b}bit": break_even(f, b) for b in (16, 8)}} for f in FORMATS]
    return pd.DataFrame(rows)


def _get(frame: pd.DataFrame, model: str, config: str) -> pd.Series:
    return frame[(frame["model"] == model) & (frame["config"] == config)].iloc[0]


def claims(frame: pd.DataFrame, be: pd.DataFrame) -> list[Claim]:
    out = []
    first = frame["model"].iloc[0]
    skips = frame[(frame["model"] == first) & (frame["family"] == "skip")].sort_values("density")
    gates = frame[(frame["model"] == first) & (frame["family"] == "gate")].sort_values("density")
    lo = skips.iloc[0]
    nm = _get(frame, first, "2:4 N:M array")
    tc = _get(frame, first, "2:4 tensor core")
    out.append(Claim(f"Layer-wise 2:4 on an N:M array ({first})", "K condenses to K/2: GEMM compute halves",
                     f"GEMM compute x{nm.gemm_compute_cycles_vs_dense:.2f}, step latency x{nm.latency_s_vs_dense:.2f}; "
                     f"2:4 tensor core x{tc.gemm_compute_cycles_vs_dense:.2f} / x{tc.latency_s_vs_dense:.2f}",
                     bool(0.45 < nm.gemm_compute_cycles_vs_dense < 0.75),
                     "fill/drain of each fold is not condensed, and vector ops (norms, softmax, activations) "
                     "are untouched, so the step gains less than the GEMMs"))  # fmt: skip
    out.append(Claim(f"Zero-skipping: work falls with density, less than 1/density (load imbalance), density "
                     f"{lo.density:g}", "speedup < 1/density",
                     f"GEMM compute x{lo.gemm_compute_cycles_vs_dense:.2f} (ideal x{lo.density:.2f}), latency "
                     f"x{lo.latency_s_vs_dense:.2f}",
                     bool(lo.density < lo.gemm_compute_cycles_vs_dense < 1
                          and skips["gemm_compute_cycles"].is_monotonic_increasing),
                     "the busiest of 16,384 PEs sets each fold; the bitmask scan is a floor"))  # fmt: skip
    g = gates.iloc[0]
    out.append(Claim(f"Zero-gating saves energy, not cycles (density {g.density:g})", "same cycles, less energy",
                     f"GEMM compute x{g.gemm_compute_cycles_vs_dense:.3f}, energy x{g.energy_j_vs_dense:.2f} "
                     f"(latency x{g.latency_s_vs_dense:.2f})",
                     bool(abs(g.gemm_compute_cycles_vs_dense - 1) < 1e-9 and g.energy_j_vs_dense < 1),
                     "gated MACs and their operand reads cost no energy; the latency change comes only from the "
                     "bitmask-compressed weights moving fewer DRAM bytes"))  # fmt: skip
    fmts = frame[(frame["model"] == first) & (frame["family"] == "format") & (frame["unit"] == "skip")
                 & (frame["density"] == 0.5) & frame["config"].str.endswith(" 0.5")].set_index("format")  # fmt: skip
    be16 = be.set_index("format")["break_even_16bit"]
    ok = all((fmts.loc[f, "weight_dram_bytes_vs_dense"] <= 1 + 1e-9) == (0.5 <= be16[f]) for f in fmts.index)
    out.append(Claim("Compressed formats move fewer bytes only below their break-even density (density 0.5, fp16)",
                     "Sparseloop/SCALE-Sim format metadata",
                     ", ".join(f"{f} x{fmts.loc[f, 'weight_dram_bytes_vs_dense']:.2f} (break-even "
                               f"{be16[f]:.2f})" for f in fmts.index if f != "dense"),
                     ok, "GEMM DRAM reads relative to dense storage; the weights are read once per fold pass"))  # fmt: skip
    dec = _get(frame, first, f"bitmask 0.5, decode {DECODE_RATE}/cycle")
    free = _get(frame, first, "bitmask 0.5")
    out.append(Claim(f"A DMA decoder at {DECODE_RATE} elements/cycle", "decode cost on the DMA side",
                     f"latency x{dec.latency_s / free.latency_s:.2f} of free decoding",
                     None, "the decoded weight stream must keep up with the array"))  # fmt: skip
    best = frame[frame["model"] == first].sort_values("energy_j").iloc[0]
    out.append(Claim("Lowest-energy configuration", "n/a", f"{best.config}: energy {pct(1 - best.energy_j_vs_dense)} "
                     f"below dense, latency x{best.latency_s_vs_dense:.2f}", None))  # fmt: skip
    return out


def _plot(frame: pd.DataFrame):
    names = list(frame["model"].unique())
    fig, axes = figure(12, 4.5, ncols=len(names))
    markers = {"dense": "*", "skip": "o", "gate": "^", "format": "x"}
    for ax, model in zip(axes, names):
        part = frame[frame["model"] == model]
        group = part["config"].where(part["family"] == "N:M", part["family"])  # each N:M unit its own marker
        for key, g in part.groupby(group, sort=False):
            ax.scatter(g["latency_s"] * 1e3, g["energy_j"], marker=markers.get(key, "s"), label=key, s=40)
        ax.set_xlabel("latency per UNet step (ms)")
        ax.set_ylabel("energy per UNet step (J)")
        ax.set_title(f"{model} on {PRESET}")
        ax.legend(fontsize=8, title="configuration")
    return fig


def run(arch: sim.Arch, small: bool = False) -> Study:
    """`arch` is not used: the study runs on its own accelerator preset (os128)."""
    frame, be = sweep(small), break_evens()
    study = Study("sparsity", "Weight sparsity on a systolic accelerator", PRESET, paper=PAPER,
                  tables={"configs": frame, "break_even": be})  # fmt: skip
    study.claims = claims(frame, be)
    study.notes = [
        f"Preset `{PRESET}` with sparse units from overrides: {UNITS}. Weights of conv and linear ops only; "
        "activations, attention and vector ops stay dense.",
        "Per UNet step (one denoising step, batch 1 at the model's default size; ModelScope with 8 frames).",
        "Densities are inputs: the accuracy a pruned network keeps at them is not modeled.",
    ]
    study.figures = {"energy_latency": _plot(frame)}
    return study
