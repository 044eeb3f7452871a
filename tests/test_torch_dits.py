"""Our diffusion-transformer graphs against the diffusers / transformers modules.

Each reference is built from the same published config on the meta device and compared:
total parameters; parameters of every op against its module (or nn.Parameter, for the
adaLN-single `scale_shift_table`s); the set of Linear/Conv modules against our
parameter-carrying linear/conv ops; FLOPs of a meta-device forward under
`torch.utils.flop_counter.FlopCounterMode`, per class (conv, linear, attention; classified by
`test_torch_reference.torch_flops`) and per Linear/Conv module.

Measured agreement (torch 2.13, diffusers 0.42.1, transformers 5.23): every class and every
module matches EXACTLY. FLOPs of one forward, batch 1 unless noted:

    DiT-XL/2 256px, batch 2     conv 18,874,368       linear 457,737,043,968     attention 16,911,433,728
    PixArt-alpha 1024px         conv 150,994,944      linear 4,281,291,177,984   attention 2,228,081,393,664
    Latte-1 16x512x512          conv 603,979,776      linear 31,946,262,478,848  attention 2,452,157,890,560
    CogVideoX-2B 49x480x720     conv 4,313,088,000    linear 47,189,783,379,968  attention 72,803,214,950,400
    CogVideoX VAE decode (13 latent frames -> 49x480x720)  conv 315,027,947,520,000
    T5-XXL encoder, 226 tokens  linear + attention 2,113,075,150,848

Two graph features are matched by construction: DiT's output layer re-runs block 0's
`norm1.emb` (our `conditioning.*` matmuls, summed into those modules here), and the CogVideoX
VAE runs its decoder once per 2-latent-frame chunk (our `later_chunks.*` ops, repeated).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from test_torch_reference import _config, n_params, our_classes, torch_flops  # noqa: E402

import workloads  # noqa: E402
from workloads import OpKind  # noqa: E402
from workloads.zoo import cogvideox, dit, latte, pixart  # noqa: E402
from workloads.zoo.blocks import t5 as _t5  # noqa: E402

pytestmark = pytest.mark.torch

GEMM_MODULES = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d)
GEMM_KINDS = (OpKind.LINEAR, OpKind.CONV2D, OpKind.CONV3D)
# Our op-name prefixes that are extra calls of a reference module (see the module docstring).
ALIASES = {"conditioning.": "transformer_blocks.0.norm1.emb.", "later_chunks.": ""}


def meta(cls, config):
    with torch.device("meta"):
        return cls.from_config(_config(config))


def module_of(name: str) -> str:
    for ours, theirs in ALIASES.items():
        if name.startswith(ours):
            return theirs + name[len(ours):]
    return name


def check(graph, model, fn, *args, scope: str = ""):
    """Parameters (total and per op), GEMM module set, FLOPs per class and per module.
    `scope` restricts the comparison to one submodule's paths (e.g. the VAE's "decoder.")."""
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    expected = n_params(modules[scope.rstrip(".")]) if scope else n_params(model)
    assert graph.total_params() == expected
    for op in graph:
        if op.params:
            owner = modules.get(op.name)
            got = sum(p.numel() for p in owner.parameters(recurse=False)) if owner is not None else params[op.name].numel()
            assert op.params == got, op.name

    per_module, theirs = torch_flops(model, fn, *args)
    reference = {n for n, m in modules.items() if isinstance(m, GEMM_MODULES) and n.startswith(scope)}
    assert {op.name for op in graph if op.kind in GEMM_KINDS and op.params} == reference
    ours_per_module: dict[str, int] = {}
    for op in graph:
        if op.kind in GEMM_KINDS or op.kind is OpKind.MATMUL and op.name.startswith("conditioning."):
            key = module_of(op.name)
            ours_per_module[key] = ours_per_module.get(key, 0) + op.flops * op.repeat
    for name, flops in ours_per_module.items():
        assert flops == sum(per_module[name].values()), name

    ours = our_classes(graph)
    for cls in ("conv", "linear", "attention"):
        assert abs(ours[cls] - theirs[cls]) <= 0.01 * max(theirs[cls], 1), (cls, ours[cls], theirs[cls])
    return ours


@pytest.mark.parametrize(
    ("resolution", "labels", "expected"),
    [
        # batch 2: a class and the CFG null class 1000
        (256, [207, 1000], {"conv": 18_874_368, "linear": 457_737_043_968, "attention": 16_911_433_728}),
        (512, [207], None),  # DiT-XL-2-512: only `sample_size` differs
    ],
)
def test_dit_xl2_matches_diffusers(resolution, labels, expected):
    side, n = resolution // 8, len(labels)
    model = meta(diffusers.DiTTransformer2DModel, {**dit.TRANSFORMER_CONFIG, "sample_size": side})
    with torch.device("meta"):
        x, t, y = torch.randn(n, 4, side, side), torch.tensor([999] * n), torch.tensor(labels)
    graph = workloads.build("dit_xl2_transformer", resolution=resolution, batch=n)
    ours = check(graph, model, lambda m, x, t, y: m(x, t, y).sample, x, t, y)
    assert graph.total_params() == 749_826_464
    if expected is not None:
        assert ours == expected


def pixart_micro_conditions() -> dict:
    """PixArt-alpha 1024's `added_cond_kwargs`: resolution and aspect-ratio embeddings."""
    return {"added_cond_kwargs": {"resolution": torch.tensor([[1024.0, 1024.0]]), "aspect_ratio": torch.tensor([[1.0]])}}


@pytest.mark.parametrize(
    ("name", "cls", "config", "latents", "tokens", "extra", "expected"),
    [
        pytest.param(
            "pixart_alpha_transformer", "PixArtTransformer2DModel", pixart.TRANSFORMER_CONFIG, (1, 4, 128, 128), 120,
            pixart_micro_conditions, {"conv": 150_994_944, "linear": 4_281_291_177_984, "attention": 2_228_081_393_664},
            id="pixart_alpha",
        ),
        pytest.param(
            "latte_transformer", "LatteTransformer3DModel", latte.TRANSFORMER_CONFIG, (1, 4, 16, 64, 64), 120,
            dict, {"conv": 603_979_776, "linear": 31_946_262_478_848, "attention": 2_452_157_890_560},
            id="latte",
        ),
        pytest.param(
            "cogvideox_2b_transformer", "CogVideoXTransformer3DModel", cogvideox.TRANSFORMER_CONFIG,
            (1, 13, 16, 60, 90), 226,
            dict, {"conv": 4_313_088_000, "linear": 47_189_783_379_968, "attention": 72_803_214_950_400},
            id="cogvideox_2b",
        ),
    ],
)  # fmt: skip
def test_text_conditioned_transformer_matches_diffusers(name, cls, config, latents, tokens, extra, expected):
    """The T5-conditioned transformers on their default latents and `tokens` T5 states (batch 1)."""
    model = meta(getattr(diffusers, cls), config)
    with torch.device("meta"):
        x, t, text = torch.randn(*latents), torch.tensor([999]), torch.randn(1, tokens, 4096)
        kwargs = extra()

    def forward(m, x, t, text):
        return m(x, encoder_hidden_states=text, timestep=t, **kwargs).sample

    assert check(workloads.build(name), model, forward, x, t, text) == expected


@pytest.mark.parametrize(("frames", "resolution"), [(49, 480), (17, 96), (1, 96)])
def test_cogvideox_vae_decoder_matches_diffusers(frames, resolution):
    vae = meta(diffusers.AutoencoderKLCogVideoX, cogvideox.VAE_CONFIG)
    latent = (frames - 1) // 4 + 1
    with torch.device("meta"):
        z = torch.randn(1, 16, latent, resolution // 8, resolution * 3 // 2 // 8)
    decoded = []

    def forward(m, z):
        out = m._decode(z).sample  # AutoencoderKLCogVideoX.decode without the output dataclass
        decoded.append(tuple(out.shape))
        return out

    graph = workloads.build("cogvideox_2b_vae_decoder", frames=frames, resolution=resolution)
    ours = check(graph, vae, forward, z, scope="decoder.")
    assert decoded == [(1, 3, frames, resolution, resolution * 3 // 2)]
    if frames == 49:
        assert graph.total_params() == 123_368_451
        assert ours == {"conv": 315_027_947_520_000, "linear": 0, "attention": 0}


def test_t5_xxl_text_encoder_matches_transformers():
    with torch.device("meta"):
        t5 = transformers.T5EncoderModel(transformers.T5Config(**_t5.T5_V1_1_XXL))
    graph = workloads.build("cogvideox_2b_text_encoder")
    assert graph.total_params() == n_params(t5) == 4_762_310_656
    ids = torch.zeros(1, 226, dtype=torch.long, device="meta")
    _, theirs = torch_flops(t5, lambda m, x: m(input_ids=x).last_hidden_state, ids)
    # torch_flops only knows diffusers/CLIP attention modules, so T5's score products land in
    # its "linear"; the GEMM total is compared.
    ours = our_classes(graph)
    assert ours["linear"] + ours["attention"] == theirs["linear"] + theirs["attention"] == 2_113_075_150_848
