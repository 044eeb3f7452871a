"""Stable Diffusion 1.5 (and SD 2.1 / SDXL UNet configs): exact parameter counts, the
attention profile, pipeline composition and input errors. No torch needed."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workloads
from workloads import GraphBuilder, InputError, OpKind
from workloads.zoo import sd15
from workloads.zoo.blocks import vae as _vae

DATA = Path(__file__).parent / "data"
SD21_UNET = DATA / "sd21_unet_config.json"
SDXL_UNET = DATA / "sdxl_unet_config.json"


def class_flops(graph: workloads.OpGraph, cls: str, stage: str | None = None) -> int:
    return sum(op.flops * op.repeat for op in graph if op.op_class == cls and stage in (None, op.stage))


def stage_macs(graph: workloads.OpGraph, stage: str) -> int:
    return sum(op.macs * op.repeat for op in graph if op.stage == stage)


# -- exact parameter counts (diffusers / transformers) -------------------------------------
def test_unet_params():
    assert workloads.build("sd15_unet").total_params() == 859_520_964


def test_text_encoder_params():
    assert workloads.build("sd15_text_encoder").total_params() == 123_060_480


def test_whole_vae_params():
    b = GraphBuilder("sd_vae", "vae")
    _vae.autoencoder_kl(b, sd15.VAE, b.input((1, 3, 512, 512)))
    assert b.build().total_params() == 83_653_863


def test_vae_decoder_params():
    # diffusers: sum of AutoencoderKL.decoder and .post_quant_conv parameters.
    assert workloads.build("sd15_vae_decoder").total_params() == 49_490_199


def test_sd21_unet_params():
    assert workloads.build("sd15_unet", config=str(SD21_UNET)).total_params() == 865_910_724


def test_sdxl_unet_params():
    g = workloads.build("sd15_unet", resolution=1024, config=str(SDXL_UNET))
    assert g.total_params() == 2_567_463_684
    # SDXL: 1 + 2*2 + 2*10 (down) + 10 (mid) + 3*10 + 3*2 (up) = 70 transformer blocks
    assert sum(op.kind is OpKind.ATTENTION and op.attrs["role"] == "cross" for op in g) == 70
    assert {op.attrs["lk"] for op in g if op.kind is OpKind.ATTENTION and op.attrs["role"] == "cross"} == {77}


def test_pipeline_params_are_its_components():
    parts = sum(workloads.build(n).total_params() for n in ("sd15_unet", "sd15_vae_decoder", "sd15_text_encoder"))
    assert workloads.build("sd15").total_params() == parts


# -- attention profile ----------------------------------------------------------------------
def attention_ops(graph, role):
    return [op for op in graph if op.kind is OpKind.ATTENTION and op.attrs["role"] == role]


def test_unet_attention_profile_at_512():
    g = workloads.build("sd15_unet", resolution=512)
    self_attn, cross_attn = attention_ops(g, "self"), attention_ops(g, "cross")
    assert len(self_attn) == len(cross_attn) == 16  # 2+2+2 down, 1 mid, 3+3+3 up
    assert {op.attrs["lq"] for op in self_attn} == {4096, 1024, 256, 64}
    assert all(op.attrs["lk"] == op.attrs["lq"] for op in self_attn)
    # No attention at the 8x8 down/up level: 64 tokens only in the mid block.
    assert [op.name for op in self_attn if op.attrs["lq"] == 64] == ["mid_block.attentions.0.transformer_blocks.0.attn1"]
    assert {op.attrs["lk"] for op in cross_attn} == {77}
    assert {op.attrs["lq"] for op in cross_attn} == {4096, 1024, 256, 64}
    # diffusers quirk: attention_head_dim=8 means 8 heads (of 40, 80, 160 channels).
    assert {op.attrs["heads"] for op in self_attn + cross_attn} == {8}
    assert {op.attrs["head_dim"] for op in self_attn} == {40, 80, 160}
    assert {op.attrs["axis"] for op in self_attn + cross_attn} == {"spatial"}


def test_op_names_mirror_diffusers_modules():
    g = workloads.build("sd15_unet")
    op = g["down_blocks.0.attentions.1.transformer_blocks.0.attn1"]
    assert op.kind is OpKind.ATTENTION and op.block == "down_blocks.0.attentions.1.transformer_blocks.0"
    assert g["down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k"].attrs["in_features"] == 768
    assert g["up_blocks.1.resnets.2.conv_shortcut"].attrs["in_ch"] == 1280 + 640
    assert g["down_blocks.2.downsamplers.0.conv"].attrs["stride"] == (2, 2)
    assert g["up_blocks.0.upsamplers.0.interpolate"].kind is OpKind.RESAMPLE
    moves = [op for op in g if op.kind is OpKind.DATA_MOVEMENT]
    assert {op.attrs["what"] for op in moves} == {"nchw_to_nhwc", "nhwc_to_nchw", "concat"}
    assert sum(op.attrs["what"] == "concat" for op in moves) == 12  # one skip per up-block resnet


def test_sd21_uses_linear_projection_and_64_channel_heads():
    g = workloads.build("sd15_unet", config=str(SD21_UNET))
    assert g["down_blocks.0.attentions.0.proj_in"].kind is OpKind.LINEAR
    heads = {(op.attrs["heads"], op.attrs["head_dim"]) for op in attention_ops(g, "self")}
    assert heads == {(5, 64), (10, 64), (20, 64)}


# -- pipeline ---------------------------------------------------------------------------------
def test_pipeline_repeats_unet_with_cfg_batch():
    g = workloads.build("sd15", steps=50, cfg=True)
    assert {op.stage for op in g} == {"text_encoder", "unet", "vae_decoder"}
    unet = [op for op in g if op.name.startswith("unet.")]
    assert unet and all(op.repeat == 50 and op.stage == "unet" for op in unet)
    assert g["unet.conv_in"].output[0] == 2  # uncond + cond in one batch
    assert g["text_encoder.embeddings.token_embedding"].output[0] == 2  # negative + positive prompt
    assert all(op.repeat == 1 for op in g if op.stage != "unet")
    assert g["vae.decoder.conv_out"].output == (1, 3, 512, 512)
    guidance = [op for op in g if op.block in ("guidance", "scheduler")]
    assert {op.name for op in guidance} >= {"guidance.sub", "guidance.add", "scheduler.prev_sample"}
    assert all(op.repeat == 50 and op.output == (1, 4, 64, 64) for op in guidance if op.name != "guidance.concat_latents")
    # One DAG: text encoder -> denoising step -> decoder.
    assert nx.is_directed_acyclic_graph(g.graph) and nx.is_weakly_connected(g.graph)
    assert nx.has_path(g.graph, "text_encoder.final_layer_norm", "unet.conv_out")
    assert nx.has_path(g.graph, "scheduler.prev_sample", "vae.decoder.conv_out")
    assert g["latents_scale"].stage == "vae_decoder"


def test_cfg_off_halves_unet_macs():
    with_cfg = stage_macs(workloads.build("sd15", steps=5, cfg=True), "unet")
    without = stage_macs(workloads.build("sd15", steps=5, cfg=False), "unet")
    assert with_cfg == 2 * without
    assert without == 5 * workloads.build("sd15_unet").total_macs()
    assert not [op for op in workloads.build("sd15", cfg=False) if op.block == "guidance"]


def test_total_flops_linear_in_steps():
    f = {s: workloads.build("sd15", steps=s).total_flops() for s in (1, 2, 3, 50)}
    per_step = workloads.build("sd15_unet", batch=2).total_flops()
    assert f[2] - f[1] == f[3] - f[2] == per_step
    assert f[50] == f[1] + 49 * per_step


def test_conv_flops_scale_with_pixels():
    for name in ("sd15", "sd15_unet", "sd15_vae_decoder"):
        small = class_flops(workloads.build(name, resolution=256), "conv")
        large = class_flops(workloads.build(name, resolution=512), "conv")
        assert large == 4 * small, name


@settings(max_examples=8, deadline=None)
@given(side=st.sampled_from([256, 320, 384, 512, 576, 768]), batch=st.integers(1, 4))
def test_unet_params_fixed_and_macs_linear_in_batch(side, batch):
    one = workloads.build("sd15_unet", resolution=side)
    many = workloads.build("sd15_unet", resolution=side, batch=batch)
    assert many.total_params() == 859_520_964
    assert many.total_macs() == batch * one.total_macs()


def test_odd_latent_sizes_upsample_to_the_skip():
    # 520 px -> 65 latents -> 33 -> 17 -> 9; diffusers upsamples to the skip's size.
    g = workloads.build("sd15_unet", resolution=520)
    assert g["up_blocks.0.upsamplers.0.interpolate"].output[2:] == (17, 17)
    assert g["conv_out"].output == (1, 4, 65, 65)


def test_registry_entries():
    reg = workloads.registry()
    for name in ("sd15", "sd15_unet", "sd15_vae_decoder", "sd15_text_encoder"):
        assert reg[name].family == "diffusion-tti"
        assert reg[name].component == (name != "sd15")
    assert dict(reg["sd15"].options) == {"resolution": 512, "batch": 1, "steps": 50, "cfg": True, "config": ""}


# -- input errors -----------------------------------------------------------------------------
def test_unknown_option():
    with pytest.raises(InputError, match="no option 'step'"):
        workloads.build("sd15", step=20)


@pytest.mark.parametrize("name", ["sd15", "sd15_unet", "sd15_vae_decoder"])
def test_resolution_not_divisible_by_8(name):
    with pytest.raises(InputError, match="not divisible"):
        workloads.build(name, resolution=500)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match="nope.json"):
        workloads.build("sd15", config=str(missing))


def test_bad_json_config(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        workloads.build("sd15_unet", config=str(bad))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"class_embed_type": "timestep"}, "class_embed_type"),
        ({"down_block_types": ["AttnDownBlock2D"] + sd15.UNET_CONFIG["down_block_types"][1:]}, "AttnDownBlock2D"),
        ({"up_block_types": ["UpBlock2D"]}, "up_block_types"),
        ({"resnet_time_scale_shift": "scale_shift"}, "resnet_time_scale_shift"),
        ({"attention_head_dim": [8, 8]}, "attention_head_dim"),
        ({"num_attention_heads": 8}, "num_attention_heads"),
        ({"addition_embed_type": "text"}, "addition_embed_type"),
        ({"block_out_channels": [320, 640, 1280, 1000]}, "norm_num_groups"),
    ],
)
def test_unsupported_unet_config(tmp_path, change, match):
    path = tmp_path / "unet.json"
    path.write_text(json.dumps({**sd15.UNET_CONFIG, **change}))
    with pytest.raises(InputError, match=match):
        workloads.build("sd15_unet", config=str(path))


def test_irrelevant_config_keys_are_ignored(tmp_path):
    path = tmp_path / "unet.json"
    path.write_text(json.dumps({**sd15.UNET_CONFIG, "norm_eps": 1e-6, "upcast_attention": True, "whatever": 3}))
    assert workloads.build("sd15_unet", config=str(path)).total_params() == 859_520_964


def test_pipeline_rejects_unet_for_other_latents(tmp_path):
    # An inpainting UNet (9 input channels) builds alone but not on the VAE's 4-channel latents.
    path = tmp_path / "unet.json"
    path.write_text(json.dumps({**sd15.UNET_CONFIG, "in_channels": 9}))
    assert workloads.build("sd15_unet", config=str(path)).total_params() == 859_520_964 + 5 * 320 * 9
    with pytest.raises(InputError, match="in_channels 9"):
        workloads.build("sd15", config=str(path))


def test_pipeline_rejects_unet_for_another_text_encoder():
    # SD 2.1's UNet cross-attends to 1024-wide OpenCLIP states, not CLIP-L's 768.
    with pytest.raises(InputError, match="cross_attention_dim 1024"):
        workloads.build("sd15", config=str(SD21_UNET))
