"""Property tests of the workload IR across the model zoo (hypothesis).

Attention FLOPs scale with Lq x Lk, convolution FLOPs with H x W, doubling frames doubles
spatial-attention FLOPs and quadruples temporal-attention score FLOPs, and classifier-free
guidance doubles the denoiser's work.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

import workloads
from workloads import GraphBuilder, OpKind

# The guided denoiser/generator stage of every pipeline with a `cfg` option.
GUIDED_STAGE = {
    "sd15": "unet", "sd21": "unet", "sdxl": "unet", "imagen": "base_unet", "dit_xl2": "transformer",
    "pixart_alpha": "transformer", "muse": "base_transformer", "parti": "transformer",
    "modelscope_t2v": "unet", "make_a_video": "decoder", "phenaki": "transformer",
    "cogvideox_2b": "transformer", "latte": "transformer",
}  # fmt: skip
FAST = {"steps": 2, "sr_steps": 2, "frames": 8, "kv_buckets": 2}


def macs_by(graph: workloads.OpGraph, key) -> dict:
    out: dict = defaultdict(int)
    for op in graph:
        out[key(op)] += op.macs * op.repeat
    return out


def test_every_guided_pipeline_is_listed():
    guided = {n for n, s in workloads.registry().items() if not s.component and "cfg" in s.options}
    assert guided == set(GUIDED_STAGE)


@settings(max_examples=13, deadline=None)
@given(name=st.sampled_from(sorted(GUIDED_STAGE)))
def test_cfg_doubles_the_denoiser(name):
    spec = workloads.registry()[name]
    opts = {k: v for k, v in FAST.items() if k in spec.options}
    if name in ("cogvideox_2b", "phenaki"):
        opts["frames"] = 9  # their tokenizers take 1 + 4k / 1 + 2k frames
    stage = GUIDED_STAGE[name]
    on = macs_by(workloads.build(name, cfg=True, **opts), lambda op: op.stage)[stage]
    off = macs_by(workloads.build(name, cfg=False, **opts), lambda op: op.stage)[stage]
    assert on == 2 * off > 0


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 4), h=st.integers(1, 16), lq=st.integers(1, 2048), lk=st.integers(1, 2048), d=st.sampled_from([32, 40, 64, 128]))
def test_attention_flops_are_lq_times_lk(b, h, lq, lk, d):
    g = GraphBuilder("a", "s")
    q, kv = g.input((b, lq, h * d)), g.input((b, lk, h * d))
    op = g.build()[g.attention("attn", q, kv, kv, h).src[0]]
    assert op.flops == 2 * b * h * lq * lk * 2 * d
    assert op.kind is OpKind.ATTENTION and op.attrs["lq"] == lq and op.attrs["lk"] == lk


@settings(max_examples=6, deadline=None)
@given(side=st.sampled_from([256, 320, 384, 448, 576, 640]))
def test_sd_unet_conv_flops_scale_with_pixels_and_self_attention_with_their_square(side):
    ref = workloads.build("sd15_unet", resolution=512)
    other = workloads.build("sd15_unet", resolution=side)
    ratio = (side / 512) ** 2
    conv = lambda g: macs_by(g, lambda op: op.op_class)["conv"]  # noqa: E731
    assert conv(other) == conv(ref) * ratio
    self_attn = lambda g: macs_by(g, lambda op: op.attrs.get("role") == "self")[True]  # noqa: E731
    assert self_attn(other) == self_attn(ref) * ratio**2


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(["latte_transformer", "modelscope_t2v_unet", "make_a_video_decoder"]), frames=st.sampled_from([4, 8]))
def test_doubling_frames(name, frames):
    def attention(f: int) -> dict:
        g = workloads.build(name, frames=f)
        return macs_by(g, lambda op: op.attrs.get("axis") if op.kind is OpKind.ATTENTION else None)

    one, two = attention(frames), attention(2 * frames)
    assert two["spatial"] == 2 * one["spatial"]
    assert two["temporal"] == 4 * one["temporal"]  # sequences stay, each F x F score matrix quadruples
