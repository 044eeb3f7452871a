"""Chameleon-7B against the reference modules (transformers 5.24 / diffusers, torch 2.13).

- LM: transformers `ChameleonForConditionalGeneration` built from the published
  `facebook/chameleon-7b` config on the meta device: parameters per module and in total (the LM
  without `model.vqmodel`: 7,013,666,816), and GEMM FLOPs per class from `FlopCounterMode` on a
  prefill and a decode forward (exact).
- VQ encoder: transformers `ChameleonVQVAE` (`model.vqmodel`): parameters per module (taming's
  `nin_shortcut` is the zoo's `conv_shortcut`) and FLOPs per class of `encode` (exact).
- VQ decoder: transformers ships no decoder. The reference inference code's taming `Decoder` has
  the layout of diffusers' `VQModel` decoder (UpDecoderBlock2D levels of layers_per_block + 1
  resnets, a single-head mid-block attention), which is built here from the same channels:
  parameters (codebook + post_quant_conv + decoder) equal; FLOPs equal with the attention's q/k/v
  and output projections counted as 1x1 convolutions (taming) rather than linears (diffusers).

Measured: every compared count matches exactly.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from test_torch_reference import n_params, torch_flops  # noqa: E402
from test_torch_video_llm import assert_classes_match, llama_classes  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import workloads  # noqa: E402
from workloads.zoo import chameleon  # noqa: E402

pytestmark = pytest.mark.torch

LM_PARAMS = 7_013_666_816
VQ_ENCODER_PARAMS = 29_357_824
VQ_DECODER_PARAMS = 41_457_795


def meta_chameleon():
    config = {k: v for k, v in chameleon.CHAMELEON_7B_CONFIG.items() if k != "image_token_id"}
    config["vq_config"] = dict(config["vq_config"])
    config["vocabulary_map"] = {"<image>": 8711}  # the published map names 65,536 tokens; only this one is read
    with torch.device("meta"):
        return transformers.ChameleonForConditionalGeneration(transformers.ChameleonConfig(**config))


def module_params(module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def test_lm_params_match_transformers():
    model = meta_chameleon()
    assert n_params(model) - n_params(model.model.vqmodel) == LM_PARAMS
    graph = workloads.build("chameleon_7b_prefill")
    modules = dict(model.named_modules())
    for op in graph:
        if op.params:
            assert op.params == module_params(modules[op.name]), op.name
    assert graph.total_params() == LM_PARAMS


def test_lm_prefill_and_decode_flops_match_transformers():
    model = meta_chameleon()
    ids = torch.zeros(1, 512, dtype=torch.long, device="meta")
    theirs = llama_classes(model, lambda m, x: m(input_ids=x, use_cache=True, logits_to_keep=1), ids)
    ours = assert_classes_match(workloads.build("chameleon_7b_prefill", prompt_len=512), theirs)
    assert ours == theirs
    with torch.no_grad():
        cache = model(input_ids=ids[:, :511], use_cache=True, logits_to_keep=1).past_key_values
    token = torch.zeros(1, 1, dtype=torch.long, device="meta")
    theirs = llama_classes(model, lambda m, x: m(input_ids=x, past_key_values=cache, use_cache=True), token)
    assert assert_classes_match(workloads.build("chameleon_7b_decode", kv_len=512), theirs) == theirs


def _vq_classes(fn, *args):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)
    counts = counter.get_flop_counts()
    total = {str(op): n for op, n in counts["Global"].items()}
    attention = sum(
        n for key, ops in counts.items() if key.endswith("attn_1") for op, n in ops.items() if str(op) == "aten.bmm"
    )
    conv = total.get("aten.convolution", 0)
    return {"conv": conv, "linear": sum(total.values()) - conv - attention, "attention": attention}


def test_vq_encoder_matches_transformers():
    vq = meta_chameleon().model.vqmodel
    graph = workloads.build("chameleon_vq_encoder")
    modules = dict(vq.named_modules())
    for op in graph:
        if op.params:
            assert op.params == module_params(modules[op.name.replace("conv_shortcut", "nin_shortcut")]), op.name
    assert graph.total_params() == n_params(vq) - n_params(vq.post_quant_conv) == VQ_ENCODER_PARAMS
    image = torch.zeros(1, 3, 512, 512, device="meta")
    theirs = _vq_classes(lambda x: vq.encode(x), image)
    ours = assert_classes_match(graph, theirs)
    assert ours == theirs


def meta_vq_decoder():
    vq = chameleon.CHAMELEON_VQ_CONFIG
    channels = [vq["base_channels"] * m for m in vq["channel_multiplier"]]
    with torch.device("meta"):
        return diffusers.VQModel(
            in_channels=vq["in_channels"], out_channels=vq["out_channels"], block_out_channels=channels,
            down_block_types=["DownEncoderBlock2D"] * len(channels), up_block_types=["UpDecoderBlock2D"] * len(channels),
            layers_per_block=vq["num_res_blocks"], latent_channels=vq["latent_channels"],
            num_vq_embeddings=vq["num_embeddings"], vq_embed_dim=vq["embed_dim"], norm_num_groups=32,
        )  # fmt: skip


def test_vq_decoder_matches_taming_layout():
    model = meta_vq_decoder()
    graph = workloads.build("chameleon_vq_decoder")
    reference = n_params(model.decoder) + n_params(model.post_quant_conv) + n_params(model.quantize.embedding)
    assert graph.total_params() == reference == VQ_DECODER_PARAMS
    z = torch.zeros(1, 256, 32, 32, device="meta")
    _, theirs = torch_flops(model, lambda m, x: m.decode(x, force_not_quantize=True).sample, z)
    ours = {cls: sum(op.flops for op in graph if op.op_class == cls) for cls in ("conv", "linear", "attention")}
    assert ours == {"conv": theirs["conv"] + theirs["linear"], "linear": 0, "attention": theirs["attention"]}
