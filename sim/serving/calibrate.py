"""Calibrate the synthetic prompt stream: `python -m sim.serving.calibrate [--requests N]`.

Draws the NIRVANA-sized stream (20,000 requests, default prompt settings), measures each
request's top-1 similarity to all earlier requests, and moves the edit-similarity knots by the
gap between target and achieved quantiles (a damped fixed-point iteration). Prints the knots to
paste into `stream.EDIT_SIMILARITY_KNOTS` and the achieved quantiles.
"""

from __future__ import annotations

import argparse

import numpy as np

from .config import PromptSpec
from .stream import (
    EDIT_SIMILARITY_KNOTS,
    NIRVANA_REPEAT_FRACTION,
    NIRVANA_TOP1_QUANTILES,
    prompt_embeddings,
    top1_similarity,
)


def achieved_quantiles(
    knots: tuple[tuple[float, float], ...], requests: int = 20_000, seed: int = 0, spec: PromptSpec | None = None
) -> tuple[dict[float, float], float]:
    """Top-1 similarity quantiles and the share of exact repeats (similarity >= 0.9999) of a stream."""
    emb, _ = prompt_embeddings(spec or PromptSpec(), requests, np.random.default_rng(seed), knots)
    top1 = top1_similarity(emb)[1:]
    quantiles = {q: float(np.quantile(top1, q)) for q in NIRVANA_TOP1_QUANTILES}
    return quantiles, float(np.mean(top1 >= 0.9999))


def calibrate(rounds: int = 8, requests: int = 20_000, damping: float = 0.8) -> tuple[tuple[float, float], ...]:
    knots = dict(EDIT_SIMILARITY_KNOTS)
    for _ in range(rounds):
        achieved, _ = achieved_quantiles(tuple(sorted(knots.items())), requests)
        for q, target in NIRVANA_TOP1_QUANTILES.items():
            if q in knots and target < 1.0:
                knots[q] = float(np.clip(knots[q] + damping * (target - achieved[q]), 0.0, 0.999))
        values = np.maximum.accumulate([knots[p] for p in sorted(knots)])  # keep the quantile function monotone
        knots = dict(zip(sorted(knots), values, strict=True))
    return tuple((float(p), round(float(v), 4)) for p, v in sorted(knots.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    knots = calibrate(args.rounds, args.requests)
    achieved, repeats = achieved_quantiles(knots, args.requests)
    print("EDIT_SIMILARITY_KNOTS =", knots)
    for q, target in NIRVANA_TOP1_QUANTILES.items():
        print(f"p{round(q * 100):>2}: target {target:.3f} achieved {achieved[q]:.3f}")
    print(f"exact repeats: target {NIRVANA_REPEAT_FRACTION:.3f} achieved {repeats:.3f}")


if __name__ == "__main__":
    main()
