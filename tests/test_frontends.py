"""Frontends: SCALE-Sim topology CSVs (no torch) and the PyTorch dispatch tracer (torch).

The SCALE-Sim part is checked against the real SCALE-Sim 3.0 through the recorded runs of
`experiments/data/scalesim_reference.csv`: every layer of `experiments/scalesim_layers.py`,
written as topology rows and loaded here, lowers to the GEMM SCALE-Sim reported and to its
exact compute cycles. The tracer is checked against the model zoo and the reference modules:
the SD 1.5 UNet, its CLIP text encoder and VAE decoder traced on the meta device give the
exact parameter counts, the same per-layer parameters and the same MACs as `workloads.build`.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

import sim
import workloads
from sim.lower import lower_op
from sim.systolic import gemm_cycles
from workloads import InputError, OpKind
from workloads.annotations import Sparsity
from workloads.frontends import TensorSpec, load_topology, trace
from workloads.frontends.trace_builder import TraceBuilder
from workloads.frontends.trace_values import Call, Value

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "experiments" / "data" / "scalesim_reference.csv"
CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
GEMM_HEADER = "Layer, M, N, K,"


def write(tmp_path: Path, text: str, name: str = "topo.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- SCALE-Sim topology CSVs -------------------------------------------------------------------
def test_conv_topology_is_a_chain_of_scalesim_gemms(tmp_path):
    path = write(tmp_path, f"{CONV_HEADER}\nconv1, 224, 224, 7, 7, 3, 64, 2,\n\nconv2, 56, 56, 3, 3, 64, 64, 1,\n")
    g = load_topology(path)
    assert g.name == "topo" and [op.name for op in g] == ["conv1", "conv2"]
    assert list(g.graph.predecessors("conv2")) == ["conv1"]
    c1, c2 = g["conv1"], g["conv2"]
    assert c1.kind is OpKind.CONV2D and c1.inputs == ((1, 3, 224, 224),)
    # SCALE-Sim: ofmap = ceil((224 - 7 + 2) / 2) = 110 (PyTorch without padding: 109)
    assert c1.output == (1, 64, 110, 110)
    assert c1.macs == 110 * 110 * 7 * 7 * 3 * 64 and c1.params == 7 * 7 * 3 * 64  # no bias
    assert c2.output == (1, 64, 54, 54) and c2.attrs["padding"] == (0, 0)
    assert lower_op(c1)[0]["m"] == 110 * 110 and lower_op(c1)[0]["k"] == 7 * 7 * 3


def test_gemm_topology_has_n_before_k(tmp_path):
    g = load_topology(write(tmp_path, f"{GEMM_HEADER}\nqkv, 4096, 960, 320,\nout, 4096, 320, 320"), "gemm")
    op = g["qkv"]
    assert op.kind is OpKind.LINEAR
    assert (op.attrs["tokens"], op.attrs["in_features"], op.attrs["out_features"]) == (4096, 320, 960)
    assert op.macs == 4096 * 320 * 960 and op.params == 320 * 960
    assert g.total_macs() == 4096 * 320 * (960 + 320)


def test_depthwise_layers_follow_scalesim(tmp_path):
    # SCALE-Sim splits a "DP" layer into C one-channel layers of `Num Filter` filters each.
    g = load_topology(write(tmp_path, f"{CONV_HEADER}\nconvDP1, 16, 16, 3, 3, 8, 1, 1,\n"))
    kernel = lower_op(g["convDP1"])[0]
    assert (kernel["m"], kernel["k"], kernel["n"], kernel["count"]) == (14 * 14, 9, 1, 8)


def test_sparsity_column(tmp_path):
    dense = load_topology(write(tmp_path, f"{GEMM_HEADER}\nfc, 8, 16, 32, 1:1,\n"), "gemm")
    assert dense["fc"].macs == 8 * 16 * 32 and "sparsity" not in dense["fc"].annotations
    g = load_topology(write(tmp_path, f"{GEMM_HEADER}\nfc, 8, 16, 32, 2:4,\nfc2, 8, 16, 32,\nfc3, 8, 16, 32, 4:4,\n"), "gemm")
    assert g["fc"].annotations["sparsity"] == Sparsity(weights="2:4", format="ellpack_block")
    assert g["fc"].macs == 8 * 16 * 32  # the IR keeps dense MACs; cost units read the annotation
    assert "sparsity" not in g["fc2"].annotations and "sparsity" not in g["fc3"].annotations
    conv = load_topology(write(tmp_path, f"{CONV_HEADER}\nc, 8, 8, 3, 3, 4, 4, 1, 1:4,\n"))
    assert conv["c"].annotations["sparsity"].nm == (1, 4)


@pytest.mark.parametrize("ratio", ["5:4", "0:4", "a:4", "2:4:8", "2:"])
def test_bad_sparsity_column(tmp_path, ratio):
    with pytest.raises(InputError, match=r"topo.csv:2: column 5 \(N:M sparsity\): .*N:M"):
        load_topology(write(tmp_path, f"{GEMM_HEADER}\nfc, 8, 16, 32, {ratio},\n"), "gemm")


def test_duplicate_and_empty_layer_names(tmp_path):
    g = load_topology(write(tmp_path, f"{GEMM_HEADER}\nfc, 8, 16, 32,\nfc, 8, 16, 32,\n, 8, 16, 32,\n"), "gemm")
    assert [op.name for op in g] == ["fc", "fc_2", "layer4"]


@pytest.mark.parametrize(
    ("text", "kind", "match"),
    [
        (f"{CONV_HEADER}\nc, 8, 8, 3, 3, x, 4, 1,\n", "conv", r"topo.csv:2: column 6 \(Channels\): expected a positive integer, got 'x'"),
        (f"{CONV_HEADER}\nc, 8, 8, 3, 3, 4, 0, 1,\n", "conv", r":2: column 7 \(Num Filter\)"),
        (f"{CONV_HEADER}\nc, 8, 8, 3, 3, 4, 4,\n", "conv", r":2: expected 8 columns .* got 7"),
        (f"{CONV_HEADER}\nc, 8, 8, 3, 3, 4, 4, 1,\nfc, 1, 2, 3,\n", "conv", r":3: .*is this a gemm topology\? \(format: gemm\)"),
        (f"{GEMM_HEADER}\nc, 8, 8, 3, 3, 4, 4, 1,\n", "gemm", r"is this a conv topology"),
        (f"{CONV_HEADER}\nc, 2, 8, 3, 3, 4, 4, 1,\n", "conv", r":2: Filter Height > IFMAP Height"),
        ("c, 8, 8, 3, 3, 4, 4, 1,\n", "conv", r":1: the first row looks like a layer"),
        ("\n\n", "conv", "empty SCALE-Sim topology"),
        (f"{GEMM_HEADER}\n", "gemm", "no layer rows"),
    ],
)
def test_malformed_topologies(tmp_path, text, kind, match):
    with pytest.raises(InputError, match=match):
        load_topology(write(tmp_path, text), kind)


def test_missing_file_and_bad_format(tmp_path):
    with pytest.raises(InputError, match="nope.csv: SCALE-Sim topology file not found"):
        load_topology(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown SCALE-Sim topology format 'fc'"):
        load_topology(write(tmp_path, f"{GEMM_HEADER}\nfc, 1, 2, 3,\n"), "fc")


def test_zoo_model_scalesim_topology(tmp_path):
    path = write(tmp_path, f"{GEMM_HEADER}\nfc, 64, 128, 256,\n")
    g = workloads.build("scalesim_topology", path=str(path), format="gemm")
    assert g.total_macs() == 64 * 128 * 256
    result = sim.simulate(g, sim.load_arch("os128"))
    assert result.summary()["latency_s"] > 0
    with pytest.raises(InputError, match="needs option 'path'"):
        workloads.build("scalesim_topology")
    with pytest.raises(InputError, match="format"):
        workloads.build("scalesim_topology", path=str(path), format="fc")


def _scalesim_layers():
    spec = importlib.util.spec_from_file_location("scalesim_layers", REPO / "experiments" / "scalesim_layers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("scalesim_layers", module)
    spec.loader.exec_module(module)
    return module


def test_topologies_reproduce_the_recorded_scalesim_runs(tmp_path):
    """Every cross-check layer, as a topology row, lowers to SCALE-Sim's GEMM and cycles."""
    layers = _scalesim_layers()
    convs = [layer for layer in layers.LAYERS if layer.kind == "conv"]
    gemms = [layer for layer in layers.LAYERS if layer.kind == "gemm"]
    graphs = {
        "conv": load_topology(write(tmp_path, "\n".join([layers.CONV_HEADER, *(x.topology_row() for x in convs)]), "c.csv")),
        "gemm": load_topology(write(tmp_path, "\n".join([layers.GEMM_HEADER, *(x.topology_row() for x in gemms)]), "g.csv"), "gemm"),
    }
    with REFERENCE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 100
    for row in rows:
        kernel = lower_op(graphs[row["kind"]][row["layer"]])[0]
        dims = (kernel["m"], kernel["k"], kernel["n"])
        assert dims == (int(row["M"]), int(row["K"]), int(row["N"])), row["layer"]
        cycles = gemm_cycles(*dims, int(row["rows"]), int(row["cols"]), row["dataflow"])
        assert cycles == int(row["scalesim_compute_cycles"]), row["layer"]


# -- the aten registry without torch -------------------------------------------------------------
def test_registry_emits_skips_and_reports_without_torch():
    b = TraceBuilder("m", "unet", "fp16", {"conv.weight": 8 * 4 * 9, "conv.bias": 8})
    x = Value((1, 4, 16, 16), vid=1)
    w, bias = Value((8, 4, 3, 3), vid=2, params=("conv.weight",)), Value((8,), vid=3, params=("conv.bias",))
    out = b.handle(
        Call("aten.convolution.default", "convolution", (x, w, bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 1), {}, ((1, 8, 16, 16),)),
        "conv",
    )
    assert out is not None and out.src == ("conv",)
    view = Call("aten.view.default", "view", (Value((1, 8, 16, 16), ("conv",), 4), [1, 8, 256]), {}, ((1, 8, 256),))
    assert b.handle(view, "") is None
    weird = Call("aten.sort.default", "sort", (Value((4,), vid=5),), {}, ((4,), (4,)))
    assert b.handle(weird, "") is None
    g = b.build()
    assert g["conv"].params == 8 * 4 * 9 + 8 and g["conv"].macs == 16 * 16 * 8 * 4 * 9
    assert dict(b.supported) == {"aten.convolution.default": 1}
    assert dict(b.free) == {"aten.view.default": 1}
    assert dict(b.unsupported) == {"aten.sort.default": 1}


def test_trace_without_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(InputError, match=r"pip install 'ttvsim\[torch\]' \(and torch==2.13.0 first"):
        trace(object(), (1, 4, 8, 8))


# -- the PyTorch tracer ---------------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _reference():
    """Meta-device reference modules, from the SD 1.5 torch reference tests."""
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    import test_torch_reference

    return test_torch_reference


def _tiny_model(torch):
    nn, F = torch.nn, torch.nn.functional

    class Tiny(nn.Module):
        """conv -> groupnorm -> silu -> tokens -> q/k/v linears -> SDPA -> out linear."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 32, 3, padding=1)
            self.norm = nn.GroupNorm(8, 32)
            self.act = nn.SiLU()
            self.qkv = nn.Linear(32, 96)
            self.out = nn.Linear(32, 16, bias=False)

        def forward(self, x, context=None):
            h = self.act(self.norm(self.conv(x)))
            n, c, _hh, _ww = h.shape
            t = h.flatten(2).transpose(1, 2).contiguous()  # (n, hh*ww, c)
            q, k, v = (z.view(n, -1, 4, 8).transpose(1, 2) for z in self.qkv(t).chunk(3, dim=-1))
            if context is not None:
                k = v = context
            o = F.scaled_dot_product_attention(q, k, v, is_causal=context is None)
            return self.out(o.transpose(1, 2).reshape(n, -1, c))

    return Tiny


@pytest.mark.torch
def test_tiny_module_kinds_params_and_macs(torch):
    with torch.device("meta"):
        model = _tiny_model(torch)()
    r = trace(model, (2, 4, 8, 8), stage="unet")
    g = r.graph
    kinds = [op.kind for op in g if op.kind is not OpKind.DATA_MOVEMENT]
    assert kinds == [OpKind.CONV2D, OpKind.GROUP_NORM, OpKind.ACTIVATION, OpKind.LINEAR, OpKind.ATTENTION, OpKind.LINEAR]
    assert [op.name for op in g if op.kind is not OpKind.DATA_MOVEMENT] == ["conv", "norm", "act", "qkv", "attention", "out"]
    assert g.total_params() == sum(p.numel() for p in model.parameters()) == 1184 + 64 + 3168 + 512
    assert g["conv"].params == 4 * 32 * 9 + 32 and g["qkv"].params == 32 * 96 + 96
    tokens = 2 * 64
    assert g["conv"].macs == tokens * 32 * 4 * 9
    assert g["qkv"].macs == tokens * 32 * 96 and g["out"].macs == tokens * 32 * 16
    attn = g["attention"]
    assert attn.macs == 2 * 4 * 64 * 64 * (8 + 8)
    assert dict(attn.attrs) == {
        "batch": 2, "heads": 4, "head_dim": 8, "v_head_dim": 8, "lq": 64, "lk": 64,
        "role": "self", "axis": "spatial", "causal": True,
    }  # fmt: skip
    assert r.report.complete and not r.report.unsupported
    assert "aten.convolution.default" in r.report.supported and "aten.view.default" in r.report.free
    # edges follow the data: the attention reads the fused qkv projection
    assert "qkv" in set(g.graph.predecessors("attention"))


@pytest.mark.torch
def test_cross_attention_role_axis_callback_and_prefix(torch):
    with torch.device("meta"):
        model = _tiny_model(torch)()
    ctx = (2, 4, 64, 8)  # same length as the queries: the role comes from the sources
    seen = []

    def axis(site):
        seen.append(site)
        return "temporal"

    r = trace(model, (2, 4, 8, 8), ctx, stage="unet", prefix="unet", attention_axis=axis)
    attn = r.graph["unet.attention"]
    assert (attn.attrs["role"], attn.attrs["axis"], attn.attrs["causal"]) == ("cross", "temporal", False)
    assert seen[0].name == "unet.attention" and (seen[0].lq, seen[0].lk, seen[0].heads) == (64, 64, 4)
    assert all(op.name.startswith("unet.") for op in r.graph)
    with pytest.raises(InputError, match="attention axis 'time'"):
        trace(model, (2, 4, 8, 8), stage="unet", attention_axis="time")


@pytest.mark.torch
def test_real_weights_are_traced_without_computing(torch):
    model = _tiny_model(torch)()  # real CPU weights
    model.train()
    before = model.conv.weight.detach().clone()
    r = trace(model, torch.randn(2, 4, 8, 8), stage="unet")
    assert r.graph.total_params() == sum(p.numel() for p in model.parameters())
    assert model.training and model.conv.weight.device.type == "cpu"
    assert torch.equal(model.conv.weight.detach(), before)


@pytest.mark.torch
def test_unsupported_ops_are_reported_not_dropped(torch):
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(4, 4, 2, stride=2)
            self.lin = torch.nn.Linear(16, 16)

        def forward(self, x):
            y = self.up(x)
            y, _ = torch.sort(y, dim=-1)
            return self.lin(y)

    with torch.device("meta"):
        model = Odd()
    r = trace(model, (1, 4, 8, 8))
    assert r.report.unsupported["aten.convolution.default (transposed)"] == 1
    assert any(op.startswith("aten.sort") for op in r.report.unsupported)
    assert set(r.report.unattributed_params) == {"up.weight", "up.bias"}
    assert not r.report.complete and "unsupported" in str(r)
    # the linear still depends on the input through the unsupported ops
    assert r.graph.total_params() == 16 * 16 + 16


@pytest.mark.torch
def test_assorted_layers(torch):
    """RMSNorm, dilated conv, inference batch norm, pooling, a class-token parameter, GQA."""
    nn, F = torch.nn, torch.nn.functional

    class Assorted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, dilation=2, padding=2)
            self.bn = nn.BatchNorm2d(8)
            self.pool = nn.AvgPool2d(2)
            self.emb = nn.Embedding(10, 32)
            self.cls = nn.Parameter(torch.zeros(1, 1, 32))
            self.norm = nn.RMSNorm(32)

        def forward(self, x, ids):
            h = self.pool(self.bn(self.conv(x)))
            t = self.norm(torch.cat([self.cls.expand(1, -1, -1), self.emb(ids)], 1))  # (1, 6, 32)
            q = t.view(1, 6, 8, 4).transpose(1, 2)
            kv = t[..., :8].reshape(1, 6, 2, 4).transpose(1, 2)  # 2 key/value heads
            return F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True).sum() + h.mean()

    with torch.device("meta"):
        model = Assorted()
    r = trace(model, (1, 4, 8, 8), TensorSpec((1, 5), "int64"))
    g = r.graph
    assert r.report.complete and g.total_params() == sum(p.numel() for p in model.parameters())
    assert g["conv"].attrs["dilation"] == (2, 2) and g["conv"].macs == 64 * 8 * 4 * 9
    assert (g["bn"].kind, g["pool"].kind, g["emb"].kind) == (OpKind.ELEMENTWISE, OpKind.RESAMPLE, OpKind.EMBEDDING)
    assert g["norm"].kind is OpKind.LAYER_NORM and g["norm"].attrs["rms"] and g["norm"].params == 32
    assert g["cat"].params == 32  # the class token counts on the op that reads it first
    attn = g["attention"]
    assert (attn.attrs["heads"], attn.attrs["lq"], attn.attrs["lk"]) == (8, 6, 6)
    assert attn.macs == 8 * 6 * 6 * (4 + 4)  # GQA: keys/values shared, work as if expanded


@pytest.mark.torch
def test_bad_trace_inputs(torch):
    with torch.device("meta"):
        model = _tiny_model(torch)()
    with pytest.raises(InputError, match="needs a torch.nn.Module"):
        trace(lambda x: x, (1,))
    with pytest.raises(InputError, match="no method 'decode'"):
        trace(model, (2, 4, 8, 8), method="decode")
    with pytest.raises(InputError, match="tracing Tiny.forward failed"):
        trace(model, (2, 3, 8, 8))  # 3 channels into a 4-channel conv
    with pytest.raises(InputError, match="unknown torch dtype 'int65'"):
        trace(model, TensorSpec((2, 4, 8, 8), "int65"))


@pytest.mark.torch
def test_sd15_unet_trace_matches_the_zoo(torch):
    ref = _reference()
    from workloads.zoo import sd15

    unet = ref.meta_unet(sd15.UNET_CONFIG)
    r = trace(unet, (1, 4, 64, 64), 999, (1, 77, 768), stage="unet", name="sd15_unet")
    print(r)
    ours, zoo = r.graph, workloads.build("sd15_unet")
    assert ours.total_params() == 859_520_964 == ref.n_params(unet)
    assert abs(ours.total_macs() - zoo.total_macs()) <= 0.01 * zoo.total_macs()
    for cls, flops in ref.our_classes(zoo).items():  # conv / linear / attention
        assert abs(ref.our_classes(ours)[cls] - flops) <= 0.01 * flops, cls
    # same layers with the same parameters, named after the same module paths
    assert {op.name: op.params for op in ours if op.params} == {op.name: op.params for op in zoo if op.params}
    assert len(r.report.unsupported) <= 3, r.report.unsupported
    assert not r.report.unattributed_params
    taxonomy = sorted((op.attrs["role"], op.attrs["lq"], op.attrs["lk"]) for op in ours if op.kind is OpKind.ATTENTION)
    assert taxonomy == sorted((op.attrs["role"], op.attrs["lq"], op.attrs["lk"]) for op in zoo if op.kind is OpKind.ATTENTION)
    assert {op.attrs["axis"] for op in ours if op.kind is OpKind.ATTENTION} == {"spatial"}


@pytest.mark.torch
def test_clip_text_encoder_trace_matches_the_zoo(torch):
    ref = _reference()
    clip = ref.meta_clip()
    r = trace(clip, TensorSpec((1, 77), "int64"), stage="text_encoder")
    print(r)
    ours, zoo = r.graph, workloads.build("sd15_text_encoder")
    assert ours.total_params() == 123_060_480 == ref.n_params(clip)
    assert ours.total_macs() == zoo.total_macs()
    assert {op.name: op.params for op in ours if op.params} == {op.name: op.params for op in zoo if op.params}
    assert len(r.report.unsupported) <= 3, r.report.unsupported
    attention = [op for op in ours if op.kind is OpKind.ATTENTION]
    assert len(attention) == 12
    assert {(op.attrs["role"], op.attrs["axis"], op.attrs["causal"]) for op in attention} == {("self", "text", True)}


@pytest.mark.torch
def test_vae_decode_and_pipeline_composition(torch):
    ref = _reference()
    from workloads import OpGraph

    vae = ref.meta_vae()
    r = trace(vae, (1, 4, 64, 64), method="decode", stage="vae_decoder", prefix="vae")
    zoo = workloads.build("sd15_vae_decoder")
    assert r.graph.total_params() == zoo.total_params() == 49_490_199
    assert r.graph.total_macs() == zoo.total_macs()
    # decode() never touches the encoder: its parameters are reported, not counted
    assert sum(r.report.unattributed_params.values()) == ref.n_params(vae) - 49_490_199
    assert all(name.startswith(("encoder.", "quant_conv.")) for name in r.report.unattributed_params)

    clip = trace(ref.meta_clip(), TensorSpec((1, 77), "int64"), stage="text_encoder", prefix="text_encoder")
    g = OpGraph("traced")
    g.extend(clip.graph)
    g.extend(r.graph, after=clip.graph.sinks(), repeat=3)
    assert g.total_macs() == clip.graph.total_macs() + 3 * r.graph.total_macs()
    assert sim.simulate(g, sim.load_arch("os128")).summary()["latency_s"] > 0
