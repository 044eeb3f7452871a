"""Self-speculative decoding (the `speculative` pass) and the Lee et al. levers study.

The pass's cost model: rounds of gamma early-exit draft steps + one verify pass over gamma + 1
tokens; alpha = 0 yields one token per round (never cheaper than plain decoding), alpha = 1
yields gamma + 1 tokens per verify pass."""

from __future__ import annotations

import networkx as nx
import pytest

import sim
import workloads
from workloads import InputError, OpKind
from workloads.passes import apply_passes
from workloads.passes.speculative import DRAFT, rounds, tokens_per_round, widen

GEN = 33  # 32 decode steps


@pytest.fixture(scope="module")
def llama():
    return workloads.build("llama2_7b", prompt_len=64, gen_tokens=GEN, kv_buckets=2)


def spec(graph, **options):
    return apply_passes(graph, [{"name": "speculative", **{"exit_layer": 8, "draft_tokens": 4, **options}}])


def decode_macs(graph):
    return sum(op.macs * op.repeat for op in graph if op.stage == "decode")


def heads(graph, draft):
    return [op for op in graph if op.name.endswith("lm_head") and op.stage == "decode" and op.name.startswith(DRAFT) == draft]


def test_tokens_per_round():
    assert tokens_per_round(0.0, 4) == 1.0
    assert tokens_per_round(1.0, 4) == 5.0
    assert tokens_per_round(0.5, 1) == pytest.approx(1.5)
    assert tokens_per_round(0.999999, 4) == pytest.approx(5.0, rel=1e-5)
    assert sum(rounds([16, 16], 1.0, 3)) == 8 and rounds([16, 16], 0.0, 3) == [16, 16]
    assert sum(rounds([1, 1], 1.0, 7)) == 1  # at least one round


def test_zero_acceptance_is_one_token_per_round(llama):
    out = spec(llama, acceptance=0.0)
    assert nx.is_directed_acyclic_graph(out.graph) and nx.is_weakly_connected(out.graph)
    verify, draft = heads(out, False), heads(out, True)
    assert sum(op.repeat for op in verify) == GEN - 1  # one verify pass per token
    assert sum(op.repeat for op in draft) == 4 * (GEN - 1)
    assert all(op.output[1] == 5 and op.attrs["tokens"] == 5 for op in verify)  # logits of gamma + 1 positions
    # per generated token: at least the baseline's work (the verify pass alone covers it)
    assert decode_macs(out) > decode_macs(llama)
    arch = sim.load_arch("h100")
    assert sim.simulate(out, arch).latency_s > sim.simulate(llama, arch).latency_s


def test_full_acceptance_gives_gamma_plus_one_tokens_per_verify(llama):
    out = spec(llama, acceptance=1.0, draft_tokens=3)
    verify = heads(out, False)
    assert sum(op.repeat for op in verify) == (GEN - 1) // 4
    arch = sim.load_arch("h100")
    assert sim.simulate(out, arch).latency_s < sim.simulate(llama, arch).latency_s
    # cost falls monotonically with the acceptance rate
    lat = [sim.simulate(spec(llama, acceptance=a), arch).latency_s for a in (0.0, 0.5, 0.9)]
    assert lat[0] > lat[1] > lat[2]


def test_draft_runs_exit_layers_only_and_steps_interleave(llama):
    out = spec(llama, acceptance=0.5, exit_layer=6, draft_tokens=2)
    drafts = [op for op in out if op.name.startswith(DRAFT)]
    layers = {int(op.name.split(".layers.")[1].split(".")[0]) for op in drafts if ".layers." in op.name}
    assert layers == set(range(6))
    assert any(op.name.endswith("model.norm") for op in drafts)  # the shared exit head
    step = {s for op in drafts for s in op.step_indices}
    verify = {s for op in heads(out, False) for s in op.step_indices}
    assert not step & verify and all(s % 3 == 2 for s in verify)  # round j: drafts 3j, 3j+1, verify 3j+2
    assert len(out.step_plan()) == 1 + len(step) + len(verify)


def test_widen_attention_and_cache():
    graph = workloads.build("llama2_7b_decode", kv_len=100, kv_cache="dynamic")
    attn = graph["model.layers.0.self_attn"]
    wide = widen(attn, 5)
    assert (wide.attrs["lq"], wide.attrs["lk"], wide.attrs["causal"]) == (5, 104, True)
    assert wide.macs == attn.macs * 5 * 104 // 100
    cat = widen(graph["model.layers.0.self_attn.cache_keys"], 5)
    assert cat.kind is OpKind.DATA_MOVEMENT and cat.output == (1, 104, 4096)
    assert widen(graph["model.layers.0.mlp.up_proj"], 5).macs == 5 * graph["model.layers.0.mlp.up_proj"].macs


def test_chameleon_text_to_image():
    graph = workloads.build("chameleon_7b", prompt_len=16, image_tokens=16, kv_buckets=1)
    out = spec(graph, acceptance=1.0, draft_tokens=4)
    assert sum(op.repeat for op in heads(out, False)) == 3  # 15 decode steps / 5 tokens per round
    assert [op for op in out if op.stage == "vq_decoder"] == [op for op in graph if op.stage == "vq_decoder"]


@pytest.mark.parametrize(
    "options",
    [{"exit_layer": 32}, {"exit_layer": 0}, {"draft_tokens": 0}, {"acceptance": 1.5}, {"acceptance": -0.1},
     {"stage": "prefill"}, {"bogus": 1}],
)  # fmt: skip
def test_bad_options(llama, options):
    with pytest.raises(InputError):
        spec(llama, **options)


def test_applied_twice_or_without_layers(llama):
    with pytest.raises(InputError):
        spec(spec(llama, acceptance=0.5), acceptance=0.5)
    with pytest.raises(InputError):
        spec(workloads.build("sd15_unet"), acceptance=0.5)


def test_levers_study_small(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from experiments.characterize import levers

    monkeypatch.setattr(levers, "ARCHS", ("h100",))
    monkeypatch.setattr(levers, "SMALL", {"llama2_7b": levers.SMALL["llama2_7b"]})
    study = levers.run(sim.load_arch("a100"), small=True)
    table = study.tables["levers"]
    assert list(table["lever"]) == [name for name, _ in levers.LEVERS]
    assert table["cumulative"].iloc[0] == 1.0 and (table["cumulative"] > 0).all()
    assert len(study.claims) == 5 and study.write(tmp_path).exists()
    assert levers.gpu_arch("h100").gpu.available  # H200 constants, HBM-scaled
    assert levers.gpu_arch("h100").gpu.gemm_read_gbs < levers.gpu_arch("h200").gpu.gemm_read_gbs
