"""Serving engine benchmark: `python experiments/serving/benchmark.py [--requests N] [--simpy N]`.

1. The heapq engine on N requests (default 1,000,000): SDXL 1024^2 on a fleet of A100s at ~70%
   load, with and without an LCBFU latent cache of 2,000 states; wall seconds and requests per
   second, one core (BLAS limited to one thread).
2. The same queueing model (no cache, no batching, FIFO, M/G/c) in SimPy (`pip install simpy`)
   and in the heapq engine on the same stream: both wall times, and the largest latency gap
   (they must agree to rounding).
3. Vector search: exact top-1 (Numba) vs hnswlib (`pip install hnswlib`) per lookup at cache
   sizes from 1,000 to 100,000 prompts (64-dim), with hnswlib's top-1 recall.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as the figure claims
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from sim.serving.config import validate
from sim.serving.engine import run
from sim.serving.index import ExactIndex, HnswIndex
from sim.serving.runner import Context, engine_config, make_cache, service_model
from sim.serving.stream import Stream
from workloads.errors import InputError

CACHE_STATES = 2_000  # latent states (up to 2,000 prompts in the index)
SDXL = {"model": "sdxl", "options": {"resolution": 1024, "steps": 50, "cfg": True}}


def experiment(requests: int, capacity: int, instances: int = 8, rate: float = 1.8):
    doc = {
        "name": "bench", "workload": SDXL, "baseline": False,
        "stream": {"requests": requests, "arrivals": {"rate": rate}},
        "cache": {"policy": "lcbfu", "capacity": capacity},
        "fleet": {"arch": "a100", "instances": instances},
    }  # fmt: skip
    return validate(doc, "bench:", Path("."))


def bench_engine(requests: int) -> list[str]:
    rows = []
    ctx = Context()
    exp = experiment(requests, CACHE_STATES)
    model = service_model(exp, ctx)
    model.at(1)  # simulate SDXL once, outside the timing
    t0 = time.perf_counter()
    stream = ctx.stream(exp)
    t_stream = time.perf_counter() - t0
    rows.append(f"| stream generation ({requests:,} requests, 64-dim prompts) | {t_stream:.1f} s | |")
    for capacity in (0, CACHE_STATES):
        exp = experiment(requests, capacity)
        cache = make_cache(exp, stream)
        t0 = time.perf_counter()
        out = run(stream, cache, model.at, engine_config(exp, stream, cache))
        wall = time.perf_counter() - t0
        what = f"LCBFU cache of {capacity:,} states" if capacity else "no cache"
        rows.append(
            f"| heapq engine, 8 x A100, {what} | {wall:.1f} s | {requests / wall:,.0f} req/s, {out.events:,} events, "
            f"hit rate {np.mean(out.skipped > 0):.1%} |"
        )
    return rows


def simpy_latencies(stream: Stream, service_s: float, instances: int) -> np.ndarray:
    import simpy

    env = simpy.Environment()
    fleet = simpy.Resource(env, capacity=instances)
    finish = np.zeros(len(stream))

    def request(i: int):
        with fleet.request() as slot:
            yield slot
            yield env.timeout(service_s)
        finish[i] = env.now

    def source():
        last = 0.0
        for i, t in enumerate(stream.arrival_s):
            yield env.timeout(t - last)
            last = t
            env.process(request(i))

    env.process(source())
    env.run()
    return finish - stream.arrival_s


def bench_simpy(requests: int) -> list[str]:
    try:
        import simpy  # noqa: F401
    except ImportError:
        return ["| SimPy | not installed (pip install simpy) | |"]
    ctx = Context()
    exp = experiment(requests, 0)
    model = service_model(exp, ctx)
    stream = ctx.stream(exp)
    t0 = time.perf_counter()
    out = run(stream, None, model.at, engine_config(exp, stream, None))
    heap_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    latency = simpy_latencies(stream, model.at(1).service_s(0), exp.fleet.instances)
    simpy_wall = time.perf_counter() - t0
    gap = float(np.max(np.abs(latency - out.latency_s)))
    return [
        f"| same M/G/c model, {requests:,} requests: heapq engine | {heap_wall:.2f} s | {requests / heap_wall:,.0f} req/s |",
        f"| same model in SimPy {_version('simpy')} | {simpy_wall:.2f} s | {requests / simpy_wall:,.0f} req/s; "
        f"latencies agree to {gap:.1e} s |",
    ]


def bench_index(queries: int = 2000, dim: int = 64) -> list[str]:
    rows = []
    rng = np.random.default_rng(0)
    for size in (1_000, 10_000, 100_000):
        vectors = rng.standard_normal((size + queries, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        base, probe = vectors[:size], vectors[size:]
        exact = ExactIndex(dim, size)
        t0 = time.perf_counter()
        for key, v in enumerate(base):
            exact.add(key, v)
        exact_build = time.perf_counter() - t0
        exact.nearest(probe[0])
        t0 = time.perf_counter()
        truth = [exact.nearest(q)[0] for q in probe]
        exact_us = (time.perf_counter() - t0) / queries * 1e6
        row = f"| {size:,} | {exact_us:,.0f} µs ({exact_build * 1e6 / size:.1f} µs/insert) |"
        try:
            hnsw = HnswIndex(dim, size)
        except InputError:  # hnswlib missing: report and go on
            rows.append(row + " hnswlib not installed | |")
            continue
        t0 = time.perf_counter()
        for key, v in enumerate(base):
            hnsw.add(key, v)
        hnsw_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = [hnsw.nearest(q)[0] for q in probe]
        hnsw_us = (time.perf_counter() - t0) / queries * 1e6
        recall = np.mean(np.array(found) == np.array(truth))
        rows.append(row + f" {hnsw_us:,.0f} µs ({hnsw_build * 1e6 / size:.0f} µs/insert) | {recall:.1%} |")
    return rows


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--simpy", type=int, default=200_000, help="requests for the SimPy comparison")
    args = parser.parse_args()
    print("| what | wall | notes |\n|---|---|---|")
    for row in bench_engine(args.requests) + bench_simpy(args.simpy):
        print(row, flush=True)
    print("\n| cache prompts | exact top-1 per lookup | hnswlib per lookup (M=16, ef=64) | hnswlib top-1 recall |")
    print("|---|---|---|---|")
    for row in bench_index():
        print(row, flush=True)


if __name__ == "__main__":
    main()
