"""Step-plan transforms (issue 11): steps, skip_steps, deepcache, token_merge, delta.

Small pipelines (SD 1.5 at 256², 6 steps; DiT-XL/2 with 4 steps) on os128: each transform's
defining identity (K skipped steps save exactly K steps; interval 1 and ratio 0 are the
baseline; density 1 at 16 bits costs at least the baseline), its ops in the step plan, pairwise
composition with per-step times summing to the latency, and option errors naming the option.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import workloads
from workloads import apply_passes
from workloads.annotations import sparsity_of
from workloads.errors import InputError
from workloads.ir import OpKind
from workloads.passes.skip_steps import expected_k, variants
from workloads.passes.token_merge import merged_tokens

STEPS = 6


@pytest.fixture(scope="module")
def sd() -> workloads.OpGraph:
    return workloads.build("sd15", resolution=256, steps=STEPS)


@pytest.fixture(scope="module")
def dit() -> workloads.OpGraph:
    return workloads.build("dit_xl2", steps=4)


@pytest.fixture(scope="module")
def arch():
    return sim.load_arch("os128")


@pytest.fixture(scope="module")
def base(sd, arch):
    return sim.simulate(sd, arch)


def loop_times(result) -> list[float]:
    s = result.steps
    return list(s.loc[s["index"].notna(), "time_s"])


def step_time(result, label: str) -> float:
    s = result.steps.set_index("step")
    return float(s.loc[label, "time_s"])


def assert_steps_sum(result) -> None:
    total = float(result.steps["time_s"].sum())
    assert math.isfinite(result.latency_s) and result.latency_s > 0
    assert total == pytest.approx(result.latency_s, rel=1e-9)


# -- steps -----------------------------------------------------------------------------------
def test_steps_runs_fewer_identical_steps(sd, arch, base):
    r = sim.simulate(sd, arch, passes=[{"name": "steps", "steps": 2}])
    assert [lbl for lbl in r.steps["step"] if lbl.startswith("unet:")] == ["unet:step0", "unet:step1"]
    assert loop_times(r) == pytest.approx(loop_times(base)[:2], rel=1e-12)
    assert r.latency_s == pytest.approx(base.latency_s - sum(loop_times(base)[2:]), rel=1e-9)
    same = apply_passes(sd, [{"name": "steps", "steps": STEPS}])
    assert [op.steps for op in same.ops()] == [op.steps for op in sd.ops()]


# -- skip_steps ------------------------------------------------------------------------------
def test_skip_steps_saves_exactly_k_steps_and_adds_the_fetch(sd, arch, base):
    k = 2
    g = apply_passes(sd, [{"name": "skip_steps", "k": k, "lookup_ms": 2.0, "link_gbs": 8.0}])
    per_step = sum(op.macs for op in sd.ops() if op.repeat == STEPS)
    assert sd.total_macs() - g.total_macs() == k * per_step
    fetch = g["cache.fetch_latent"]
    assert fetch.kind is OpKind.DATA_MOVEMENT and fetch.repeat == 1 and fetch.stage == "unet"
    latent = 1 * 4 * 32 * 32 * 2  # fp16 latents of SD 1.5 at 256²
    assert fetch.annotations["extra_latency_s"] == pytest.approx(2e-3 + latent / 8e9)
    r = sim.simulate(g, arch, passes=[])
    labels = list(r.steps["step"])
    assert labels[labels.index("unet") + 1] == "unet:step2"  # the fetch runs before the loop
    assert loop_times(r) == pytest.approx(loop_times(base)[k:], rel=1e-12)
    fetch_s = step_time(r, "unet")
    assert fetch_s >= fetch.annotations["extra_latency_s"]
    assert r.latency_s == pytest.approx(base.latency_s - sum(loop_times(base)[:k]) + fetch_s, rel=1e-9)
    assert_steps_sum(r)


def test_skip_steps_distribution(sd):
    dist = {0: 0.25, 2: 0.25, 4: 0.5}
    assert expected_k(dist) == 3
    g = apply_passes(sd, [{"name": "skip_steps", "k": dist}])
    assert g["unet.conv_in"].steps == (3, 4, 5)
    assert [(p, v["k"]) for p, v in variants(dist, lookup_ms=1.0)] == [(0.25, 0), (0.25, 2), (0.5, 4)]
    miss = apply_passes(sd, [{"name": "skip_steps", "k": 0}])
    assert miss["cache.fetch_latent"].annotations["cache_bytes"] == 0
    assert miss.total_macs() == sd.total_macs()


# -- deepcache -------------------------------------------------------------------------------
def test_deepcache_interval_one_is_the_baseline(sd, arch, base):
    assert apply_passes(sd, [{"name": "deepcache", "interval": 1, "depth": 2}]) is sd
    r = sim.simulate(sd, arch, passes=[{"name": "deepcache", "interval": 1}])
    assert r.latency_s == base.latency_s and r.summary()["by_step"] == base.summary()["by_step"]


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_deepcache_unet_shallow_steps(sd, arch, base, depth):
    g = apply_passes(sd, [{"name": "deepcache", "interval": 3, "depth": depth}])
    assert g["deepcache.store"].steps == (0, 3) and g["deepcache.load"].steps == (1, 2, 4, 5)
    assert g["unet.mid_block.resnets.0.conv1"].steps == (0, 3)
    assert g["unet.up_blocks.3.resnets.0.conv1"].repeat == STEPS  # the shallow branch runs always
    assert g["unet.conv_in"].repeat == STEPS and g["scheduler.prev_sample"].repeat == STEPS
    assert (g["unet.down_blocks.0.resnets.0.conv1"].repeat == STEPS) == (depth >= 1)
    assert g["unet.down_blocks.1.resnets.0.conv1"].repeat == (STEPS if depth >= 2 else 2)
    store = g["deepcache.store"]
    assert store.annotations["cache_bytes"] == math.prod(store.output) * 2
    r = sim.simulate(g, arch)
    times, full = loop_times(r), loop_times(base)
    assert times[0] > times[1] and times[1] < full[1]
    assert times[1] == pytest.approx(times[2], rel=1e-12)
    assert_steps_sum(r)
    deeper = apply_passes(sd, [{"name": "deepcache", "interval": 3, "depth": depth + 1}]) if depth < 4 else None
    if deeper is not None:  # a deeper skip keeps more of the network in the shallow steps
        assert g.total_macs() < deeper.total_macs()


def test_deepcache_transformer_residual(dit, arch):
    g = apply_passes(dit, [{"name": "deepcache", "interval": 2, "depth": 3}])
    blocks = [f"transformer.transformer_blocks.{i}.attn1" for i in range(28)]
    kept = [i for i, n in enumerate(blocks) if g[n].repeat == 4]
    assert kept == [0, 1, 2, 25, 26, 27]
    assert g["deepcache.residual"].steps == (0, 2) and g["deepcache.apply_residual"].steps == (1, 3)
    assert_steps_sum(sim.simulate(g, arch))


# -- token_merge -----------------------------------------------------------------------------
def test_token_merge_ratio_zero_is_the_baseline(sd, arch, base):
    assert apply_passes(sd, [{"name": "token_merge", "ratio": 0, "targets": ["mlp"]}]) is sd
    assert sim.simulate(sd, arch, passes=[{"name": "token_merge", "ratio": 0.0}]).latency_s == base.latency_s


def _check_formulas(graph) -> None:
    for op in graph.ops():
        a = op.attrs
        if op.kind is OpKind.LINEAR:
            assert a["tokens"] * a["in_features"] == math.prod(op.inputs[0])
            assert op.macs == a["tokens"] * a["in_features"] * a["out_features"]
        if op.kind is OpKind.ATTENTION:
            assert (a["lq"], a["lk"]) == (op.inputs[0][1], op.inputs[1][1])
            assert op.macs == a["batch"] * a["heads"] * a["lq"] * a["lk"] * (a["head_dim"] + a["v_head_dim"])
            assert op.vector_ops == a["batch"] * a["heads"] * a["lq"] * a["lk"] * 5


def test_token_merge_shrinks_the_top_level(sd, arch, base):
    g = apply_passes(sd, [{"name": "token_merge", "ratio": 0.5}])
    prefix = "unet.down_blocks.0.attentions.0.transformer_blocks.0"
    attn = g[f"{prefix}.attn1"]
    kept = merged_tokens(1024, 0.5)
    assert kept == 512 and (attn.attrs["lq"], attn.attrs["lk"]) == (kept, kept)
    assert g[f"{prefix}.attn2"].attrs["lq"] == 1024  # default targets: self-attention only
    assert g[f"{prefix}.tome.similarity"].macs == 2 * 768 * 320 * 256
    assert g[f"{prefix}.tome.unmerge_self_attn"].output == (2, 1024, 320)
    assert g["unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1"].attrs["lq"] == 256  # level 2: untouched
    _check_formulas(g)
    every = apply_passes(sd, [{"name": "token_merge", "ratio": 0.5, "targets": ["self_attn", "cross_attn", "mlp"],
                               "max_downsample": 8}])  # fmt: skip
    _check_formulas(every)
    assert every[f"{prefix}.attn2"].attrs["lq"] == kept and every[f"{prefix}.ff.net.2"].attrs["tokens"] == 2 * kept
    assert every.total_macs() < g.total_macs() < sd.total_macs()
    r = sim.simulate(g, arch)
    assert r.latency_s < base.latency_s
    assert_steps_sum(r)


@settings(max_examples=8)
@given(st.floats(min_value=0.0, max_value=0.99))
def test_token_merge_macs_fall_with_ratio(ratio):
    g = workloads.build("sd15", resolution=256, steps=2)
    lo = apply_passes(g, [{"name": "token_merge", "ratio": ratio / 2, "targets": ["self_attn", "mlp"]}])
    hi = apply_passes(g, [{"name": "token_merge", "ratio": ratio, "targets": ["self_attn", "mlp"]}])
    attn = lambda graph: sum(op.macs * op.repeat for op in graph.ops() if op.kind is OpKind.ATTENTION)  # noqa: E731
    assert attn(hi) <= attn(lo) <= attn(g)
    _check_formulas(hi)


# -- delta -----------------------------------------------------------------------------------
def test_delta_full_density_costs_at_least_the_baseline(sd, arch, base):
    g = apply_passes(sd, [{"name": "delta", "density": 1, "bits": 16}])
    r = sim.simulate(g, arch)
    assert r.latency_s >= base.latency_s
    assert r.summary()["dram_bytes"] >= base.summary()["dram_bytes"]
    assert all(t >= b * (1 - 1e-12) for t, b in zip(loop_times(r), loop_times(base)))
    assert_steps_sum(r)


def test_delta_variants(sd):
    g = apply_passes(sd, [{"name": "delta", "density": 0.3, "bits": 4, "by_name": {"unet.conv_out": 0.5}}])
    conv = "unet.down_blocks.0.resnets.0.conv1"
    assert g[conv].steps == (0,) and g[f"{conv}@delta"].steps == tuple(range(1, STEPS))
    variant = g[f"{conv}@delta"]
    assert variant.dtypes.inputs == "int4" and variant.dtypes.weights == "fp16"
    assert sparsity_of(variant).activations == 0.3 and sparsity_of(g["unet.conv_out@delta"]).activations == 0.5
    assert g[f"{conv}@delta.encode"].dtypes.outputs == "int4"
    assert set(g.graph.predecessors(f"{conv}@delta")) == {f"{conv}@delta.encode"}
    assert f"{conv}@delta.decode" in set(g.graph.predecessors("unet.down_blocks.0.resnets.0.temb_add"))
    assert "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1@delta" not in g.graph  # attention: full
    assert g.total_macs() == sd.total_macs()  # MACs are work; the sparsity units decide what zeros save


# -- composition -----------------------------------------------------------------------------
PASSES = [
    {"name": "steps", "steps": 5},
    {"name": "skip_steps", "k": 1},
    {"name": "deepcache", "interval": 2},
    {"name": "token_merge", "ratio": 0.4, "targets": ["self_attn", "mlp"]},
    {"name": "delta", "density": 0.5, "bits": 8},
]


@pytest.mark.parametrize("first, second", list(itertools.combinations(range(len(PASSES)), 2)))
def test_pairs_compose(sd, arch, first, second):
    r = sim.simulate(sd, arch, passes=[PASSES[first], PASSES[second]])
    assert_steps_sum(r)
    assert r.steps["index"].notna().sum() >= 3


def test_all_compose(sd, arch, base):
    r = sim.simulate(sd, arch, passes=PASSES)
    assert_steps_sum(r)
    assert loop_times(r)[0] < loop_times(base)[0] * 1.5


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "entry, where",
    [
        ({"name": "skip_steps", "k": STEPS}, "skip_steps.k"),
        ({"name": "skip_steps", "k": {2: 0.5, 3: 0.4}}, "skip_steps.k"),
        ({"name": "skip_steps", "k": -1}, "skip_steps.k"),
        ({"name": "steps", "steps": 0}, "steps"),
        ({"name": "deepcache", "interval": 0}, "interval"),
        ({"name": "deepcache", "interval": 2, "depth": 5}, "deepcache.depth"),
        ({"name": "token_merge", "ratio": 1.0}, "token_merge.ratio"),
        ({"name": "token_merge", "ratio": -0.1}, "ratio"),
        ({"name": "token_merge", "ratio": 0.5, "targets": ["self_attn", "ffn"]}, "token_merge.targets"),
        ({"name": "token_merge", "ratio": 0.5, "max_downsample": 0}, "max_downsample"),
        ({"name": "delta", "bits": 5}, "delta.bits"),
        ({"name": "delta", "density": 0}, "density"),
        ({"name": "delta", "classes": ["attention"]}, "delta.classes"),
        ({"name": "deepcache", "interval": 2, "stage": "vae"}, "deepcache.stage"),
    ],
)
def test_errors_name_the_option(sd, entry, where):
    with pytest.raises(InputError, match=where.replace(".", r"\.")):
        apply_passes(sd, [entry])
