"""Plots of a serve run: latency CDF, hit rate and savings vs cache size, savings vs arrival rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workloads.errors import InputError

from .runner import PointResult

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


def latency_cdf(results: list[tuple[dict[str, Any], PointResult]], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    picks = np.unique(np.linspace(0, len(results) - 1, min(len(results), MAX_CDF_CURVES)).round().astype(int))
    for point, result in (results[i] for i in picks):
        lat = np.sort(result.outcome.latency_s)
        ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=_label(point) + " (cache)")
    point, result = results[0]
    if result.baseline is not None:
        lat = np.sort(result.baseline.latency_s)
        ax.plot(
            lat,
            np.arange(1, len(lat) + 1) / len(lat),
            "k--",
            label="no cache" + (f" ({_label(point)})" if len(results) == 1 else ""),
        )
    ax.set_xlabel("end-to-end latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{title}: latency CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _lines(
    results: list[tuple[dict[str, Any], PointResult]], x_key: str
) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    lines: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for point, result in results:
        lines.setdefault(_label(point, (x_key,)), []).append((float(point[x_key]), result.metrics))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in list(lines.items())[:MAX_CURVES]}


def versus_cache_size(results: list[tuple[dict[str, Any], PointResult]], x_key: str, path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, line in _lines(results, x_key).items():
        xs = [x for x, _ in line]
        left.plot(xs, [100 * m["hit_rate"] for _, m in line], marker="o", label=label)
        right.plot(xs, [100 * m.get("compute_saved", m["steps_saved"]) for _, m in line], marker="o", label=label)
    unit = "entries" if x_key == "cache.capacity" else "GB"
    for ax, what in ((left, "hit rate (%)"), (right, "compute saved vs no cache (%)")):
        ax.set_xlabel(f"cache size ({unit})")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    left.set_title(f"{title}: hit rate vs cache size")
    right.set_title(f"{title}: savings vs cache size")
    return _save(fig, path)


def versus_rate(results: list[tuple[dict[str, Any], PointResult]], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, line in _lines(results, RATE_KEY).items():
        xs = [x for x, _ in line]
        ax.plot(xs, [100 * m.get("compute_saved", 0.0) for _, m in line], marker="o", label=f"compute saved, {label}")
        ax.plot(
            xs,
            [100 * m.get("latency_reduction", 0.0) for _, m in line],
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


def write_plots(results: list[tuple[dict[str, Any], PointResult]], out: Path, title: str) -> list[Path]:
    paths = [latency_cdf(results, out / "latency_cdf.png", title)]
    keys = set(results[0][0])
    for key in CAPACITY_KEYS:
        if key in keys:
            paths.append(versus_cache_size(results, key, out / "cache_size.png", title))
    if RATE_KEY in keys:
        paths.append(versus_rate(results, out / "rate.png", title))
    return paths
