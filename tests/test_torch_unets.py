"""SD 2.1, SDXL and the Imagen base UNet / T5-XXL against the reference PyTorch modules.

Each reference is built from the SAME config dict as our graph on the meta device and
compared with `check_against_reference` (tests/test_torch_reference.py): total parameters,
parameters per module, the set of conv/linear modules, FLOPs per conv/linear module, and
FLOPs per class (conv, linear, attention) from `FlopCounterMode`. On top of its 1 % class
tolerance we assert exact per-class equality after reclassifying the attention products that
helper does not know (the attention pooling's einsums, T5's attention matmuls).

Measured (torch 2.13, diffusers 0.42.1, transformers 5.23): every class matches EXACTLY.

    sd21_unet, 768x768, batch 1          conv   941,311,918,080  linear   579,660,021,760  attention 628,133,806,080
    sdxl_unet, 1024x1024, batch 1        conv 1,623,111,761,920  linear 4,354,209,218,560  attention 783,915,417,600
    imagen_base_unet, 64x64, 128 tokens  conv 1,359,248,097,280  linear   129,558,904,832  attention  38,858,145,792

The Imagen base UNet's reference is diffusers' `UNet2DConditionModel` with our config except
`cross_attention_norm: group_norm` (diffusers sizes a LayerNorm by the query width, which
cannot run with added K/V); both norms hold 2 x 512 parameters and do no GEMM.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from test_torch_reference import (  # noqa: E402
    _config,
    check_against_reference,
    meta_unet,
    n_params,
    torch_flops,
)

import workloads  # noqa: E402
from workloads.zoo import imagen, sd21, sdxl  # noqa: E402
from workloads.zoo.blocks.clip import CLIP_VIT_L14_TEXT_CONFIG, OPENCLIP_VIT_H14_TEXT_CONFIG  # noqa: E402
from workloads.zoo.blocks.t5 import T5_V1_1_XXL  # noqa: E402

pytestmark = pytest.mark.torch


def exact_classes(model, fn, *args, attention_types=()):
    """Per-class FLOPs of the reference, with the products inside `attention_types` modules as attention."""
    per_module, classes = torch_flops(model, fn, *args)
    extra = sum(
        n
        for name, m in model.named_modules()
        if type(m).__name__ in attention_types
        for op, n in per_module.get(name, {}).items()
        if op not in ("aten.mm", "aten.addmm")
    )
    return {**classes, "linear": classes["linear"] - extra, "attention": classes["attention"] + extra}


def clip(config, with_projection=False):
    cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
    with torch.device("meta"):
        return cls(transformers.CLIPTextConfig(**_config(config)))


def meta_inputs(*shapes):
    with torch.device("meta"):
        return [torch.randn(*s) for s in shapes]


def unet_forward(m, x, t, c, added=None):
    return m(x, t, c, added_cond_kwargs=added).sample


# -- Stable Diffusion 2.1 ----------------------------------------------------------------------
def test_sd21_unet_matches_diffusers_at_768():
    unet = meta_unet(sd21.UNET_CONFIG)
    sample, context = meta_inputs((1, 4, 96, 96), (1, 77, 1024))
    timestep = torch.tensor([999], device="meta")
    ours, theirs = check_against_reference(workloads.build("sd21_unet"), unet, unet_forward, sample, timestep, context)
    assert ours == theirs
    assert ours == {"conv": 941_311_918_080, "linear": 579_660_021_760, "attention": 628_133_806_080}


def test_sd21_text_encoder_matches_transformers():
    model = clip(OPENCLIP_VIT_H14_TEXT_CONFIG)
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")
    ours, theirs = check_against_reference(
        workloads.build("sd21_text_encoder"), model, lambda m, x: m(input_ids=x).last_hidden_state, ids
    )
    assert ours == theirs
    assert n_params(model) == 340_387_840


# -- Stable Diffusion XL ---------------------------------------------------------------------------
def test_sdxl_unet_matches_diffusers_at_1024():
    unet = meta_unet(sdxl.UNET_CONFIG)
    sample, context, text_embeds, time_ids = meta_inputs((1, 4, 128, 128), (1, 77, 2048), (1, 1280), (1, 6))
    timestep = torch.tensor([999], device="meta")
    added = {"text_embeds": text_embeds, "time_ids": time_ids}
    ours, theirs = check_against_reference(
        workloads.build("sdxl_unet"), unet, lambda m, x, t, c: unet_forward(m, x, t, c, added), sample, timestep, context
    )
    assert ours == theirs
    assert ours == {"conv": 1_623_111_761_920, "linear": 4_354_209_218_560, "attention": 783_915_417_600}


def test_sdxl_text_encoders_match_transformers():
    both = torch.nn.Module()
    both.text_encoder = clip(CLIP_VIT_L14_TEXT_CONFIG)
    both.text_encoder_2 = clip(sdxl.TEXT_ENCODER_2_CONFIG, with_projection=True)
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")

    def encode(m, x):  # StableDiffusionXLPipeline.encode_prompt: penultimate states, concatenated
        h1 = m.text_encoder(x, output_hidden_states=True).hidden_states[-2]
        out2 = m.text_encoder_2(x, output_hidden_states=True)
        return torch.cat([h1, out2.hidden_states[-2]], dim=-1), out2.text_embeds

    ours, theirs = check_against_reference(workloads.build("sdxl_text_encoder"), both, encode, ids)
    assert ours == theirs
    assert (n_params(both.text_encoder), n_params(both.text_encoder_2)) == (123_060_480, 694_659_840)


@pytest.mark.parametrize(("name", "module"), [("sd21", sd21), ("sdxl", sdxl)])
def test_vae_decoders_match_diffusers(name, module):
    with torch.device("meta"):
        vae = diffusers.AutoencoderKL.from_config(_config(module.VAE_CONFIG))
    decoder_only = torch.nn.Module()
    decoder_only.decoder, decoder_only.post_quant_conv = vae.decoder, vae.post_quant_conv
    (latents,) = meta_inputs((1, 4, 32, 32))
    graph = workloads.build(f"{name}_vae_decoder", resolution=256)
    ours, theirs = check_against_reference(graph, decoder_only, lambda m, z: m.decoder(m.post_quant_conv(z)), latents)
    assert ours == theirs
    assert vae.config.scaling_factor == getattr(module, name.upper()).vae.scaling_factor


# -- Imagen ----------------------------------------------------------------------------------------
def imagen_base_reference():
    return meta_unet({**imagen.BASE_UNET_CONFIG, "cross_attention_norm": "group_norm"})


def test_imagen_base_unet_matches_diffusers():
    unet = imagen_base_reference()
    sample, text = meta_inputs((1, 3, 64, 64), (1, 128, 4096))
    timestep = torch.tensor([999], device="meta")
    graph = workloads.build("imagen_base_unet")
    ours, _ = check_against_reference(graph, unet, unet_forward, sample, timestep, text)
    theirs = exact_classes(unet, unet_forward, sample, timestep, text, attention_types=("AttentionPooling",))
    assert ours == theirs
    assert ours == {"conv": 1_359_248_097_280, "linear": 129_558_904_832, "attention": 38_858_145_792}
    assert n_params(unet) == 2_088_252_931


def test_imagen_text_encoder_matches_transformers():
    with torch.device("meta"):
        t5 = transformers.T5EncoderModel(transformers.T5Config(**T5_V1_1_XXL))
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
    graph = workloads.build("imagen_text_encoder")
    assert graph.total_params() == n_params(t5) == 4_762_310_656
    forward = lambda m, x: m(input_ids=x).last_hidden_state  # noqa: E731
    theirs = exact_classes(t5, forward, ids, attention_types=("T5Attention",))
    ours = {c: sum(op.flops for op in graph if op.op_class == c) for c in ("conv", "linear", "attention")}
    assert ours == theirs
