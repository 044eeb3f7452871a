"""Reproduce NIRVANA (Agarwal et al., NSDI 2024) at the serving level: `python experiments/serving/nirvana.py`.

Setting: SDXL 1024^2, 50 steps with CFG; K in {5, 10, 15, 20, 25} from the artifact's similarity map;
20,000 requests of the calibrated synthetic stream (Poisson arrivals); LCBFU vs LRU, LFU and FIFO
over cache sizes on `a100`, and LCBFU/LRU on `h100` and the `os128` accelerator preset. Each
arch's fleet is 4 instances at ~70% baseline utilization (the rate follows from the simulated
service time). Savings are against the same stream and fleet without the cache. Writes
`nirvana.md` (claim | paper | ttvsim), `nirvana.csv` and `nirvana_cache_size.png` to --out
(default experiments/out/serving/). `run(out, small=True)` is the call for reproduce.py/CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.serving.cache import k_from_similarity  # noqa: E402
from sim.serving.config import DEFAULT_THRESHOLDS, validate  # noqa: E402
from sim.serving.metrics import savings  # noqa: E402
from sim.serving.runner import Context, run_point, service_model  # noqa: E402
from sim.serving.stream import NIRVANA_TOP1_QUANTILES  # noqa: E402

PAPER = {"compute_saved": 0.21, "latency_reduction": 0.198, "cost_saved": 0.19}
POLICIES = ("lcbfu", "lru", "lfu", "fifo")
INSTANCES, UTILIZATION = 4, 0.7


def experiment(arch: str, rate: float, policy: str, capacity: int, requests: int) -> Any:
    doc = {
        "name": f"nirvana_{arch}", "baseline": False,
        "workload": {"model": "sdxl", "options": {"resolution": 1024, "steps": 50, "cfg": True}},
        "stream": {"requests": requests, "seed": 0, "arrivals": {"process": "poisson", "rate": rate}},
        "cache": {"policy": policy, "capacity": capacity},
        "fleet": {"arch": arch, "instances": INSTANCES},
    }  # fmt: skip
    return validate(doc, f"nirvana {arch}:", HERE)


def implied_by_map() -> tuple[float, float]:
    """Hit rate and steps saved the similarity map gives on the published top-1 distribution.

    The top-1 quantiles (with the repeats at 1.0) are read as a piecewise-linear CDF; this is an
    unlimited cache that holds every earlier prompt.
    """
    probs = np.array([0.0, *NIRVANA_TOP1_QUANTILES])
    values = np.array([0.45, *NIRVANA_TOP1_QUANTILES.values()])
    u = (np.arange(100_000) + 0.5) / 100_000
    top1 = np.interp(u, probs, values)
    k = np.array([k_from_similarity(s, DEFAULT_THRESHOLDS) for s in top1])
    return float(np.mean(k > 0)), float(k.mean() / 50)


def sweep(requests: int, sizes: list[int]) -> pd.DataFrame:
    ctx = Context()
    rows = []
    plan = [("a100", p, sizes) for p in POLICIES] + [
        (a, p, sizes[-2:]) for a in ("h100", "os128") for p in ("lcbfu", "lru")
    ]
    baselines: dict[str, dict[str, Any]] = {}
    for arch, policy, capacities in plan:
        service = service_model(experiment(arch, 1.0, policy, 0, requests), ctx).at(1).service_s(0)
        rate = round(UTILIZATION * INSTANCES / service, 4)
        if arch not in baselines:
            baselines[arch] = run_point(experiment(arch, rate, policy, 0, requests), ctx).metrics
        for capacity in capacities:
            m = run_point(experiment(arch, rate, policy, capacity, requests), ctx).metrics
            m |= savings(m, baselines[arch])
            rows.append({"arch": arch, "policy": policy, "capacity": capacity, "rate": rate, "service_s": service} | m)
            print(
                f"{arch} {policy} {capacity}: hit {m['hit_rate']:.1%}, compute saved {m['compute_saved']:.1%}, latency -{m['latency_reduction']:.1%}",
                flush=True,
            )
    frame = pd.DataFrame(rows)
    frame["k_share"] = frame["k_share"].map(str)
    return frame


def claims(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    hit, saved = implied_by_map()
    largest = frame[frame.capacity == frame.capacity.max()]
    rows = []
    for key, claim in (
        ("compute_saved", "GPU compute saved"),
        ("latency_reduction", "mean end-to-end latency reduction"),
        ("cost_saved", "cost saved (accelerator-seconds)"),
    ):
        best = ", ".join(f"{r.arch} {getattr(r, key):.1%}" for r in largest[largest.policy == "lcbfu"].itertuples())
        rows.append(
            (claim + " (LCBFU, largest cache)", f"{PAPER[key]:.0%}" if key != "latency_reduction" else "19.8%", best)
        )
    a100 = frame[frame.arch == "a100"]
    mid = sorted(a100.capacity.unique())[len(a100.capacity.unique()) // 2]
    at_mid = a100[a100.capacity == mid].set_index("policy")
    order = " > ".join(
        f"{p} {at_mid.loc[p, 'compute_saved']:.1%}" for p in at_mid["compute_saved"].sort_values(ascending=False).index
    )
    rows.append((f"LCBFU saves the most compute among policies (a100, {mid:,} states)", "LCBFU > LRU, LFU", order))
    rows.append(
        (
            "hit rate implied by the similarity map (unlimited cache, published quantiles)",
            "n/a (production: not given)",
            f"{hit:.1%}; steps saved {saved:.1%}",
        )
    )
    full = a100[a100.capacity == a100.capacity.max()].set_index("policy")
    rows.append(
        (
            "hit rate on the calibrated stream (a100, largest cache)",
            "-",
            f"{full.loc['lcbfu', 'hit_rate']:.1%}; steps saved {full.loc['lcbfu', 'steps_saved']:.1%}",
        )
    )
    return rows


DIFFERENCES = """\
## Why compute saved is ~12%, not the paper's 21% (not tuned to match)

- **The published similarity statistics cap the savings.** Applied to the artifact's top-1
  quantiles, the similarity -> K map gives K = 0 (a miss) below 0.65 and K = 5 for the median
  (0.712): an unlimited cache holding every earlier prompt saves at most the "implied" steps in
  the table above (14.4% of loop steps, E[K] = 7.2). Reaching 21% of the compute needs E[K] of
  about 11 steps, i.e. a far more similar stream than the published log, so the production
  traces the paper measured must have had more near-duplicate prompts than that log.
- **Only the denoising loop is skipped.** The text encoders and the VAE decoder run for every
  request, so compute saved is below steps saved (the loop is ~97% of an SDXL request here).
- **A finite cache on this stream misses more than the cap.** With uniform re-edits of earlier
  prompts (below), even 100,000 states hit less often than the unlimited bound.
- **LCBFU evicts worst here, for a reason the stream makes visible.** Its score (uses + 1) x K
  keeps the K = 20/25 states, which only neighbours above 0.90 similarity (~10% of requests)
  can use, and evicts the K = 5/10 states that the median request (similarity 0.65-0.85) needs.
  On production traces with many near-exact repeats the same rule keeps the states that save
  the most, which is the paper's argument; the synthetic stream follows the published log.

## Where the synthetic stream differs from the production traces

- NIRVANA's savings come from two production text-to-image traces; the only published statistics of
  prompt similarity used here are the artifact's 20,000-query DiffusionDB-style log (top-1
  quantiles, 3.2% repeats). The synthetic stream matches those quantiles by construction
  (calibrated edit trees over Zipf topics) but not the production traces' own distribution.
- No temporal locality beyond topic popularity: an edit picks a uniformly random earlier prompt of
  its topic, so there are no user sessions or bursts of re-edits of the latest prompt, which favour
  recency (LRU) and frequency (LFU/LCBFU) differently than the production traces did.
- Popularity is stationary (no trending topics), arrivals are Poisson at a fixed ~70% load, and
  one model and resolution serve every request.
- Embeddings are 64-dimensional synthetic vectors, not CLIP text embeddings; only their top-1
  similarity structure is calibrated, not the full neighbour distribution.
- The similarity map is applied to the published quantiles as they are: it implies the hit rate
  and steps saved in the table, which bound what any policy can reach on this stream.
"""


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """Rows of a markdown table: shares as percentages, other floats to two decimals."""

    def cell(column: str, value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.1%}" if column.endswith(("rate", "saved", "reduction")) else f"{value:.2f}"
        return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)

    head = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return head + [
        "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.itertuples(index=False)
    ]


def plot(frame: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a100 = frame[frame.arch == "a100"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for policy, group in a100.groupby("policy", sort=False):
        left.plot(group.capacity, 100 * group.hit_rate, marker="o", label=policy)
        right.plot(group.capacity, 100 * group.compute_saved, marker="o", label=policy)
    right.axhline(100 * PAPER["compute_saved"], color="k", ls="--", label="NIRVANA (paper)")
    for ax, what in ((left, "hit rate (%)"), (right, "compute saved vs no cache (%)")):
        ax.set_xscale("log")
        ax.set_xlabel("cache size (latent states)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(title="eviction policy")
    left.set_title("SDXL 1024², 4 x A100: hit rate vs cache size")
    right.set_title("SDXL 1024², 4 x A100: compute saved vs cache size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(out: Path = HERE.parent / "out" / "serving", small: bool = False) -> Path:
    """Run the study and write nirvana.md, nirvana.csv and the plot to `out`; returns the markdown path."""
    requests = 4_000 if small else 20_000
    sizes = [1_000, 10_000, 40_000] if small else [1_000, 5_000, 20_000, 50_000, 100_000]
    frame = sweep(requests, sizes)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "nirvana.csv", index=False)
    png = plot(frame, out / "nirvana_cache_size.png")
    lines = ["# NIRVANA approximate caching: claim | paper | ttvsim", "",
             f"SDXL 1024², 50 steps, CFG; {requests:,} requests; {INSTANCES} instances per arch at {UTILIZATION:.0%} baseline load; "
             "cache sizes in latent states (a prompt stores up to 5).", "",
             "| claim | paper | ttvsim |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {c} | {p} | {t} |" for c, p, t in claims(frame)]
    cols = [
        "arch",
        "policy",
        "capacity",
        "hit_rate",
        "mean_k",
        "compute_saved",
        "latency_reduction",
        "latency_p95_reduction",
        "cost_saved",
        "cache_peak_gb",
    ]
    lines += [
        "",
        "## All points",
        "",
        *markdown_table(frame[cols]),
        "",
        DIFFERENCES,
        f"![hit rate and savings vs cache size]({png.name})",
        "",
    ]
    path = out / "nirvana.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE.parent / "out" / "serving"))
    parser.add_argument("--small", action="store_true", help="4,000 requests and three cache sizes (CI)")
    args = parser.parse_args()
    print(f"wrote {run(Path(args.out), args.small)}")


if __name__ == "__main__":
    main()
