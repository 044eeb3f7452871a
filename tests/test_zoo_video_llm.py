"""Video UNets (ModelScope UNet3D, Make-A-Video) and the LLaMA-2-7B baseline: parameter
counts, attention taxonomy, layout copies, scaling invariants, pipelines and input errors.
No torch needed (the torch comparisons are in test_torch_video_llm.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import networkx as nx
import pytest

import workloads
from workloads import GraphBuilder, InputError, OpKind
from workloads.zoo import llama, make_a_video, modelscope
from workloads.zoo.blocks import adm as _adm

AXES = {"spatial", "temporal", "joint", "text"}


def attention_ops(graph, **attrs):
    return [
        op for op in graph
        if op.kind is OpKind.ATTENTION and all(op.attrs[k] == v for k, v in attrs.items())
    ]  # fmt: skip


def flops(graph, cls=None, stage=None, **attrs):
    ops = attention_ops(graph, **attrs) if attrs else list(graph)
    return sum(op.flops * op.repeat for op in ops if cls in (None, op.op_class) and stage in (None, op.stage))


def moves(graph, what):
    return [op for op in graph if op.kind is OpKind.DATA_MOVEMENT and op.attrs["what"] == what]


@pytest.mark.parametrize(
    "name",
    ["modelscope_t2v", "modelscope_t2v_unet", "make_a_video", "make_a_video_decoder", "make_a_video_interpolation",
     "make_a_video_sr256", "make_a_video_sr768", "llama2_7b", "llama2_7b_prefill", "llama2_7b_decode"],
)  # fmt: skip
def test_attention_taxonomy_everywhere(name):
    graph = workloads.build(name)
    assert nx.is_directed_acyclic_graph(graph.graph) and nx.is_weakly_connected(graph.graph)
    for op in attention_ops(graph):
        assert op.attrs["role"] in ("self", "cross") and op.attrs["axis"] in AXES, op.name
        assert op.macs == op.attrs["batch"] * op.attrs["heads"] * op.attrs["lq"] * op.attrs["lk"] * 2 * op.attrs["head_dim"]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("modelscope_t2v", {"resolution": 250}),
        ("modelscope_t2v_unet", {"frames": 0}),
        ("make_a_video", {"frames": 0}),
        ("make_a_video", {"resolution": 256}),  # cascade resolutions are fixed
    ],
)
def test_video_bad_options(name, options):
    with pytest.raises(InputError):
        workloads.build(name, **options)


@pytest.mark.parametrize("name", ["modelscope_t2v_unet", "make_a_video_decoder"])
def test_video_unet_frames_scaling(name):
    """Twice the frames: spatial work and convs double, temporal attention (F x F per pixel) quadruples."""
    one, two = (workloads.build(name, frames=f) for f in (8, 16))
    assert flops(two, axis="spatial") == 2 * flops(one, axis="spatial")
    assert flops(two, axis="temporal") == 4 * flops(one, axis="temporal")
    assert flops(two, "conv") == 2 * flops(one, "conv")


# -- ModelScope text-to-video ----------------------------------------------------------------
def test_modelscope_params():
    assert workloads.build("modelscope_t2v_unet").total_params() == 1_411_233_860
    assert workloads.build("modelscope_t2v_text_encoder").total_params() == 340_387_840
    assert workloads.build("modelscope_t2v_vae_decoder").total_params() == 49_490_199
    parts = ("modelscope_t2v_unet", "modelscope_t2v_text_encoder", "modelscope_t2v_vae_decoder")
    assert workloads.build("modelscope_t2v").total_params() == sum(workloads.build(p).total_params() for p in parts)


def test_modelscope_unet_attention_profile():
    g = workloads.build("modelscope_t2v_unet", resolution=256, frames=16, batch=1)
    temporal = attention_ops(g, axis="temporal")
    spatial = attention_ops(g, axis="spatial")
    # transformer_in + 16 TransformerTemporalModels, two self-attentions each
    assert len(temporal) == 2 * 17
    assert all("temp_attentions" in op.name or op.name.startswith("transformer_in") for op in temporal)
    assert all(op.attrs["lq"] == op.attrs["lk"] == 16 and op.attrs["role"] == "self" for op in temporal)
    assert {op.attrs["batch"] for op in temporal} == {32 * 32, 16 * 16, 8 * 8, 4 * 4}  # B*H*W sequences
    assert all(".attentions." in op.name for op in spatial)
    assert {op.attrs["lq"] for op in spatial} == {1024, 256, 64, 16}
    assert {op.attrs["lk"] for op in attention_ops(g, role="cross")} == {77}
    assert all(op.attrs["batch"] == 16 for op in spatial)  # frames stacked into the batch
    assert {op.attrs["head_dim"] for op in attention_ops(g)} == {64}


def test_modelscope_layout_copies():
    g = workloads.build("modelscope_t2v_unet")
    # 17 TransformerTemporalModels (3 copies each) and 22 TemporalConvLayers (1 copy each)
    assert len(moves(g, "frames_to_video")) == 17 + 22
    assert len(moves(g, "video_to_temporal_tokens")) == len(moves(g, "temporal_tokens_to_frames")) == 17
    assert len(moves(g, "video_to_frames")) == 1  # the input permute
    assert len(moves(g, "repeat_interleave")) == 2  # time embedding and text states over frames
    assert sum(op.kind is OpKind.CONV3D and op.attrs["kernel"] == (3, 1, 1) for op in g) == 4 * 22


def test_modelscope_resolution_scaling():
    small, big = (workloads.build("modelscope_t2v_unet", resolution=r) for r in (256, 512))
    assert flops(big, axis="temporal") == 4 * flops(small, axis="temporal")  # 4x the sequences
    assert flops(big, axis="spatial", role="self") == 16 * flops(small, axis="spatial", role="self")


def test_modelscope_pipeline_cfg_and_steps():
    on = workloads.build("modelscope_t2v", steps=10, cfg=True)
    off = workloads.build("modelscope_t2v", steps=10, cfg=False)
    assert {op.stage for op in on} == {"text_encoder", "unet", "vae_decoder"}
    for cls in ("conv", "linear", "attention"):
        assert flops(on, cls, "unet") == 2 * flops(off, cls, "unet")
        assert flops(on, cls, "vae_decoder") == flops(off, cls, "vae_decoder")
    assert {op.repeat for op in on if op.stage == "unet"} == {10}
    twenty = workloads.build("modelscope_t2v", steps=20)
    assert flops(twenty, stage="unet") == 2 * flops(on, stage="unet")
    decoder_in = [op for op in on if op.stage == "vae_decoder" and op.name == "vae.post_quant_conv"]
    assert decoder_in[0].inputs[0] == (16, 4, 32, 32)  # every frame decoded, batch B*F


@pytest.mark.parametrize(
    "config",
    [
        None,  # a missing file
        {**modelscope.UNET_CONFIG, "num_attention_heads": 8},
        {**modelscope.UNET_CONFIG, "down_block_types": ["DownBlock2D"] * 4},
    ],
)
def test_modelscope_bad_unet_config(tmp_path, config):
    path = tmp_path / "unet.json"
    if config is not None:
        path.write_text(json.dumps(config))
    with pytest.raises(InputError):
        workloads.build("modelscope_t2v_unet", config=str(path))


def test_modelscope_config_file_roundtrip(tmp_path):
    path = tmp_path / "unet.json"
    path.write_text(json.dumps(dict(modelscope.UNET_CONFIG)))
    assert workloads.build("modelscope_t2v_unet", config=str(path)).total_params() == 1_411_233_860


# -- Make-A-Video ------------------------------------------------------------------------------
def spatial_params(cfg, res):
    """Params of the 2D network the video model extends (temporal layers off)."""
    b = GraphBuilder("spatial", "x")
    clip = b.input((1, cfg.clip_dim)) if cfg.clip_dim else None
    _adm.adm_unet(b, replace(cfg, temporal=False), b.input((1, cfg.in_channels, res, res)), clip_emb=clip)
    return b.build().total_params()


def test_make_a_video_params_and_calibration():
    assert workloads.build("make_a_video_decoder").total_params() == 2_932_899_960
    assert workloads.build("make_a_video_interpolation").total_params() == 2_932_918_392
    assert workloads.build("make_a_video_sr256").total_params() == 905_173_153
    # SR_h: default `sr768_variant="stated_size"` (time embedding 6 x 192) vs the Table 3 reading.
    assert workloads.build("make_a_video_sr768").total_params() == 297_763_971
    assert workloads.build("make_a_video_sr768", sr768_variant="table_3").total_params() == 282_059_139
    # 2D parts vs the sizes GLIDE/unCLIP state (module docstring): 2.3B, 700M, 300M
    assert spatial_params(make_a_video.DECODER, 64) == 2_253_907_462
    assert abs(spatial_params(make_a_video.DECODER, 64) / 2.3e9 - 1) < 0.05
    assert abs(spatial_params(make_a_video.SR256, 256) / 700e6 - 1) < 0.05
    assert abs(spatial_params(make_a_video.SR768, 768) / 300e6 - 1) < 0.05  # -0.7%
    assert abs(spatial_params(make_a_video.SR768_VARIANTS["table_3"], 768) / 300e6 - 1) < 0.065  # -6.0%, documented
    g = workloads.build("make_a_video")
    assert g.total_params() == 8_443_280_916
    # Prior: default `prior_variant="stated_size"` (MLP 5120) within 5% of unCLIP's "1B".
    prior = sum(op.params for op in g if op.stage == "prior")
    assert prior == 1_020_492_800 and abs(prior / 1e9 - 1) < 0.05
    literal = workloads.build("make_a_video", prior_variant="table_3", sr768_variant="table_3")
    assert literal.total_params() == 8_729_639_700
    assert sum(op.params for op in literal if op.stage == "prior") == 1_322_556_416  # +32%, documented
    blocks = sum(op.params for op in literal if op.stage == "prior" and ".resblocks." in op.name)
    assert abs(blocks / 1.2e9 - 1) < 0.01  # GLIDE's "roughly 1.2B" for the same 24 x 2048 transformer
    # The SR_h calibration acts on per-frame vectors only: its GEMM FLOPs barely move.
    stated_sr, table_sr = (workloads.build("make_a_video_sr768", sr768_variant=v) for v in ("stated_size", "table_3"))
    assert abs(flops(stated_sr) / flops(table_sr) - 1) < 1e-5
    with pytest.raises(InputError):
        workloads.build("make_a_video", prior_variant="1B")


def test_make_a_video_pipeline_stages():
    g = workloads.build("make_a_video", steps=100)
    repeats = {}
    for op in g:
        repeats.setdefault(op.stage, set()).add(op.repeat)
    assert repeats == {
        "text_encoder": {1}, "prior": {64}, "decoder": {100}, "interpolation": {1, 100},
        "super_resolution_1": {27}, "super_resolution_2": {15},
    }  # fmt: skip
    no_prior = workloads.build("make_a_video", prior=False)
    assert {op.stage for op in no_prior} == {"decoder", "interpolation", "super_resolution_1", "super_resolution_2"}


def test_make_a_video_cfg_doubles_guided_stages_only():
    on, off = (workloads.build("make_a_video", cfg=c) for c in (True, False))
    for stage in ("prior", "decoder", "interpolation"):
        assert flops(on, stage=stage) == 2 * flops(off, stage=stage), stage
    for stage in ("super_resolution_1", "super_resolution_2"):
        assert flops(on, stage=stage) == flops(off, stage=stage), stage


def test_make_a_video_attention_profile():
    d = workloads.build("make_a_video_decoder", frames=16)
    temporal, spatial = attention_ops(d, axis="temporal"), attention_ops(d, axis="spatial")
    assert len(temporal) == len(spatial) == 3 * 3 + 1 + 3 * 4  # attention at 32/16/8 down, middle, up
    assert all(op.attrs["lq"] == op.attrs["lk"] == 16 for op in temporal)
    assert {op.attrs["batch"] for op in temporal} == {32 * 32, 16 * 16, 8 * 8}
    assert all(op.attrs["lk"] == op.attrs["lq"] + 4 for op in spatial)  # + 4 CLIP context tokens
    assert all(op.name.endswith(".temporal") for op in temporal)
    interp = workloads.build("make_a_video_interpolation", frames=16)
    assert {op.attrs["lq"] for op in attention_ops(interp, axis="temporal")} == {76}
    for name in ("make_a_video_sr256", "make_a_video_sr768"):
        assert not attention_ops(workloads.build(name))


def test_make_a_video_pseudo3d_layers():
    sr = workloads.build("make_a_video_sr256")
    temporal_convs = [op for op in sr if op.kind is OpKind.CONV1D]
    spatial_3x3 = [op for op in sr if op.kind is OpKind.CONV2D and op.attrs["kernel"] == (3, 3)]
    assert len(temporal_convs) == len(spatial_3x3)  # one 1D conv after every 3x3 conv
    assert all(op.attrs["kernel"] == (3,) and op.output[2] == 76 for op in temporal_convs)
    assert len(moves(sr, "frames_to_temporal")) == len(moves(sr, "temporal_to_frames")) == len(temporal_convs)
    sr768 = workloads.build("make_a_video_sr768")
    assert not any(op.kind is OpKind.CONV1D for op in sr768) and not moves(sr768, "frames_to_temporal")
    assert sr768.ops()[0].inputs[0][0] == 76  # 2D, every frame in the batch


# -- LLaMA-2-7B -----------------------------------------------------------------------------
LLAMA_PARAMS = 6_738_415_616


@pytest.mark.parametrize("name", ["llama2_7b", "llama2_7b_prefill", "llama2_7b_decode"])
def test_llama_params(name):
    assert workloads.build(name).total_params() == LLAMA_PARAMS


def test_llama_prefill_profile_and_flops():
    g = workloads.build("llama2_7b_prefill", prompt_len=512)
    attn = attention_ops(g)
    assert len(attn) == 32
    assert all(op.attrs["lq"] == op.attrs["lk"] == 512 and op.attrs["causal"] and op.attrs["axis"] == "text" for op in attn)
    assert g.total_flops() == 6_769_130_602_496  # == FlopCounterMode (test_torch_video_llm)
    double = workloads.build("llama2_7b_prefill", prompt_len=1024)
    assert flops(double, "attention") == 4 * flops(g, "attention")
    lm_head = 2 * 4096 * 32000  # last position only, both lengths
    assert flops(double, "linear") - lm_head == 2 * (flops(g, "linear") - lm_head)


def test_llama_decode_kv_scaling_and_cache():
    g = workloads.build("llama2_7b_decode", kv_len=512)
    attn = attention_ops(g)
    assert all(op.attrs["lq"] == 1 and op.attrs["lk"] == 512 and not op.attrs["causal"] for op in attn)
    assert flops(workloads.build("llama2_7b_decode", kv_len=1024), "attention") == 2 * flops(g, "attention")
    assert flops(workloads.build("llama2_7b_decode", kv_len=1024), "linear") == flops(g, "linear")
    static = moves(g, "kv_cache_write")
    assert len(static) == 64 and all(op.output == (1, 1, 4096) for op in static)
    dynamic = workloads.build("llama2_7b_decode", kv_len=512, kv_cache="dynamic")
    cats = moves(dynamic, "concat")
    assert len(cats) == 64 and all(op.output == (1, 512, 4096) for op in cats)


def test_llama_decode_buckets():
    assert llama.decode_buckets(512, 127, 4) == [(529, 32), (561, 32), (593, 32), (624, 31)]
    assert llama.decode_buckets(10, 3, 8) == [(11, 1), (12, 1), (13, 1)]
    assert sum(r for _, r in llama.decode_buckets(100, 1000, 7)) == 1000


def test_llama_pipeline_decode_phase():
    prompt, gen = 512, 128
    g = workloads.build("llama2_7b", prompt_len=prompt, gen_tokens=gen)
    assert len(g) < 3000
    decode = [op for op in attention_ops(g) if op.stage == "decode"]
    assert sum(op.repeat for op in decode) == 32 * (gen - 1)
    exact = sum(prompt + i for i in range(1, gen)) * 32 * 2 * 32 * 128 * 2
    assert abs(flops(g, "attention", "decode") - exact) <= 0.5 * (gen - 1) * 32 * 2 * 32 * 128 * 2
    every = workloads.build("llama2_7b", prompt_len=prompt, gen_tokens=9, kv_buckets=8)
    exact9 = sum(prompt + i for i in range(1, 9)) * 32 * 2 * 32 * 128 * 2
    assert flops(every, "attention", "decode") == exact9
    only_prefill = workloads.build("llama2_7b", gen_tokens=1)
    assert {op.stage for op in only_prefill} == {"prefill"}
    assert all(op.params == 0 for op in g if op.stage == "decode")


def test_llama_bad_options():
    with pytest.raises(InputError):
        workloads.build("llama2_7b_prefill", prompt_len=5000)
    with pytest.raises(InputError):
        workloads.build("llama2_7b", prompt_len=4000, gen_tokens=200)
    with pytest.raises(InputError):
        workloads.build("llama2_7b_decode", kv_cache="paged")
    with pytest.raises(InputError):
        workloads.build("llama2_7b_decode", kv_len=-1)


def test_llama_gqa_config_rejected(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**llama.LLAMA2_7B_CONFIG, "num_key_value_heads": 8}))
    with pytest.raises(InputError):
        workloads.build("llama2_7b_prefill", config=str(path))
