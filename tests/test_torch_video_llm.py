"""ModelScope UNet3D / text encoder / VAE decoder, the Make-A-Video CLIP text encoder and
LLaMA-2-7B against the reference modules (diffusers 0.42.1 / transformers 5.23, torch 2.13).

Each reference is built from the same config on the meta device and compared: total
parameters, parameters per module, and FLOPs per class (conv, linear, attention) from
`FlopCounterMode` on a meta-device forward (helpers from test_torch_reference).

Measured agreement: every class matches EXACTLY (0.0000 %):

    ModelScope UNet3D, 16 x 256x256   conv 2,347,887,493,120  linear 2,395,504,803,840  attention 143,712,845,824
    LLaMA-2-7B prefill, 512 tokens    linear 6,631,691,649,024 (incl. last-token lm_head)  attention 137,438,953,472
    LLaMA-2-7B decode, kv_len 512     linear 13,214,154,752     attention 268,435,456

The tests allow 1 %. Make-A-Video has no reference implementation (see its module docstring).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from test_torch_reference import _config, check_against_reference, n_params, our_classes  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import workloads  # noqa: E402
from workloads import GraphBuilder  # noqa: E402
from workloads.zoo import llama, make_a_video, modelscope  # noqa: E402
from workloads.zoo.blocks.clip import OPENCLIP_VIT_H14_TEXT_CONFIG  # noqa: E402

pytestmark = pytest.mark.torch

TOLERANCE = 0.01


def meta_unet3d():
    with torch.device("meta"):
        return diffusers.UNet3DConditionModel.from_config(_config(modelscope.UNET_CONFIG))


def meta_llama():
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**llama.LLAMA2_7B_CONFIG))


# -- ModelScope ---------------------------------------------------------------------------------
def test_modelscope_unet_params_and_flops_match_diffusers():
    unet = meta_unet3d()
    assert n_params(unet) == 1_411_233_860
    with torch.device("meta"):
        sample, context = torch.randn(1, 4, 16, 32, 32), torch.randn(1, 77, 1024)
        timestep = torch.tensor([999])
    graph = workloads.build("modelscope_t2v_unet", resolution=256, frames=16)
    ours, _ = check_against_reference(graph, unet, lambda m, x, t, c: m(x, t, c).sample, sample, timestep, context)
    assert ours == {"conv": 2_347_887_493_120, "linear": 2_395_504_803_840, "attention": 143_712_845_824}


def test_modelscope_unet_flops_odd_shape():
    """Batch 2, 8 frames, 36x20 latents: odd bottleneck sizes exercise diffusers' upsample_size path."""
    unet = meta_unet3d()
    with torch.device("meta"):
        sample, context = torch.randn(2, 4, 8, 36, 20), torch.randn(2, 77, 1024)
        timestep = torch.tensor([10])
    b = GraphBuilder("modelscope_unet_odd", "unet")
    modelscope.unet_denoiser(modelscope.unet_config())(b, b.input((2, 4, 8, 36, 20)))
    check_against_reference(b.build(), unet, lambda m, x, t, c: m(x, t, c).sample, sample, timestep, context)


def test_modelscope_text_encoder_matches_transformers():
    with torch.device("meta"):
        clip = transformers.CLIPTextModel(transformers.CLIPTextConfig(**OPENCLIP_VIT_H14_TEXT_CONFIG))
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")
    check_against_reference(
        workloads.build("modelscope_t2v_text_encoder"), clip, lambda m, x: m(input_ids=x).last_hidden_state, ids
    )


def test_modelscope_vae_decoder_matches_diffusers():
    with torch.device("meta"):
        vae = diffusers.AutoencoderKL.from_config(_config(modelscope.VAE_CONFIG))
        latents = torch.randn(4, 4, 32, 32)  # 4 frames of 256x256
    decoder_only = torch.nn.Module()
    decoder_only.decoder, decoder_only.post_quant_conv = vae.decoder, vae.post_quant_conv
    graph = workloads.build("modelscope_t2v_vae_decoder", resolution=256, frames=4)
    check_against_reference(graph, decoder_only, lambda m, z: m.decoder(m.post_quant_conv(z)), latents)


# -- Make-A-Video's CLIP text encoder stand-in ------------------------------------------------------
def test_make_a_video_clip_text_encoder_params():
    cfg = make_a_video.CLIP_TEXT
    with torch.device("meta"):
        clip = transformers.CLIPTextModelWithProjection(
            transformers.CLIPTextConfig(
                vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                max_position_embeddings=cfg.max_position_embeddings, hidden_act="gelu", projection_dim=cfg.projection_dim,
            )
        )  # fmt: skip
    ours = sum(op.params for op in workloads.build("make_a_video") if op.stage == "text_encoder")
    assert ours == n_params(clip) == 354_032_640


# -- LLaMA-2-7B -----------------------------------------------------------------------------------
def llama_classes(model, fn, *args):
    """FLOPs per class: bmm inside a `*.self_attn` module is attention, every other mm/bmm linear."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(model, *args)
    counts = counter.get_flop_counts()
    total = {str(op): n for op, n in counts["Global"].items()}
    assert set(total) <= {"aten.mm", "aten.addmm", "aten.bmm"}, total
    attention = sum(
        n for key, ops in counts.items() if key.endswith("self_attn") for op, n in ops.items() if str(op) == "aten.bmm"
    )
    return {"conv": 0, "linear": sum(total.values()) - attention, "attention": attention}


def assert_classes_match(graph, theirs):
    ours = our_classes(graph)
    for cls, value in theirs.items():
        assert abs(ours[cls] - value) <= TOLERANCE * value, (cls, ours[cls], value)
    return ours


def test_llama_params_match_transformers():
    model = meta_llama()
    assert n_params(model) == 6_738_415_616
    graph = workloads.build("llama2_7b_prefill")
    modules = dict(model.named_modules())
    for op in graph:
        if op.params:
            assert op.params == sum(p.numel() for p in modules[op.name].parameters(recurse=False)), op.name
    assert graph.total_params() == n_params(model)


def test_llama_prefill_flops_match_transformers():
    model = meta_llama()
    ids = torch.zeros(1, 512, dtype=torch.long, device="meta")
    # generate()'s prefill: logits for the last position only; use_cache avoids a meta .item()
    theirs = llama_classes(model, lambda m, x: m(input_ids=x, use_cache=True, logits_to_keep=1), ids)
    ours = assert_classes_match(workloads.build("llama2_7b_prefill", prompt_len=512), theirs)
    assert ours == {"conv": 0, "linear": 6_631_691_649_024, "attention": 137_438_953_472}


def test_llama_decode_flops_match_transformers():
    model = meta_llama()
    with torch.no_grad():
        cache = model(
            input_ids=torch.zeros(1, 511, dtype=torch.long, device="meta"), use_cache=True, logits_to_keep=1
        ).past_key_values
    token = torch.zeros(1, 1, dtype=torch.long, device="meta")
    theirs = llama_classes(model, lambda m, x: m(input_ids=x, past_key_values=cache, use_cache=True), token)
    ours = assert_classes_match(workloads.build("llama2_7b_decode", kv_len=512), theirs)
    assert ours == {"conv": 0, "linear": 13_214_154_752, "attention": 268_435_456}
