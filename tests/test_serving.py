"""Serving simulation: streams, cache policies, K map, engine invariants, configs (all < 60 s)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim.serving.cache import LatentCache, k_from_similarity
from sim.serving.config import DEFAULT_THRESHOLDS, ArrivalSpec, CacheSpec, PromptSpec, load_serve_experiment, validate
from sim.serving.engine import EngineConfig, run
from sim.serving.index import ExactIndex
from sim.serving.policies import FifoPolicy, LcbfuPolicy, LfuPolicy, LruPolicy
from sim.serving.runner import run_point
from sim.serving.service import StepCosts
from sim.serving.stream import (
    NIRVANA_TOP1_QUANTILES,
    Stream,
    arrival_times,
    prompt_embeddings,
    read_trace,
    top1_similarity,
)
from workloads.errors import InputError

STEPS = 50


def costs(batch: int) -> StepCosts:
    """Hand-made step costs: 1 s prologue, 0.1 s steps, 0.5 s epilogue at batch 1; batching helps."""
    scale = 1 + 0.6 * (batch - 1)
    return StepCosts(0.05 * scale, np.full(STEPS, 0.1 * scale), 0.5 * scale)


def engine_config(**kw) -> EngineConfig:
    base = dict(instances=2, batching="none", max_batch=1, scheduling="fifo", lookup_s=0.0, transfer_s=0.0, warmup=0)
    return EngineConfig(**(base | kw))


def stream(n: int = 5000, rate: float = 0.3, seed: int = 0, repeat: float = 0.032) -> Stream:
    rng = np.random.default_rng(seed)
    arrivals = arrival_times(ArrivalSpec(rate=rate), n, rng)
    emb, ids = prompt_embeddings(PromptSpec(repeat_fraction=repeat), n, rng)
    return Stream(arrivals, emb, ids)


def cache(capacity: int, policy: str = "lru", **kw) -> LatentCache:
    spec = CacheSpec(
        policy=policy, capacity=capacity, thresholds=DEFAULT_THRESHOLDS, k_states=(5, 10, 15, 20, 25), **kw
    )
    return LatentCache(spec, dim=64, steps=STEPS, state_bytes=128 * 1024)


# ------------------------------------------------------------------------------- eviction order


def drain(policy, keys) -> list:
    order = []
    for _ in keys:
        victim = policy.victim()
        policy.remove(victim)
        order.append(victim)
    return order


def test_fifo_evicts_in_insertion_order_regardless_of_use():
    p = FifoPolicy()
    for key in "abc":
        p.add(key, 5)
    p.use("a")
    assert drain(p, "abc") == ["a", "b", "c"]


def test_lru_evicts_least_recently_used():
    p = LruPolicy()
    for key in "abc":
        p.add(key, 5)
    p.use("a")
    p.use("b")
    p.use("a")
    assert drain(p, "abc") == ["c", "b", "a"]


def test_lfu_evicts_least_frequently_used_then_least_recent():
    p = LfuPolicy()
    for key in "abcd":
        p.add(key, 5)
    for key in "bbcca":  # uses: a 1, b 2, c 2, d 0; c touched after b
        p.use(key)
    assert drain(p, "abcd") == ["d", "a", "b", "c"]


def test_lcbfu_evicts_lowest_frequency_times_k():
    p = LcbfuPolicy(steps=50)
    p.add("x5", 5)  # score 1 x 5/50 = 0.10
    p.add("y25", 25)  # 0.50
    p.add("z10", 10)  # 0.20
    p.add("w5", 5)  # 0.10, newer than x5
    p.use("x5")
    p.use("x5")  # 3 x 5/50 = 0.30
    assert drain(p, ["x5", "y25", "z10", "w5"]) == ["w5", "z10", "x5", "y25"]


def test_cache_stores_k_states_and_evicts_whole_prompts_last():
    c = cache(capacity=7, policy="fifo")
    e = np.eye(64, dtype=np.float32)
    c.insert(0, e[0], 0)  # 5 states
    c.insert(1, e[1], 10)  # a hit at K=10 stores steps 10..25: 4 states -> 2 of prompt 0 go
    assert c.states == {0: [15, 20, 25], 1: [10, 15, 20, 25]}
    assert len(c) == 7 and c.stats.evictions == 2
    assert c.lookup(e[0]) == (25, pytest.approx(1.0))  # exact repeat: K = 25
    c.insert(2, e[2], 20)  # 2 states: prompt 0 keeps only step 25
    c.insert(3, e[3], 25)  # 1 state: prompt 0 leaves the index with its last state
    assert 0 not in c.states and c.prompts == 3


def test_lcbfu_cache_keeps_high_k_states():
    c = cache(capacity=5, policy="lcbfu")
    e = np.eye(64, dtype=np.float32)
    c.insert(0, e[0], 0)
    # each of prompt 1's states evicts the lowest score (ties: oldest): (0,5) .1, (1,5) .1, (0,10) .2,
    # (1,10) .2, (0,15) .3 -- low-K states go first, whoever owns them
    c.insert(1, e[1], 0)
    assert c.states == {0: [20, 25], 1: [15, 20, 25]}


# ------------------------------------------------------------------------------------------ K map


@pytest.mark.parametrize(
    "similarity, k",
    [(1.0, 25), (0.9501, 25), (0.95, 20), (0.9001, 20), (0.90, 15), (0.8501, 15), (0.85, 10), (0.7501, 10),
     (0.75, 5), (0.6501, 5), (0.65, 0), (0.3, 0), (-1.0, 0)],
)  # fmt: skip
def test_k_from_similarity_at_every_threshold(similarity, k):
    assert k_from_similarity(similarity, DEFAULT_THRESHOLDS) == k


def test_lookup_uses_largest_stored_state_not_above_k():
    c = cache(capacity=100)
    v = np.eye(64, dtype=np.float32)
    c.insert(0, v[0], 20)  # stores 20, 25
    near = (0.9 * v[0] + np.sqrt(1 - 0.81) * v[1]).astype(np.float32)  # similarity 0.9 -> K 15
    assert c.lookup(near)[0] == 0  # no stored state <= 15
    very_near = (0.93 * v[0] + np.sqrt(1 - 0.93**2) * v[1]).astype(np.float32)  # K 20
    assert c.lookup(very_near)[0] == 20


# --------------------------------------------------------------------------------------- streams


def test_synthetic_stream_matches_nirvana_quantiles():
    rng = np.random.default_rng(0)
    emb, ids = prompt_embeddings(PromptSpec(), 20_000, rng)
    top1 = top1_similarity(emb)[1:]
    for q, target in NIRVANA_TOP1_QUANTILES.items():
        assert np.quantile(top1, q) == pytest.approx(target, abs=0.015), q
    assert np.mean(top1 >= 0.9999) == pytest.approx(0.032, abs=0.004)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert len(np.unique(ids)) < len(ids)  # repeats share prompt ids


@pytest.mark.parametrize("process", ["poisson", "bursty", "diurnal"])
def test_arrival_processes_have_the_mean_rate(process):
    spec = ArrivalSpec(process=process, rate=2.0, period_s=2000.0, burst_mean_s=20.0)
    t = arrival_times(spec, 40_000, np.random.default_rng(1))
    assert np.all(np.diff(t) >= 0) and len(t) == 40_000
    assert len(t) / t[-1] == pytest.approx(2.0, rel=0.1)


def test_bursty_arrivals_are_burstier_than_poisson():
    """Index of dispersion of per-minute counts: 1 for Poisson, far above for 60-s bursts."""
    rng = np.random.default_rng(2)
    counts = {
        p: np.bincount((arrival_times(ArrivalSpec(process=p, rate=2.0), 40_000, rng) // 60).astype(int))
        for p in ("poisson", "bursty")
    }
    assert counts["bursty"].var() / counts["bursty"].mean() > 2 * counts["poisson"].var() / counts["poisson"].mean()


def test_csv_trace(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,prompt_id,model\n10,a,sdxl\n11,b,sdxl\n12.5,a,sdxl\n")
    s = read_trace(trace, dim=16, seed=0)
    assert s.arrival_s.tolist() == [0.0, 1.0, 2.5]
    assert float(s.embeddings[0] @ s.embeddings[2]) == pytest.approx(1.0)
    trace.write_text("timestamp,prompt_id\n2,a\n1,b\n")
    with pytest.raises(InputError, match="non-decreasing"):
        read_trace(trace, 16, 0)


# ---------------------------------------------------------------------------------------- engine


def test_disabled_cache_is_exactly_the_no_cache_baseline():
    s = stream(3000)
    baseline = run(s, None, costs, engine_config())
    zero = run(s, cache(capacity=0), costs, engine_config())
    assert np.array_equal(baseline.finish_s, zero.finish_s) and zero.skipped.sum() == 0
    # a live cache whose map never fires (and costs nothing to ask) changes nothing either
    never = LatentCache(CacheSpec(capacity=1000, thresholds=((1.0, 5),)), 64, STEPS, 1)
    silent = run(s, never, costs, engine_config())
    assert np.array_equal(baseline.finish_s, silent.finish_s) and never.stats.lookups == 3000


@pytest.mark.parametrize("batching, scheduling", [("none", "fifo"), ("static", "srf"), ("continuous", "fifo")])
def test_littles_law_on_a_steady_state_run(batching, scheduling):
    """L (the engine's own time-average of requests in system over [w0, w1]) = lambda x W.

    lambda and W are taken over the requests arriving in the window. The two sides differ only by
    the requests straddling w0 or w1: about 2 L W / T relative (here W ~ 10 s, T ~ 50,000 s, so
    < 0.1%); 1% leaves room for a busier window edge.
    """
    s = stream(15_000, rate=0.3)
    c = cache(capacity=20_000)
    out = run(
        s,
        c,
        costs,
        engine_config(
            batching=batching, scheduling=scheduling, max_batch=4, warmup=1500, lookup_s=0.01, transfer_s=0.02
        ),
    )
    w0, w1 = out.window
    inside = (out.arrival_s > w0) & (out.arrival_s <= w1)
    lam = inside.sum() / (w1 - w0)
    w = out.latency_s[inside].mean()
    assert out.in_system_area / (w1 - w0) == pytest.approx(lam * w, rel=0.01)
    assert np.all(out.finish_s >= out.start_s) and np.all(out.start_s >= out.ready_s - 1e-9)


def test_continuous_batching_of_one_equals_no_batching():
    s = stream(2000)
    plain = run(s, None, costs, engine_config())
    continuous = run(s, None, costs, engine_config(batching="continuous", max_batch=1))
    assert np.allclose(plain.finish_s, continuous.finish_s)


def test_batching_raises_throughput_under_overload():
    s = stream(3000, rate=1.0)  # two instances serve ~0.36 req/s unbatched
    spans = {
        b: run(s, None, costs, engine_config(batching=b, max_batch=4)).finish_s.max()
        for b in ("none", "static", "continuous")
    }
    assert spans["static"] < spans["none"] and spans["continuous"] < spans["none"]


def test_srf_favours_requests_with_fewer_steps_left():
    s = stream(4000, rate=0.5)
    outs = {q: run(s, cache(capacity=20_000), costs, engine_config(scheduling=q)) for q in ("fifo", "srf")}
    hits = outs["srf"].skipped >= 10
    assert outs["srf"].latency_s[hits].mean() < outs["fifo"].latency_s[hits].mean()


def test_exact_index_matches_brute_force():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ExactIndex(64, 50)
    for key in range(150):
        index.add(key, vectors[key])
    for key in range(0, 150, 3):
        index.remove(key)
    live = [k for k in range(150) if k % 3]
    for q in vectors[150:]:
        key, sim = index.nearest(q)
        assert key == live[int(np.argmax(vectors[live] @ q))] and sim == pytest.approx(
            float(np.max(vectors[live] @ q)), abs=1e-5
        )


def test_hnsw_index_finds_exact_neighbours():
    pytest.importorskip("hnswlib")
    from sim.serving.index import HnswIndex

    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = HnswIndex(64, 100)
    for key in range(250):
        index.add(key, vectors[key])
    index.remove(7)
    found = [index.nearest(v)[0] for v in vectors[:50]]
    assert found[7] != 7 and np.mean([f == k for k, f in enumerate(found) if k != 7]) > 0.95


# ----------------------------------------------------------------------- experiments and configs

SMALL = {
    "name": "small",
    "workload": {"model": "sd15", "options": {"resolution": 256, "steps": 30, "cfg": True}},
    "stream": {"requests": 3000, "seed": 5, "arrivals": {"rate": 2.0}},
    "cache": {"capacity": 5000, "policy": "lcbfu"},
    "fleet": {"arch": "h100", "instances": 1, "batching": "continuous", "max_batch": 4},
}


def test_same_seed_same_metrics_and_savings():
    exp = validate(SMALL, "t:", Path("."))
    first, second = run_point(exp).metrics, run_point(exp).metrics
    assert first == second
    assert first["hit_rate"] > 0.2 and first["compute_saved"] > 0 and first["latency_reduction"] > 0
    other = validate(SMALL | {"stream": SMALL["stream"] | {"seed": 6}}, "t:", Path("."))
    assert run_point(other).metrics != first


def test_cache_size_zero_point_has_no_savings():
    exp = validate(SMALL | {"cache": {"capacity": 0}}, "t:", Path("."))
    m = run_point(exp).metrics
    assert m["hit_rate"] == 0 and "compute_saved" not in m and m["cache_peak_gb"] == 0


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"cache": {"policy": "lrux"}}, r"cache.policy.*lru"),
        ({"cache": {"capacity": -1}}, "cache.capacity"),
        ({"cache": {"k_states": [5, 60]}}, "cache.k_states"),
        ({"cache": {"thresholds": [[1.5, 5]]}}, "cache.thresholds"),
        ({"fleet": {"batching": "dynamic"}}, "fleet.batching"),
        ({"fleet": {"instances": 0}}, "fleet.instances"),
        ({"stream": {"arrivals": {"rate": "fast"}}}, "stream.arrivals.rate"),
        ({"stream": {"prompts": {"zipf": -1}}}, "stream.prompts.zipf"),
        ({"cache": {"size": 3}}, "unknown key 'size'"),
        ({"sweep": {"cache.policy": ["lru", "belady"]}}, r"cache.policy=.belady."),
        ({"sweep": {"cache.capacity": 5}}, "non-empty list"),
    ],
)
def test_bad_yaml_values_are_input_errors(tmp_path, patch, match):
    import yaml

    doc = {k: (v | patch[k] if isinstance(v, dict) and k in patch else v) for k, v in SMALL.items()}
    doc |= {k: v for k, v in patch.items() if k not in doc}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=match) as info:
        load_serve_experiment(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_sweep_points_and_serve_outputs(tmp_path):
    import yaml

    from sim.experiment.cli import main

    doc = SMALL | {
        "stream": SMALL["stream"] | {"requests": 800},
        "sweep": {"cache.capacity": [0, 2000], "cache.policy": ["lru", "lcbfu"]},
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(doc))
    _, points = load_serve_experiment(path)
    assert [p for p, _ in points][1] == {"cache.capacity": 0, "cache.policy": "lcbfu"}
    assert dataclasses.replace(points[3][1].cache).capacity == 2000
    assert main(["serve", str(path), "--out", str(tmp_path / "out")]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"points.csv", "summary.json", "latency_quantiles.csv", "latency_cdf.png", "cache_size.png"} <= written
    assert main(["serve", str(tmp_path / "missing.yaml")]) == 2
