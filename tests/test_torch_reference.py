"""Our SD graphs against the reference PyTorch modules (diffusers / transformers).

Each reference model is built from the same config on the meta device (no weights, no
download) and compared: total parameters, parameters per module, the set of conv/linear
module names, and FLOPs from `torch.utils.flop_counter.FlopCounterMode` on a meta-device
forward, per class (conv, linear, attention) and per module.

Measured agreement (torch 2.13, diffusers 0.42.1, transformers 5.23): every class matches
EXACTLY (0.0000 % difference), and so does every conv/linear module on its own. FLOPs:

    SD 1.5 UNet, 512x512, batch 1   conv 443,946,106,880  linear 233,275,064,320  attention 126,052,270,080
    SD 2.1 UNet, 512x512            conv 418,360,852,480  linear 259,844,341,760  attention 126,052,270,080
    SDXL UNet, 256x256              conv 101,444,485,120  linear 321,385,922,560  attention   4,954,521,600
    VAE decoder, 64x64 latents      conv 2,471,569,260,544 linear 8,589,934,592   attention  34,359,738,368
    whole VAE, 256x256 image        conv 886,319,513,600  linear   4,294,967,296  attention   4,294,967,296
    CLIP ViT-L/14 text, 77 tokens   conv 0                linear  13,079,937,024  attention     218,566,656

The tests allow 1 %.

On the meta device SDPA falls back to its math decomposition, so attention shows up as
`aten.bmm` inside the attention modules (`attn1`, `self_attn`, ...); those bmm FLOPs are
the attention class, every other mm/addmm/bmm is the linear class.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import workloads  # noqa: E402
from workloads import GraphBuilder, OpKind  # noqa: E402
from workloads.zoo import sd15  # noqa: E402
from workloads.zoo.blocks import vae as _vae  # noqa: E402

pytestmark = pytest.mark.torch

DATA = Path(__file__).parent / "data"
GEMM_OPS = {"aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm"}
CONV_OPS = {"aten.convolution", "aten._convolution"}
TOLERANCE = 0.01


def _config(mapping):
    """A published config dict without its private `_` keys (what `from_config` accepts)."""
    return {k: v for k, v in mapping.items() if not k.startswith("_")}


def meta_unet(config):
    with torch.device("meta"):
        return diffusers.UNet2DConditionModel.from_config(_config(config))


def meta_vae():
    with torch.device("meta"):
        return diffusers.AutoencoderKL.from_config(_config(sd15.VAE_CONFIG))


def meta_clip():
    with torch.device("meta"):
        return transformers.CLIPTextModel(transformers.CLIPTextConfig(**_config(sd15.TEXT_ENCODER_CONFIG)))


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


class _Call(torch.nn.Module):
    """Wraps `fn(model, *args)` so the flop counter names modules relative to `model`."""

    def __init__(self, model, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.model, *args)


def torch_flops(model, fn, *args):
    """FLOPs per module path (relative to `model`) and per class of a meta-device forward."""
    wrapper = _Call(model, fn)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        wrapper(*args)
    prefix = "_Call.model."
    per_module = {
        key[len(prefix):]: {str(op): n for op, n in ops.items()}
        for key, ops in counter.get_flop_counts().items()
        if key.startswith(prefix)
    }
    total = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert set(total) <= GEMM_OPS | CONV_OPS | {"aten._scaled_dot_product_flash_attention_for_cpu"}, total
    attention_modules = [
        name for name, m in model.named_modules()
        if type(m).__name__ in ("Attention", "CLIPAttention", "CLIPSdpaAttention")
    ]
    attention = sum(
        n for name in attention_modules for op, n in per_module.get(name, {}).items()
        if op not in ("aten.mm", "aten.addmm")
    )
    classes = {
        "conv": sum(n for op, n in total.items() if op in CONV_OPS),
        "linear": sum(n for op, n in total.items() if op in GEMM_OPS) - attention,
        "attention": attention,
    }
    return per_module, classes


def our_classes(graph):
    return {cls: sum(op.flops * op.repeat for op in graph if op.op_class == cls) for cls in ("conv", "linear", "attention")}


def check_against_reference(graph, model, fn, *args):
    """Params (total, per module), GEMM module names and FLOPs (per class, per module)."""
    assert graph.total_params() == n_params(model)
    modules = dict(model.named_modules())
    for op in graph:
        if op.params:
            assert op.params == sum(p.numel() for p in modules[op.name].parameters(recurse=False)), op.name

    per_module, theirs = torch_flops(model, fn, *args)
    gemm_modules = {
        name for name in per_module
        if isinstance(modules.get(name), (torch.nn.Linear, torch.nn.Conv2d))
    }
    ours_gemm = {op.name for op in graph if op.kind in (OpKind.LINEAR, OpKind.CONV2D)}
    assert ours_gemm == gemm_modules
    for name in ours_gemm:
        assert graph[name].flops == sum(per_module[name].values()), name

    ours = our_classes(graph)
    for cls in ("conv", "linear", "attention"):
        if theirs[cls] == 0:
            assert ours[cls] == 0, cls
        else:
            assert abs(ours[cls] - theirs[cls]) <= TOLERANCE * theirs[cls], (cls, ours[cls], theirs[cls])
    return ours, theirs


# -- parameter counts of the reference modules --------------------------------------------
@pytest.mark.parametrize(
    ("config", "expected"),
    [(None, 859_520_964), ("sd21_unet_config.json", 865_910_724), ("sdxl_unet_config.json", 2_567_463_684)],
)
def test_unet_param_counts_match_diffusers(config, expected):
    options = {"config": str(DATA / config)} if config else {}
    raw = json.loads((DATA / config).read_text()) if config else sd15.UNET_CONFIG
    assert n_params(meta_unet(raw)) == expected
    assert workloads.build("sd15_unet", **options).total_params() == expected


def test_vae_param_counts_match_diffusers():
    vae = meta_vae()
    b = GraphBuilder("sd_vae", "vae")
    _vae.autoencoder_kl(b, sd15.VAE, b.input((1, 3, 512, 512)))
    assert b.build().total_params() == n_params(vae) == 83_653_863
    decoder = n_params(vae.decoder) + n_params(vae.post_quant_conv)
    assert workloads.build("sd15_vae_decoder").total_params() == decoder == 49_490_199


# -- FLOPs per class on meta-device forwards ------------------------------------------------
def test_unet_flops_match_diffusers():
    unet = meta_unet(sd15.UNET_CONFIG)
    with torch.device("meta"):
        sample, context = torch.randn(1, 4, 64, 64), torch.randn(1, 77, 768)
        timestep = torch.tensor([999])
    ours, _ = check_against_reference(
        workloads.build("sd15_unet", resolution=512), unet, lambda m, x, t, c: m(x, t, c).sample, sample, timestep, context
    )
    assert ours == {"conv": 443_946_106_880, "linear": 233_275_064_320, "attention": 126_052_270_080}


def test_sd21_unet_flops_match_diffusers():
    unet = meta_unet(json.loads((DATA / "sd21_unet_config.json").read_text()))
    with torch.device("meta"):
        sample, context = torch.randn(1, 4, 64, 64), torch.randn(1, 77, 1024)
        timestep = torch.tensor([999])
    graph = workloads.build("sd15_unet", resolution=512, config=str(DATA / "sd21_unet_config.json"))
    check_against_reference(graph, unet, lambda m, x, t, c: m(x, t, c).sample, sample, timestep, context)


def test_sdxl_unet_flops_match_diffusers():
    unet = meta_unet(json.loads((DATA / "sdxl_unet_config.json").read_text()))
    with torch.device("meta"):
        sample, context = torch.randn(1, 4, 32, 32), torch.randn(1, 77, 2048)
        added = {"text_embeds": torch.randn(1, 1280), "time_ids": torch.randn(1, 6)}
        timestep = torch.tensor([999])
    graph = workloads.build("sd15_unet", resolution=256, config=str(DATA / "sdxl_unet_config.json"))
    check_against_reference(
        graph, unet, lambda m, x, t, c: m(x, t, c, added_cond_kwargs=added).sample, sample, timestep, context
    )


def test_vae_decoder_flops_match_diffusers():
    vae = meta_vae()
    with torch.device("meta"):
        latents = torch.randn(1, 4, 64, 64)
    graph = workloads.build("sd15_vae_decoder", resolution=512)
    # The decoder graph holds only decoder + post_quant_conv: compare on that sub-model.
    decoder_only = torch.nn.Module()
    decoder_only.decoder, decoder_only.post_quant_conv = vae.decoder, vae.post_quant_conv
    ours, _ = check_against_reference(
        graph, decoder_only, lambda m, z: m.decoder(m.post_quant_conv(z)), latents
    )
    assert ours == {"conv": 2_471_569_260_544, "linear": 8_589_934_592, "attention": 34_359_738_368}


def test_whole_vae_flops_match_diffusers():
    vae = meta_vae()
    with torch.device("meta"):
        image = torch.randn(1, 3, 256, 256)
    b = GraphBuilder("sd_vae", "vae")
    _vae.autoencoder_kl(b, sd15.VAE, b.input((1, 3, 256, 256)))
    check_against_reference(b.build(), vae, lambda m, x: m(x).sample, image)


def test_text_encoder_flops_match_transformers():
    clip = meta_clip()
    ids = torch.zeros(1, 77, dtype=torch.long, device="meta")
    ours, _ = check_against_reference(
        workloads.build("sd15_text_encoder"), clip, lambda m, x: m(input_ids=x).last_hidden_state, ids
    )
    assert ours == {"conv": 0, "linear": 13_079_937_024, "attention": 218_566_656}
