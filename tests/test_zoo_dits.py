"""Diffusion transformers (DiT-XL/2, PixArt-alpha, CogVideoX-2B, Latte-1): exact parameter
counts, attention taxonomy, shapes, pipeline composition, scaling invariants and input
errors. No torch needed (tests/test_torch_dits.py checks the same graphs against diffusers)."""

from __future__ import annotations

import json

import networkx as nx
import pytest

import workloads
from workloads import InputError, OpKind
from workloads.zoo import cogvideox, dit, latte, pixart
from workloads.zoo.blocks import cogvideox_vae as _cogvideox_vae

T5_XXL = 4_762_310_656
SD_VAE_DECODER = 49_490_199
PARAMS = {
    "dit_xl2_transformer": 749_826_464,
    "dit_xl2_vae_decoder": SD_VAE_DECODER,
    "pixart_alpha_transformer": 611_349_152,
    "pixart_alpha_text_encoder": T5_XXL,
    "pixart_alpha_vae_decoder": SD_VAE_DECODER,
    "cogvideox_2b_transformer": 1_693_783_872,
    "cogvideox_2b_text_encoder": T5_XXL,
    "cogvideox_2b_vae_decoder": 123_368_451,
    "latte_transformer": 1_057_246_880,
    "latte_text_encoder": T5_XXL,
    "latte_vae_decoder": SD_VAE_DECODER,
}
PIPELINES = ("dit_xl2", "pixart_alpha", "cogvideox_2b", "latte")
AXES = {"spatial", "temporal", "joint", "text"}


def attention(graph, **attrs):
    return [op for op in graph if op.kind is OpKind.ATTENTION and all(op.attrs[k] == v for k, v in attrs.items())]


def class_flops(graph, cls, stage=None):
    return sum(op.flops * op.repeat for op in graph if op.op_class == cls and stage in (None, op.stage))


def stage_macs(graph, stage):
    return sum(op.macs * op.repeat for op in graph if op.stage == stage)


def attention_flops(graph, **attrs):
    return sum(op.flops * op.repeat for op in attention(graph, **attrs))


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), PARAMS.items())
def test_component_params_match_diffusers(name, expected):
    assert workloads.build(name).total_params() == expected


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_params_are_its_components(name):
    parts = sum(v for k, v in PARAMS.items() if k.startswith(name + "_"))
    assert workloads.build(name).total_params() == parts


def test_dit_paper_count_is_diffusers_minus_duplicated_embedders():
    # diffusers gives all 28 blocks their own timestep MLP + 1001-row class table; the
    # original DiT (paper: ~675M) has one.
    g = workloads.build("dit_xl2_transformer")
    per_block = sum(op.params for op in g if op.block.startswith("transformer_blocks.1.norm1.emb"))
    assert per_block == (256 * 1152 + 1152) + (1152 * 1152 + 1152) + 1001 * 1152 == 2_777_472
    assert g.total_params() - 27 * per_block == 674_834_720


@pytest.mark.parametrize(("resolution", "paper_gflops"), [(256, 118.6), (512, 524.6)])
def test_dit_compute_matches_the_paper(resolution, paper_gflops):
    # DiT reports forward "Gflops" as multiply-adds (Tables 1 and 4).
    macs = workloads.build("dit_xl2_transformer", resolution=resolution).total_macs()
    assert abs(macs / 1e9 - paper_gflops) < 0.001 * paper_gflops


def test_latte_has_28_spatial_and_28_temporal_blocks():
    g = workloads.build("latte_transformer")
    blocks = {tuple(op.block.split(".")[:2]) for op in g if op.block.startswith(("transformer_blocks", "temporal_"))}
    assert len([b for b in blocks if b[0] == "transformer_blocks"]) == 28
    assert len([b for b in blocks if b[0] == "temporal_transformer_blocks"]) == 28


@pytest.mark.parametrize("frames", [1, 16, 32])
def test_latte_params_do_not_depend_on_frames(frames):
    assert workloads.build("latte_transformer", frames=frames).total_params() == PARAMS["latte_transformer"]


# -- attention taxonomy -----------------------------------------------------------------------
@pytest.mark.parametrize("name", PIPELINES + tuple(PARAMS))
def test_every_attention_op_is_tagged(name):
    ops = attention(workloads.build(name))
    assert all(op.attrs["role"] in ("self", "cross") and op.attrs["axis"] in AXES for op in ops)
    text = [op for op in ops if op.stage == "text_encoder"]
    assert all(op.attrs["axis"] == "text" and not op.attrs["causal"] for op in text)


@pytest.mark.parametrize(("resolution", "tokens"), [(256, 256), (512, 1024)])
def test_dit_attention(resolution, tokens):
    g = workloads.build("dit_xl2_transformer", resolution=resolution)
    ops = attention(g)
    assert len(ops) == len(attention(g, role="self", axis="spatial")) == 28
    assert {(op.attrs["lq"], op.attrs["lk"], op.attrs["heads"], op.attrs["head_dim"]) for op in ops} == {(tokens, tokens, 16, 72)}
    assert g.total_params() == PARAMS["dit_xl2_transformer"]


def test_pixart_attention():
    g = workloads.build("pixart_alpha_transformer")
    self_attn, cross = attention(g, role="self", axis="spatial"), attention(g, role="cross", axis="spatial")
    assert len(self_attn) == len(cross) == 28
    assert {(op.attrs["lq"], op.attrs["lk"]) for op in self_attn} == {(4096, 4096)}
    assert {(op.attrs["lq"], op.attrs["lk"]) for op in cross} == {(4096, 120)}
    assert g["transformer_blocks.0.attn2.to_k"].attrs["in_features"] == 1152  # caption projected first
    assert g["caption_projection.linear_1"].attrs["in_features"] == 4096


def test_cogvideox_joint_attention_over_text_and_video():
    g = workloads.build("cogvideox_2b_transformer")
    ops = attention(g)
    assert len(ops) == len(attention(g, role="self", axis="joint")) == 30
    assert {(op.attrs["lq"], op.attrs["lk"], op.attrs["heads"], op.attrs["head_dim"]) for op in ops} == {(17_776, 17_776, 30, 64)}
    assert g["patch_embed.concat"].output == (1, 226 + 13 * 30 * 45, 1920)
    assert g["transformer_blocks.0.attn1.norm_q"].params == 2 * 64
    assert g["unpatchify"].output == (1, 13, 16, 60, 90)


def test_latte_spatial_and_temporal_attention():
    g = workloads.build("latte_transformer")  # 16 frames of 512x512: 32x32 patches
    spatial, cross = attention(g, role="self", axis="spatial"), attention(g, role="cross", axis="spatial")
    temporal = attention(g, role="self", axis="temporal")
    assert len(spatial) == len(cross) == len(temporal) == 28
    assert {(op.attrs["batch"], op.attrs["lq"], op.attrs["lk"]) for op in spatial} == {(16, 1024, 1024)}
    assert {(op.attrs["batch"], op.attrs["lq"], op.attrs["lk"]) for op in cross} == {(16, 1024, 120)}
    assert {(op.attrs["batch"], op.attrs["lq"], op.attrs["lk"]) for op in temporal} == {(1024, 16, 16)}
    assert not attention(g, role="cross", axis="temporal")


def test_text_encoders_are_t5_over_their_prompt_lengths():
    for name, tokens in (("pixart_alpha_text_encoder", 120), ("latte_text_encoder", 120), ("cogvideox_2b_text_encoder", 226)):
        ops = attention(workloads.build(name, batch=2))
        assert len(ops) == 24 and {(op.attrs["batch"], op.attrs["lq"], op.attrs["heads"]) for op in ops} == {(2, tokens, 64)}


# -- data movement -----------------------------------------------------------------------------
def test_latte_temporal_reshapes_are_moves_with_their_bytes():
    g = workloads.build("latte_transformer", batch=2)
    to_t = [op for op in g if op.name.startswith("spatial_to_temporal.")]
    to_s = [op for op in g if op.name.startswith("temporal_to_spatial.")]
    assert len(to_t) == len(to_s) == 28
    assert all(op.kind is OpKind.DATA_MOVEMENT for op in to_t + to_s)
    assert {(op.inputs, op.output) for op in to_t} == {(((2 * 16, 1024, 1152),), (2 * 1024, 16, 1152))}
    assert {(op.inputs, op.output) for op in to_s} == {(((2 * 1024, 16, 1152),), (2 * 16, 1024, 1152))}
    assert all(op.input_bytes == op.output_bytes == 2 * 16 * 1024 * 1152 * 2 for op in to_t + to_s)
    # each temporal block reads the regrouped tokens, the next spatial block its regrouping back
    assert nx.has_path(g.graph, "spatial_to_temporal.0", "temporal_transformer_blocks.0.attn1")
    assert nx.has_path(g.graph, "temporal_to_spatial.0", "transformer_blocks.1.attn1")
    assert g["to_frames"].output == (2 * 16, 4, 64, 64)


@pytest.mark.parametrize("name", ["dit_xl2_transformer", "pixart_alpha_transformer", "latte_transformer"])
def test_patchify_and_unpatchify_are_moves(name):
    g = workloads.build(name)
    assert g["pos_embed.to_tokens"].kind is g["unpatchify"].kind is OpKind.DATA_MOVEMENT
    assert g["pos_embed.proj"].attrs["stride"] == (2, 2)


# -- invariants ---------------------------------------------------------------------------------
def test_latte_doubling_frames():
    one, two = (workloads.build("latte_transformer", frames=f) for f in (16, 32))
    # spatial attention: twice the frames -> twice the (H*W)-token sequences
    assert attention_flops(two, axis="spatial", role="self") == 2 * attention_flops(one, axis="spatial", role="self")
    assert attention_flops(two, axis="spatial", role="cross") == 2 * attention_flops(one, axis="spatial", role="cross")
    # temporal attention: same H*W sequences, each F x F scores -> four times
    assert attention_flops(two, axis="temporal") == 4 * attention_flops(one, axis="temporal")

    def scores(g):
        return sum(op.attrs["batch"] * op.attrs["heads"] * op.attrs["lq"] * op.attrs["lk"] for op in attention(g, axis="temporal"))

    assert scores(two) == 4 * scores(one)


def test_pixart_attention_flops_scale_with_lq_lk():
    small, large = (workloads.build("pixart_alpha_transformer", resolution=r) for r in (512, 1024))
    assert attention_flops(large, role="self") == 16 * attention_flops(small, role="self")  # (4L)^2
    assert attention_flops(large, role="cross") == 4 * attention_flops(small, role="cross")  # 4L x 120


def test_cogvideox_attention_flops_scale_with_joint_length_squared():
    g13, g7 = (workloads.build("cogvideox_2b_transformer", frames=f) for f in (49, 25))
    lengths = [226 + t * 30 * 45 for t in (13, 7)]
    assert attention_flops(g13) * lengths[1] ** 2 == attention_flops(g7) * lengths[0] ** 2


@pytest.mark.parametrize(("name", "steps"), [("dit_xl2", 3), ("pixart_alpha", 3), ("cogvideox_2b", 2), ("latte", 2)])
def test_cfg_doubles_denoiser_work(name, steps):
    with_cfg, without = (workloads.build(name, steps=steps, cfg=c) for c in (True, False))
    assert stage_macs(with_cfg, "transformer") == 2 * stage_macs(without, "transformer") > 0
    component = workloads.build(f"{name}_transformer")
    assert stage_macs(without, "transformer") == steps * component.total_macs()


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_is_one_dag_with_repeated_steps(name):
    g = workloads.build(name, steps=7)
    stages = {op.stage for op in g}
    assert stages == ({"transformer", "vae_decoder"} if name == "dit_xl2" else {"text_encoder", "transformer", "vae_decoder"})
    assert all(op.repeat == 7 for op in g if op.stage == "transformer")
    assert all(op.name.startswith(("transformer.", "guidance.", "scheduler.")) for op in g if op.stage == "transformer")
    assert nx.is_directed_acyclic_graph(g.graph) and nx.is_weakly_connected(g.graph)
    f = {s: workloads.build(name, steps=s).total_flops() for s in (1, 2)}
    assert f[2] - f[1] == stage_macs(workloads.build(name, steps=1), "transformer") * 2


def test_dit_pipeline_follows_dit_pipeline_cfg():
    g = workloads.build("dit_xl2", batch=3)
    assert g["transformer.pos_embed.proj"].output[0] == 6
    assert g["guidance.concat_eps"].output == (6, 4, 32, 32)
    assert g["guidance.concat_rest"].output == (6, 8, 32, 32)  # eps re-joined with learned sigma
    assert g["scheduler.prev_sample"].output == (6, 4, 32, 32)  # all 2N carried latents updated
    assert g["vae.decoder.conv_out"].output == (3, 3, 256, 256)


def test_latte_pipeline_shapes():
    g = workloads.build("latte", batch=1, steps=2)
    assert g["transformer.to_frames"].output == (2 * 16, 4, 64, 64)
    assert g["guidance.add"].output == (1, 8, 16, 64, 64)  # guidance on the whole prediction
    assert g["scheduler.prev_sample"].output == (1, 4, 16, 64, 64)  # learned sigma split off
    assert g["latents_to_frames"].output == (16, 4, 64, 64)
    assert g["vae.decoder.conv_out"].output == (16, 3, 512, 512)
    assert g["text_encoder.shared"].output == (2, 120, 4096)


# -- CogVideoX: frames, resolution and the chunked causal VAE -----------------------------------
@pytest.mark.parametrize(
    ("frames", "chunks", "decoded"),
    # An even latent count decodes to 4 frames per latent (diffusers: 5 frames -> 8), an odd
    # one to the 4k + 1 frames it came from.
    [(49, (3, 2, 2, 2, 2, 2), 49), (1, (1,), 1), (5, (2,), 8), (9, (3,), 9), (13, (2, 2), 16)],
)
def test_cogvideox_vae_chunks(frames, chunks, decoded):
    latent = cogvideox.VAE.latent_frames(frames)
    assert _cogvideox_vae.chunk_frames(latent) == chunks
    g = workloads.build("cogvideox_2b_vae_decoder", frames=frames, resolution=96)
    assert g.total_params() == PARAMS["cogvideox_2b_vae_decoder"]
    later = [op for op in g if op.name.startswith("later_chunks.")]
    assert all(op.repeat == len(chunks) - 1 and op.params == 0 for op in later)
    assert bool(later) == (len(chunks) > 1)
    out_frames = sum(op.output[2] * op.repeat for op in g if op.name.endswith("decoder.conv_out.conv"))
    assert out_frames == decoded


def test_cogvideox_vae_decoder_shapes_and_moves():
    g = workloads.build("cogvideox_2b_vae_decoder")
    assert g["frames_concat"].output == (1, 3, 49, 480, 720)
    assert g["decoder.conv_in.conv"].kind is OpKind.CONV3D and g["decoder.conv_in.conv"].attrs["padding"] == (0, 1, 1)
    assert g["decoder.conv_in.time_pad"].output == (1, 16, 3 + 2, 60, 90)  # 2 causal context frames
    # first chunk: 3 latents -> 5 -> 9 frames through the two time-upsampling levels
    assert g["decoder.up_blocks.1.upsamplers.0.from_frames"].output == (1, 256, 9, 240, 360)
    assert g["later_chunks.decoder.up_blocks.1.upsamplers.0.from_frames"].output == (1, 256, 8, 240, 360)
    assert g["decoder.up_blocks.2.upsamplers.0.conv"].kind is OpKind.CONV2D


def test_cogvideox_pipeline_shapes():
    g = workloads.build("cogvideox_2b", steps=2)
    assert g["text_encoder.shared"].output == (2, 226, 4096)
    assert g["transformer.patch_embed.proj"].output == (2 * 13, 1920, 30, 45)
    assert g["latents_scale"].output == (1, 16, 13, 60, 90)
    assert g["vae.frames_concat"].output == (1, 3, 49, 480, 720)
    assert nx.has_path(g.graph, "scheduler.prev_sample", "vae.later_chunks.decoder.conv_out.conv")


@pytest.mark.parametrize("frames", [48, 50, 2])
def test_cogvideox_frames_must_fit_the_causal_vae(frames):
    for name in ("cogvideox_2b", "cogvideox_2b_transformer", "cogvideox_2b_vae_decoder"):
        with pytest.raises(InputError, match=r"\(frames - 1\)"):
            workloads.build(name, frames=frames)


def test_cogvideox_resolution_is_height_at_3_to_2():
    assert cogvideox.video_size(480) == (480, 720)
    g = workloads.build("cogvideox_2b_transformer", resolution=768)  # 768 x 1152
    assert g["patch_embed.proj"].output[2:] == (48, 72)
    for bad in (240, 481):  # 240 -> width 360 (not a multiple of 16); 481 -> no whole width
        with pytest.raises(InputError):
            workloads.build("cogvideox_2b_transformer", resolution=bad)


# -- input errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "resolution"), [("dit_xl2", 248), ("pixart_alpha_transformer", 1000), ("latte", 504)])
def test_resolution_must_split_into_patches(name, resolution):
    with pytest.raises(InputError, match="not divisible by 16"):
        workloads.build(name, resolution=resolution)


def test_bad_options():
    with pytest.raises(InputError, match="no option 'frames'"):
        workloads.build("dit_xl2", frames=4)
    with pytest.raises(InputError, match="positive"):
        workloads.build("latte", frames=0)
    with pytest.raises(InputError, match="nope.json"):
        workloads.build("pixart_alpha", config="/nonexistent/nope.json")


@pytest.mark.parametrize(
    ("module", "model", "change", "match"),
    [
        (dit, "dit_xl2_transformer", {"norm_type": "ada_norm_single"}, "norm_type"),
        (dit, "dit_xl2_transformer", {"cross_attention_dim": 1152}, "cross-attention"),
        (pixart, "pixart_alpha_transformer", {"attention_type": "gated"}, "attention_type"),
        (pixart, "pixart_alpha_transformer", {"activation_fn": "geglu"}, "activation_fn"),
        (latte, "latte_transformer", {"caption_channels": None}, "caption_channels"),
        (cogvideox, "cogvideox_2b_transformer", {"patch_size_t": 2}, "patch_size_t"),
    ],
)
def test_unsupported_configs(tmp_path, module, model, change, match):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**module.TRANSFORMER_CONFIG, **change}))
    with pytest.raises(InputError, match=match):
        workloads.build(model, config=str(path))


def test_published_config_files_round_trip(tmp_path):
    models = {dit: "dit_xl2_transformer", pixart: "pixart_alpha_transformer", latte: "latte_transformer", cogvideox: "cogvideox_2b_transformer"}
    for module, model in models.items():
        path = tmp_path / f"{model}.json"
        path.write_text(json.dumps(dict(module.TRANSFORMER_CONFIG)))
        assert workloads.build(model, config=str(path)).total_params() == PARAMS[model]


def test_registry_entries():
    reg = workloads.registry()
    for name in PIPELINES:
        assert not reg[name].component
        assert reg[name].family == ("ttv" if name in ("cogvideox_2b", "latte") else "diffusion-tti")
    assert dict(reg["cogvideox_2b"].options) == {"resolution": 480, "batch": 1, "frames": 49, "steps": 50, "cfg": True, "config": ""}
    assert reg["pixart_alpha"].options["steps"] == 20
    assert all(reg[name].component for name in PARAMS)
