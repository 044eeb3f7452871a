"""SD 2.1, SDXL and the Imagen cascade: parameter counts, attention taxonomy, shapes,
pipeline composition, scaling invariants and input errors. No torch needed (the reference
comparisons are in test_torch_unets.py)."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workloads
from workloads import InputError, OpKind

ROLES, AXES = {"self", "cross"}, {"spatial", "temporal", "joint", "text"}


def attention(graph, role=None, axis=None, stage=None):
    return [
        op for op in graph
        if op.kind is OpKind.ATTENTION
        and role in (None, op.attrs["role"]) and axis in (None, op.attrs["axis"]) and stage in (None, op.stage)
    ]


def macs(graph, *, stage=None, cls=None):
    return sum(op.macs * op.repeat for op in graph if stage in (None, op.stage) and cls in (None, op.op_class))


# -- parameter counts -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sd21_unet", 865_910_724),
        ("sd21_text_encoder", 340_387_840),  # OpenCLIP ViT-H/14 text tower, 23 layers
        ("sd21_vae_decoder", 49_490_199),
        ("sdxl_unet", 2_567_463_684),
        ("sdxl_text_encoder", 123_060_480 + 694_659_840),  # CLIP ViT-L + OpenCLIP bigG with projection
        ("sdxl_vae_decoder", 49_490_199),
        ("imagen_text_encoder", 4_762_310_656),  # T5 v1.1 XXL encoder
        ("imagen_base_unet", 2_088_252_931),  # = diffusers UNet2DConditionModel from our config
    ],
)
def test_exact_params(name, params):
    assert workloads.build(name).total_params() == params


@pytest.mark.parametrize(
    ("name", "paper"), [("imagen_base_unet", 2e9), ("imagen_sr256_unet", 600e6), ("imagen_sr1024_unet", 400e6)]
)
def test_imagen_sizes_within_5_percent_of_paper(name, paper):
    # Imagen Sec. 4.1: 2B base, 600M 64->256 and 400M 256->1024 super-resolution models
    # (the last by its default `sr1024_variant="stated_size"` calibration, see imagen.py).
    assert abs(workloads.build(name).total_params() / paper - 1) < 0.05


def test_imagen_sr1024_variants():
    stated = workloads.build("imagen_sr1024_unet")
    literal = workloads.build("imagen_sr1024_unet", sr1024_variant="appendix_f3")
    assert stated.total_params() == 397_129_475  # -0.7% vs Sec. 4.1's 400M
    assert literal.total_params() == 573_363_971  # +43%: App. F.3 read literally
    # The calibration halves the ResNetBlocks of the deepest (1024-channel) level, 8 -> 4, in
    # its DBlock and UBlock; nothing else changes.
    names = {op.name for op in literal if op.params} - {op.name for op in stated if op.params}
    assert {".resnets.".join((n.split(".resnets.")[0], n.split(".resnets.")[1].split(".")[0])) for n in names} == {
        f"{blk}.resnets.{j}" for blk in ("dblocks.3", "ublocks.3") for j in range(4, 8)
    }
    assert {op.name for op in stated if op.params} <= {op.name for op in literal if op.params}
    assert workloads.build("imagen", steps=1, sr_steps=1, sr1024_variant="appendix_f3").total_params() - workloads.build(
        "imagen", steps=1, sr_steps=1
    ).total_params() == 573_363_971 - 397_129_475


def test_imagen_sr1024_appendix_f3_is_sr256_with_cross_instead_of_self_attention():
    # App. F.3: same configuration as F.2 without self-attention (text cross-attention only).
    # This is why the literal reading cannot be Sec. 4.1's 400M (see imagen.py): it differs from
    # the 64->256 model by the two attention layers' image key/value projections only.
    sr256 = workloads.build("imagen_sr256_unet")
    sr1024 = workloads.build("imagen_sr1024_unet", sr1024_variant="appendix_f3")
    to_kv = sum(op.params for op in sr256 if op.name.endswith(("attention.to_k", "attention.to_v")))
    assert to_kv == 2 * 2 * (1024 * 2048 + 2048)
    assert sr256.total_params() - sr1024.total_params() == to_kv
    assert {op.name for op in sr256 if op.params} - {op.name for op in sr1024 if op.params} == {
        f"{blk}.attention.{p}" for blk in ("dblocks.3", "ublocks.3") for p in ("to_k", "to_v")
    }


@pytest.mark.parametrize("name", ["sd21", "sdxl", "imagen"])
def test_pipeline_params_are_its_components(name):
    spec = workloads.registry()[name]
    parts = [n for n, s in workloads.registry().items() if s.component and n.startswith(f"{name}_")]
    assert len(parts) == (4 if name == "imagen" else 3)
    assert workloads.build(name).total_params() == sum(workloads.build(n).total_params() for n in parts)
    assert spec.family == "diffusion-tti" and not spec.component


# -- attention taxonomy -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sd21", "sdxl", "imagen"])
def test_every_attention_op_is_classified(name):
    ops = attention(workloads.build(name, steps=1))
    assert ops
    for op in ops:
        assert op.attrs["role"] in ROLES and op.attrs["axis"] in AXES, op.name
        assert op.macs == op.attrs["batch"] * op.attrs["heads"] * op.attrs["lq"] * op.attrs["lk"] * (
            op.attrs["head_dim"] + op.attrs["v_head_dim"]
        )
        assert op.attrs["causal"] == (op.stage == "text_encoder" and name != "imagen"), op.name  # CLIP causal, T5 not


def test_sd21_attention_at_768():
    g = workloads.build("sd21_unet")
    self_attn, cross = attention(g, "self", "spatial"), attention(g, "cross", "spatial")
    assert len(self_attn) == len(cross) == 16
    assert {op.attrs["lq"] for op in self_attn} == {9216, 2304, 576, 144}  # 96^2, 48^2, 24^2, 12^2
    assert all(op.attrs["lk"] == op.attrs["lq"] for op in self_attn)
    assert {op.attrs["lk"] for op in cross} == {77}
    assert {(op.attrs["heads"], op.attrs["head_dim"]) for op in self_attn} == {(5, 64), (10, 64), (20, 64)}
    assert g["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"].attrs["in_features"] == 1024


def test_sdxl_attention_and_micro_conditioning_at_1024():
    g = workloads.build("sdxl_unet")
    self_attn, cross = attention(g, "self", "spatial"), attention(g, "cross", "spatial")
    assert len(self_attn) == len(cross) == 70  # 2 + 20 down, 10 mid, 30 + 6... transformer blocks
    assert {op.attrs["lq"] for op in self_attn} == {4096, 1024}  # 64^2 and 32^2 latents; none at 128^2
    assert {op.attrs["lk"] for op in cross} == {77}
    assert {op.attrs["head_dim"] for op in self_attn} == {64}
    assert g["down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"].attrs["in_features"] == 2048
    # text_time: six sinusoidal time ids (256 each) + pooled text (1280) -> add_embedding.
    assert g["add_time_proj"].output == (6, 256)
    assert g["add_embeds_concat"].output == (1, 2816)
    assert g["add_embedding.linear_1"].attrs["in_features"] == 2816


def test_imagen_attention_profile():
    base = workloads.build("imagen_base_unet")
    image = attention(base, "self", "spatial")  # image queries; keys = 128 text tokens + the image
    assert len(image) == 3 * 3 + 1 + 3 * 4  # after every res block at 32/16/8, the mid block
    assert {(op.attrs["lq"], op.attrs["lk"]) for op in image} == {(1024, 1152), (256, 384), (64, 192)}
    assert {(op.attrs["heads"], op.attrs["head_dim"]) for op in image} == {(16, 64), (24, 64), (32, 64)}
    (pool,) = attention(base, axis="text")
    assert (pool.name, pool.attrs["lq"], pool.attrs["lk"]) == ("add_embedding.pool.attention", 1, 129)
    sr256 = attention(workloads.build("imagen_sr256_unet"), "self", "spatial")
    assert [op.name for op in sr256] == ["dblocks.3.attention", "ublocks.3.attention"]
    assert {(op.attrs["lq"], op.attrs["lk"], op.attrs["heads"], op.attrs["head_dim"]) for op in sr256} == {(256, 384, 8, 256)}
    sr1024 = workloads.build("imagen_sr1024_unet")
    assert not attention(sr1024, "self", "spatial")
    cross = attention(sr1024, "cross", "spatial")
    assert {(op.attrs["lq"], op.attrs["lk"]) for op in cross} == {(4096, 128)} and len(cross) == 2
    t5 = attention(workloads.build("imagen_text_encoder", prompt_len=64), "self", "text")
    assert len(t5) == 24 and {(op.attrs["lq"], op.attrs["lk"], op.attrs["heads"]) for op in t5} == {(64, 64, 64)}


def test_attention_flops_scale_with_lq_times_lk():
    def flops(name, **options):
        return sum(op.flops for op in attention(workloads.build(name, **options), "cross"))

    # Cross-attention over text: 4x the image tokens -> 4x, half the text tokens -> half.
    assert flops("imagen_sr1024_unet", resolution=1024) == 4 * flops("imagen_sr1024_unet", resolution=512)
    assert flops("imagen_sr1024_unet", prompt_len=64) * 2 == flops("imagen_sr1024_unet", prompt_len=128)
    # Self-attention with the text prefixed to the keys: lq * (L_text + lq) per layer.
    small, large = (attention(workloads.build("imagen_base_unet", resolution=r), "self", "spatial") for r in (64, 128))
    for a, b in zip(small, large):
        assert b.macs * a.attrs["lq"] * a.attrs["lk"] == a.macs * b.attrs["lq"] * b.attrs["lk"]
        assert b.attrs["lq"] == 4 * a.attrs["lq"] and b.attrs["lk"] == a.attrs["lk"] + 3 * a.attrs["lq"]


# -- pipelines ----------------------------------------------------------------------------------------
def test_imagen_cascade_structure():
    g = workloads.build("imagen", steps=7, sr_steps=3, batch=2)
    stages = {"text_encoder", "base_unet", "super_resolution_1", "super_resolution_2"}
    assert {op.stage for op in g} == stages
    assert nx.is_directed_acyclic_graph(g.graph) and nx.is_weakly_connected(g.graph)
    # T5 once on the N prompts; CFG's unconditional branch is the zeroed embedding.
    assert g["text_encoder.shared"].output == (2, 128, 4096)
    assert g["cfg.concat_null_text"].output == (4, 128, 4096)
    assert g["base.unet.conv_in"].inputs == ((4, 3, 64, 64),)
    assert g["sr256.unet.conv_in"].inputs == ((4, 6, 256, 256),)  # noisy image + upsampled low-res
    assert g["sr1024.unet.conv_out"].output == (4, 3, 1024, 1024)
    assert g["sr256.resize_lowres"].output == (2, 3, 256, 256) and g["sr1024.resize_lowres"].output == (2, 3, 1024, 1024)
    repeats = {s: {op.repeat for op in g if op.stage == s} for s in stages}
    assert repeats == {"text_encoder": {1}, "base_unet": {7}, "super_resolution_1": {1, 3}, "super_resolution_2": {1, 3}}
    assert {op.repeat for op in g if op.name.endswith(("resize_lowres", "noise_augmentation"))} == {1}
    for a, b in [("cfg.concat_null_text", "base.unet.conv_in"), ("base.scheduler.prev_sample", "sr256.resize_lowres"),
                 ("sr256.scheduler.prev_sample", "sr1024.unet.conv_out")]:
        assert nx.has_path(g.graph, a, b)
    assert g["base.scheduler.dynamic_thresholding.clip_rescale"].output == (2, 3, 64, 64)


def test_imagen_cfg_doubles_denoiser_work_not_text_encoding():
    on, off = workloads.build("imagen", cfg=True), workloads.build("imagen", cfg=False)
    for stage in ("base_unet", "super_resolution_1", "super_resolution_2"):
        assert macs(on, stage=stage) == 2 * macs(off, stage=stage) > 0
    assert macs(on, stage="text_encoder") == macs(off, stage="text_encoder")
    assert not [op for op in off if "guidance" in op.name or op.name == "cfg.concat_null_text"]


def test_imagen_steps_are_linear_and_per_stage():
    def total(**o):
        return workloads.build("imagen", **o).total_macs()

    base = workloads.build("imagen_base_unet", batch=2).total_macs()
    sr = sum(workloads.build(n, batch=2).total_macs() for n in ("imagen_sr256_unet", "imagen_sr1024_unet"))
    assert total(steps=3, sr_steps=1) - total(steps=2, sr_steps=1) == base
    assert total(steps=1, sr_steps=3) - total(steps=1, sr_steps=2) == sr
    assert total(steps=256, sr_steps=256) == workloads.build("imagen").total_macs()


@pytest.mark.parametrize(("name", "latent", "output"), [("sd21", 96, 768), ("sdxl", 128, 1024)])
def test_sd_pipelines(name, latent, output):
    g = workloads.build(name, steps=50, cfg=True)
    assert {op.stage for op in g} == {"text_encoder", "unet", "vae_decoder"}
    assert g["unet.conv_in"].inputs == ((2, 4, latent, latent),)
    assert g["vae.decoder.conv_out"].output == (1, 3, output, output)
    assert {op.repeat for op in g if op.stage == "unet"} == {50}
    assert nx.is_directed_acyclic_graph(g.graph) and nx.is_weakly_connected(g.graph)
    # CFG doubles the UNet work and (negative prompt) the text encoding.
    off = workloads.build(name, steps=50, cfg=False)
    for stage in ("unet", "text_encoder"):
        assert macs(g, stage=stage) == 2 * macs(off, stage=stage)


def test_sdxl_text_encoders_concatenate_to_2048():
    g = workloads.build("sdxl", cfg=True)
    assert g["prompt_embeds_concat"].output == (2, 77, 2048)
    assert g["text_encoder_2.text_projection"].output == (2, 1280)
    standalone = workloads.build("sdxl_text_encoder")
    assert standalone["text_encoder_2.text_model.encoder.layers.31.mlp.fc2"].attrs["in_features"] == 5120
    assert standalone["text_encoder.encoder.layers.11.mlp.act"].attrs["fn"] == "quick_gelu"
    assert standalone["text_encoder_2.text_model.encoder.layers.0.mlp.act"].attrs["fn"] == "gelu"


# -- Efficient U-Net structure --------------------------------------------------------------------------
def test_efficient_unet_blocks():
    g = workloads.build("imagen_sr256_unet")
    # Downsample first (strided conv), upsample last (conv at the block's resolution, then 2x).
    assert g["dblocks.0.conv"].attrs["stride"] == (2, 2) and g["dblocks.0.conv"].output == (1, 128, 128, 128)
    assert g["dblocks.3.resnets.0.conv1"].output == (1, 1024, 16, 16)
    assert g["ublocks.0.conv"].output == (1, 128, 128, 128) and g["ublocks.0.upsample"].output == (1, 128, 256, 256)
    counts = {(side, i): sum(1 for op in g if op.name.startswith(f"{side}.{i}.resnets.") and op.name.endswith("conv1"))
              for side in ("dblocks", "ublocks") for i in range(4)}
    assert [counts["dblocks", i] for i in range(4)] == [counts["ublocks", i] for i in range(4)] == [2, 4, 8, 8]
    # Every ResNetBlock has the 1x1 skip conv of Fig. A.27 and the 1/sqrt(2) residual scaling.
    assert sum(op.name.endswith("conv_shortcut") for op in g) == sum(op.name.endswith("output_scale") for op in g) == 44
    assert g["ublocks.3.skip_concat"].output == (1, 2048, 16, 16)
    assert g["ublocks.2.skip_concat"].output == (1, 1024 + 512, 32, 32)


def test_imagen_base_op_names_mirror_diffusers():
    g = workloads.build("imagen_base_unet")
    assert g["down_blocks.0.downsamplers.0.downsample_hidden"].attrs["mode"] == "avg_pool"
    assert g["up_blocks.0.upsamplers.0.upsample_input"].output == (1, 2048, 16, 16)
    assert g["down_blocks.1.attentions.0.add_k_proj"].attrs["in_features"] == 512
    assert g["encoder_hid_proj"].output == (1, 128, 512)
    assert g["up_blocks.0.resnets.3.conv_shortcut"].attrs["in_ch"] == 2048 + 1536
    assert g["down_blocks.3.resnets.0.time_emb_proj"].attrs["out_features"] == 2 * 2048  # scale and shift
    assert g["conv_out"].output == (1, 3, 64, 64)


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(["imagen_base_unet", "imagen_sr256_unet", "imagen_sr1024_unet"]), batch=st.integers(1, 3))
def test_unet_macs_linear_in_batch_and_conv_in_pixels(name, batch):
    side = workloads.registry()[name].options["resolution"]
    one = workloads.build(name)
    many = workloads.build(name, batch=batch)
    assert many.total_params() == one.total_params()
    assert many.total_macs() == batch * one.total_macs()
    assert macs(workloads.build(name, resolution=2 * side), cls="conv") == 4 * macs(one, cls="conv")


# -- input errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("imagen", {"resolution": 1000}, "multiple of 128"),
        ("imagen", {"resolution": 960}, "multiple of 128"),
        ("imagen_base_unet", {"resolution": 60}, "not divisible"),
        ("imagen_sr256_unet", {"resolution": 200}, "not divisible"),
        ("imagen", {"prompt_len": 0}, "positive"),
        ("imagen", {"sr_step": 3}, "did you mean 'sr_steps'"),
        ("imagen_text_encoder", {"resolution": 64}, "no option"),
        ("imagen_sr1024_unet", {"sr1024_variant": "400M"}, "appendix_f3, stated_size"),
        ("sd21", {"resolution": 500}, "not divisible"),
        ("sdxl_unet", {"config": "/nonexistent/unet.json"}, "not found"),
    ],
)
def test_bad_options(name, options, match):
    with pytest.raises(InputError, match=match):
        workloads.build(name, **options)


def test_sdxl_pipeline_rejects_a_unet_for_other_text_states(tmp_path):
    import json

    from workloads.zoo import sd21

    path = tmp_path / "unet.json"
    path.write_text(json.dumps(dict(sd21.UNET_CONFIG)))
    assert workloads.build("sdxl_unet", config=str(path)).total_params() == 865_910_724
    with pytest.raises(InputError, match="cross_attention_dim 1024"):
        workloads.build("sdxl", config=str(path))


def test_registry_entries():
    reg = workloads.registry()
    assert dict(reg["sd21"].options) == {"resolution": 768, "batch": 1, "steps": 50, "cfg": True, "config": ""}
    assert reg["sdxl"].options["resolution"] == 1024
    assert dict(reg["imagen"].options) == {
        "resolution": 1024, "batch": 1, "steps": 256, "sr_steps": 256, "cfg": True, "prompt_len": 128,
        "sr1024_variant": "stated_size",
    }
    for name in ("sd21_unet", "sd21_vae_decoder", "sd21_text_encoder", "sdxl_unet", "sdxl_vae_decoder",
                 "sdxl_text_encoder", "imagen_base_unet", "imagen_sr256_unet", "imagen_sr1024_unet", "imagen_text_encoder"):
        assert reg[name].component and reg[name].family == "diffusion-tti"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"down_block_types": ["CrossAttnDownBlock2D"] * 4}, "CrossAttnDownBlock2D"),
        ({"mid_block_type": "UNetMidBlock2DCrossAttn"}, "mid_block_type"),
        ({"attention_head_dim": 100}, "not divisible"),
        ({"addition_embed_type": "text_time"}, "addition_embed_type"),
        ({"class_embed_type": "timestep"}, "class_embed_type"),
    ],
)
def test_added_kv_unet_config_rejects_what_it_does_not_model(change, match):
    from workloads.zoo import imagen
    from workloads.zoo.blocks.unet2d_added_kv import AddedKVUNetConfig

    with pytest.raises(InputError, match=match):
        AddedKVUNetConfig.from_dict({**imagen.BASE_UNET_CONFIG, **change})
