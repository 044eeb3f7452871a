"""Plots of a serve run: latency CDF, hit rate and savings vs cache size, savings vs arrival rate.

They read the sweep's rows (`sweep.run_sweep`: swept settings, metrics, stored latency quantiles),
so a resumed or re-run sweep plots every point without recomputing any.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workloads.errors import InputError

from .sweep import QUANTILES, quantiles

Rows = list[dict[str, Any]]

CAPACITY_KEYS = ("cache.capacity", "cache.capacity_gb")
RATE_KEY = "stream.arrivals.rate"
MAX_CURVES = 12
MAX_CDF_CURVES = 6  # evenly spread over the points


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plots need matplotlib (pip install -e '.[plots]'); tables were written") from None
    return plt


def _label(point: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items() if k not in skip) or "run"


def latency_cdf(frame: pd.DataFrame, swept: list[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = frame[swept].to_dict("records")
    curves, baselines = quantiles(frame), quantiles(frame, "baseline_latency_quantiles")
    picks = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), MAX_CDF_CURVES)).round().astype(int))
    for i in picks:
        ax.plot(curves[i], QUANTILES, label=_label(rows[i]) + " (cache)")
    if baselines[0] is not None:
        label = "no cache" + (f" ({_label(rows[0])})" if len(rows) == 1 else "")
        ax.plot(baselines[0], QUANTILES, "k--", label=label)
    ax.set_xlabel("end-to-end latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{title}: latency CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _lines(rows: Rows, swept: list[str], x_key: str) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    lines: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for row in rows:
        label = _label({k: row[k] for k in swept if k != x_key})
        lines.setdefault(label, []).append((float(row[x_key]), row))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in list(lines.items())[:MAX_CURVES]}


def _saved(m: dict[str, Any], key: str, default: float) -> float:
    """A savings metric of a row (NaN in the table where the point has no baseline run)."""
    value = m.get(key)
    return default if value is None or value != value else float(value)


def versus_cache_size(rows: Rows, swept: list[str], x_key: str, path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, line in _lines(rows, swept, x_key).items():
        xs = [x for x, _ in line]
        left.plot(xs, [100 * m["hit_rate"] for _, m in line], marker="o", label=label)
        right.plot(xs, [100 * _saved(m, "compute_saved", m["steps_saved"]) for _, m in line], marker="o", label=label)
    unit = "entries" if x_key == "cache.capacity" else "GB"
    for ax, what in ((left, "hit rate (%)"), (right, "compute saved vs no cache (%)")):
        ax.set_xlabel(f"cache size ({unit})")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title(f"{title}: hit rate vs cache size")
    right.set_title(f"{title}: savings vs cache size")
    return _save(fig, path)


def versus_rate(rows: Rows, swept: list[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, line in _lines(rows, swept, RATE_KEY).items():
        xs = [x for x, _ in line]
        ax.plot(
            xs, [100 * _saved(m, "compute_saved", 0.0) for _, m in line], marker="o", label=f"compute saved, {label}"
        )
        ax.plot(
            xs,
            [100 * _saved(m, "latency_reduction", 0.0) for _, m in line],
            marker="s",
            ls="--",
            label=f"mean latency cut, {label}",
        )
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("reduction vs no cache (%)")
    ax.set_title(f"{title}: savings vs arrival rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def write_plots(frame: pd.DataFrame, swept: list[str], out: Path, title: str) -> list[Path]:
    """The latency CDF, and the cache-size and rate plots when those keys are swept."""
    paths = [latency_cdf(frame, swept, out / "latency_cdf.png", title)]
    rows = frame.to_dict("records")
    for key in CAPACITY_KEYS:
        if key in swept:
            paths.append(versus_cache_size(rows, swept, key, out / "cache_size.png", title))
    if RATE_KEY in swept:
        paths.append(versus_rate(rows, swept, out / "rate.png", title))
    return paths
