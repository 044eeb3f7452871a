"""Chameleon-7B and its VQGAN tokenizer: parameter counts, the LLaMA-2 differences (QK-norm,
vocabulary, swin norm), text-to-image pipeline structure (CFG rows, decode steps, VQ decode) and
input errors. No torch needed (the reference comparisons are in test_torch_chameleon.py)."""

from __future__ import annotations

import json

import networkx as nx
import pytest

import workloads
from workloads import InputError, OpKind
from workloads.zoo import chameleon


def published(**change):
    """The published config as plain JSON-able dicts, with `change` applied."""
    config = {**chameleon.CHAMELEON_7B_CONFIG, "vq_config": dict(chameleon.CHAMELEON_VQ_CONFIG)}
    return {**config, **change}


LM_PARAMS = 7_013_666_816  # = transformers ChameleonForConditionalGeneration minus model.vqmodel
LLAMA2_PARAMS = 6_738_415_616
HIDDEN, LAYERS, VOCAB = 4096, 32, 65536


def test_lm_params_are_llama2_plus_vocabulary_and_qk_norm():
    graph = workloads.build("chameleon_7b_decode")
    extra_vocab = 2 * (VOCAB - 32000) * HIDDEN  # embed_tokens and lm_head
    qk_norm = LAYERS * 2 * 2 * HIDDEN  # q_norm and k_norm: per-head weight and bias
    assert graph.total_params() == LM_PARAMS == LLAMA2_PARAMS + extra_vocab + qk_norm
    norms = [op for op in graph if op.name.endswith(("q_norm", "k_norm"))]
    assert len(norms) == 2 * LAYERS and all(op.params == 2 * HIDDEN for op in norms)


def test_lm_forward_structure():
    graph = workloads.build("chameleon_7b_prefill", prompt_len=128)
    llama = workloads.build("llama2_7b_prefill", prompt_len=128)
    # two per-head norms (statistics + affine) per layer and the image-token logits mask
    assert len(graph) == len(llama) + LAYERS * 4 + 1
    head = graph["lm_head"]
    assert head.output == (1, 1, VOCAB) and head.attrs["tokens"] == 1
    ln = graph["model.layers.0.self_attn.q_norm.layer_norm"]
    assert ln.kind is OpKind.LAYER_NORM and ln.output == (1, 128, 32, 128) and ln.params == 0
    linear = sum(op.flops for op in graph if op.op_class == "linear")
    assert linear - sum(op.flops for op in llama if op.op_class == "linear") == 2 * (VOCAB - 32000) * HIDDEN


def test_swin_norm_config_moves_norms_after_sublayers(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(published(swin_norm=True)))
    swin = workloads.build("chameleon_7b_decode", config=str(path))
    pre = workloads.build("chameleon_7b_decode")
    assert swin.total_params() == pre.total_params() and len(swin) == len(pre)
    layer = "model.layers.0."
    assert set(swin.graph.predecessors(layer + "input_layernorm")) == {layer + "self_attn.o_proj"}
    assert set(pre.graph.predecessors(layer + "input_layernorm")) == {"model.embed_tokens"}


@pytest.mark.parametrize(("guidance", "rows"), [("instruct", 3), ("text", 2), ("none", 1)])
def test_text_to_image_pipeline(guidance, rows):
    graph = workloads.build("chameleon_7b", prompt_len=40, batch=2, guidance=guidance, kv_buckets=3)
    assert nx.is_directed_acyclic_graph(graph.graph) and nx.is_weakly_connected(graph.graph)
    assert graph.total_params() == LM_PARAMS + workloads.build("chameleon_vq_decoder").total_params()
    assert list(dict.fromkeys(op.stage for op in graph)) == ["prefill", "decode", "vq_decoder"]
    heads = [op for op in graph if op.name.endswith("lm_head")]
    assert sum(op.repeat for op in heads) == 1024  # the prefill's token + 1,023 decode steps
    assert all(op.output == (2 * rows, 1, VOCAB) for op in heads)
    attn = [op for op in graph if op.kind is OpKind.ATTENTION and op.stage == "decode"]
    steps = sorted(s for op in attn if op.name.endswith("layers.0.self_attn") for s in op.step_indices)
    assert steps == list(range(1023))
    # mean kv length over the decode steps is exact to half a token per step
    kv = sum(op.attrs["lk"] * op.repeat for op in attn if op.name.endswith("layers.0.self_attn")) / 1023
    assert abs(kv - (40 + 512)) <= 0.5
    assert (any(op.name.endswith("cfg_combine") for op in graph)) == (rows > 1)
    out = [op for op in graph if op.stage == "vq_decoder"][-1]
    assert out.name == "decoder.conv_out" and out.output == (2, 3, 512, 512)


def test_guidance_rows_scale_lm_work():
    one, three = (workloads.build("chameleon_7b", prompt_len=16, guidance=g, kv_buckets=2) for g in ("none", "instruct"))

    def lm_flops(g):
        return sum(op.flops * op.repeat for op in g if op.stage != "vq_decoder")

    assert lm_flops(three) == 3 * lm_flops(one)


def test_vq_encoder_and_decoder_shapes():
    enc = workloads.build("chameleon_vq_encoder", resolution=256, batch=2)
    ids = enc["quantize.argmin"]
    assert ids.output == (2, 256)  # 16x downsampling: 16 x 16 tokens
    dist = enc["quantize.distances"]
    assert dist.kind is OpKind.MATMUL and dist.macs == 2 * 256 * 256 * 8192
    assert enc["quantize.embedding"].params == 8192 * 256
    dec = workloads.build("chameleon_vq_decoder", image_tokens=256)
    assert dec["decoder.conv_out"].output == (1, 3, 256, 256)
    mid = dec["decoder.mid.attn_1"]
    assert mid.kind is OpKind.ATTENTION and (mid.attrs["heads"], mid.attrs["lq"], mid.attrs["head_dim"]) == (1, 256, 512)
    # no attention at any level (attn_resolutions null): only the mid blocks attend
    assert [op.name for op in enc if op.kind is OpKind.ATTENTION] == ["encoder.mid.attn_1"]
    assert len([op for op in dec if op.kind is OpKind.ATTENTION]) == 1
    assert len([op for op in dec if op.name.endswith("conv2")]) == 5 * 3 + 2


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("chameleon_7b", {"image_tokens": 1000}),  # not a square grid
        ("chameleon_7b", {"guidance": "double"}), ("chameleon_7b", {"cfg": True}),
        ("chameleon_7b", {"prompt_len": 3500}),  # beyond 4,096 positions
        ("chameleon_7b", {"kv_cache": "paged"}),
        ("chameleon_vq_encoder", {"resolution": 500}),
        ("chameleon_vq_decoder", {"image_tokens": 8}),
    ],
)
def test_bad_options(name, options):
    with pytest.raises(InputError):
        workloads.build(name, **options)


@pytest.mark.parametrize(
    "change",
    [{"num_key_value_heads": 8}, {"vq_config": {"attn_type": "linear"}}, {"vq_config": 3}, {"swin_norm": "yes"}],
)
def test_bad_config(tmp_path, change):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(published(**change)))
    with pytest.raises(InputError):
        workloads.build("chameleon_7b_decode", config=str(path))
