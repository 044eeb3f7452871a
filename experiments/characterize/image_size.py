"""Stable Diffusion image-size scaling: convolution vs attention time from 256 to 1024 pixels.

Convolution work grows with the pixel count (H x W); self-attention work grows with its
square, so attention's share of UNet time rises with resolution.
"""

from __future__ import annotations

import pandas as pd

import sim
import workloads

from .common import Claim, Study, figure


def run(arch: sim.Arch, small: bool = False) -> Study:
    sizes = (256, 512) if small else (256, 512, 768, 1024)
    rows = []
    for res in sizes:
        by = sim.simulate(workloads.build("sd15_unet", resolution=res), arch).by("op_class")
        rows.append({"resolution": res, "conv_s": by.get("conv", 0.0), "attention_s": by.get("attention", 0.0),
                     "total_s": by.sum()})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["attention_share"] = frame["attention_s"] / frame["total_s"]
    frame["conv_growth"] = frame["conv_s"] / frame["conv_s"].iloc[0]
    frame["attention_growth"] = frame["attention_s"] / frame["attention_s"].iloc[0]
    study = Study("image_size", "SD 1.5 UNet: conv vs attention time by image size", arch.name, tables={"scaling": frame})
    last = frame.iloc[-1]
    pixels = (last.resolution / frame.resolution.iloc[0]) ** 2
    study.claims.append(Claim(
        f"Growth from {frame.resolution.iloc[0]} to {int(last.resolution)} px (pixels x{pixels:g})",
        "attention grows faster than convolution (quadratic vs linear in pixels)",
        f"conv x{last.conv_growth:.1f}, attention x{last.attention_growth:.1f}",
        bool(last.attention_growth > last.conv_growth),
    ))  # fmt: skip
    fig, ax = figure()
    ax.plot(frame["resolution"], frame["conv_s"], marker="o", label="conv")
    ax.plot(frame["resolution"], frame["attention_s"], marker="o", label="attention")
    ax.set_xlabel("image side (pixels)")
    ax.set_ylabel("seconds per UNet step")
    ax.set_yscale("log")
    ax.legend()
    study.figures["scaling"] = fig
    return study
