"""L2 reuse between a producer and a pointwise consumer, graph replay's extra time of small kernels,
indexed gathers and patchify convs (derived from `chains.csv` and `reuse/reuse.csv` by
experiments/gpu/derive_constants.py; reuse.csv's partly cold and evicted chains check the model)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_gpu_chains import CHAINS
from test_gpu_regimes import _us
from test_runtime import ROOT

import sim
from sim.cost.gpu import (
    GK_ACT_TRANSPOSE,
    GK_BROADCAST,
    GK_CONV,
    GK_COPY,
    GK_ELEMENTWISE,
    GK_GATHER,
    GK_WEIGHT_TRANSPOSE,
)
from sim.runtime import RuntimeConfig, expand
from sim.runtime.expand import L2_DISTANCE, L2_WORDS
from sim.runtime.host import SMALL_OP_BYTES, host_model
from workloads.builder import GraphBuilder


@pytest.fixture(scope="module")
def h200():
    return sim.load_arch("h200")


def _add(arch, n: int, resident: int, distance: int = 0, gk: int = GK_ELEMENTWISE) -> float:
    return _us(arch, unit=1, words_in=2 * n, words_out=n, elements=n, gpu_kind=gk, l2_words=resident, l2_distance=distance)


def test_resident_reads_come_at_the_l2_rate(h200):
    g, n = h200.gpu, 1 << 20
    reads, writes = 4.0 * n, 2.0 * n  # fp16 bytes
    resident = g.l2_kernel_floor_us + reads / (g.l2_read_gbs * 1e3) + writes / (g.bandwidth_gbs["elementwise"] * 1e3)
    assert _add(h200, n, 2 * n) == pytest.approx(resident, rel=1e-6)
    cold = g.kernel_floor_us + (reads + writes) / (g.bandwidth_gbs["elementwise"] * 1e3)
    assert _add(h200, n, 0) == pytest.approx(cold, rel=1e-6)
    half = _add(h200, n, n)  # one input resident: the floor of a cold kernel, half the reads at the L2 rate
    assert resident < half < cold and half > g.kernel_floor_us + writes / (g.bandwidth_gbs["elementwise"] * 1e3)
    l2 = h200.global_buffer.size_kb * 1024
    assert _add(h200, n, 2 * n, distance=l2) == pytest.approx(cold)  # evicted since
    assert _add(h200, n, 2 * n, gk=GK_BROADCAST) == pytest.approx(_add(h200, n, 0, gk=GK_BROADCAST))  # issue-bound


def test_model_follows_the_resident_add_chains(h200):
    """z = z + x chains: within the L2 the resident model, beyond it the DRAM model (both within 12%)."""
    c = pd.read_csv(CHAINS)
    add = c[(c.benchmark == "elementwise") & (c.op == "add/eager")]
    l2 = h200.global_buffer.size_kb * 1024
    for n, kernel_us in zip(add["shape"].astype(int), add.kernel_us / 48):
        fits = 6 * n <= l2
        model = _add(h200, n, 2 * n if fits else 0)
        assert model == pytest.approx(kernel_us, rel=0.12), n


def _chain():
    b = GraphBuilder("t", stage="dit")
    x = b.input((2, 256, 1152))
    h = b.linear("fc", x, 1152)
    b.add("res", h, x)
    return b.graph


def test_expansion_records_producer_words_and_reuse_distance():
    graph = _chain()
    default = [{"unit": 1, "words_in": 2 * 2 * 256 * 1152, "words_out": 2 * 256 * 1152, "launches": 1}]
    (k,) = expand(graph["res"], default, graph, RuntimeConfig())
    assert k[L2_WORDS] == 2 * 256 * 1152  # the linear's output; x is a graph input (cold)
    assert k[L2_DISTANCE] == 0  # the producer ran just before
    (kc,) = expand(graph["res"], default, graph, RuntimeConfig(mode="compiled"))
    assert kc.get(L2_WORDS, 0) == 0  # a compiler's fusion decides the traffic instead


def test_dit_pointwise_kernels_read_from_l2(h200):
    graph = sim.Simulator(__import__("workloads").build("dit_xl2_transformer", resolution=256, batch=2))
    k = graph.run(h200, runtime="cuda_graph").kernels
    assert k.l2_read_bytes.sum() > 0 and (k.l2_read_bytes <= k.l2_read_bytes + k.dram_read_bytes).all()
    assert (k.l2_read_bytes[k.unit == "gemm"] == 0).all()


def test_graph_replay_charges_small_kernels_more(h200):
    graph = _chain()
    ops = [graph["fc"], graph["res"]]
    small = GraphBuilder("s", stage="dit")
    small.activation("act", small.input((2, 1152)))
    ops.append(small.graph["act"])
    cfg = RuntimeConfig(mode="cuda_graph")
    on = host_model(ops, np.ones(3), h200.gpu, cfg).per_op_s
    off = host_model(ops, np.ones(3), dataclasses.replace(h200.gpu, graph_small_kernel_us=0.0), cfg).per_op_s
    assert (on - off) * 1e6 == pytest.approx([0.0, 0.0, h200.gpu.graph_small_kernel_us])
    assert 0.05 < h200.gpu.graph_small_kernel_us < 0.2 and SMALL_OP_BYTES == 1 << 20


REUSE = CHAINS.parents[1] / "reuse" / "reuse.csv"
EVICT_BYTES = 128 << 20  # reuse.csv's eviction copy


def test_model_follows_the_reuse_chains(h200):
    """reuse.csv (not used by the L2 fit): an add whose operands are both in L2, one cold, both cold,
    or evicted by a 128 MiB copy since they were written, against the model (graph replay)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive", ROOT / "experiments" / "gpu" / "derive_constants.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    r = pd.read_csv(REUSE)
    r = r[(r.benchmark == "reuse") & ~r.op.str.endswith("/eager")]
    measured = derive.chain_kernel_us(r).to_numpy()
    g = h200.gpu
    errors: dict[str, list[float]] = {}
    for op, n, meas in zip(r.op, r["shape"].astype(int), measured):
        resident = {"warm": 2 * n, "cold_operand": n, "cold": 0, "evicted": 2 * n}[op]
        distance = 4 * EVICT_BYTES if op == "evicted" else 0  # the copy's read + write, twice the L2 or more
        small = g.graph_small_kernel_us if 6 * n <= SMALL_OP_BYTES else 0.0
        errors.setdefault(op, []).append(_add(h200, n, resident, distance) + small - meas)
        errors[op][-1] /= meas
    med = {op: float(np.median(np.abs(e))) for op, e in errors.items()}
    assert med["warm"] < 0.06 and med["cold_operand"] < 0.06 and med["cold"] < 0.08, med
    assert med["evicted"] < 0.2, med  # the copy's dirty lines drain while the add runs: not modelled
    assert all(np.median(e) > -0.2 for e in errors.values())


def test_activations_and_compiled_kernels_do_not_read_l2():
    b = GraphBuilder("t", stage="dit")
    h = b.linear("fc", b.input((512, 1152)), 1152)
    b.activation("act", h, "gelu")
    default = [{"unit": 1, "words_in": 512 * 1152, "words_out": 512 * 1152, "launches": 1}]
    (k,) = expand(b.graph["act"], default, b.graph, RuntimeConfig())
    assert k["gpu_kind"] == GK_ELEMENTWISE and k.get(L2_WORDS, 0) == 0  # ALU-bound: no L2 speedup


def test_embedding_is_a_gather_with_its_dependent_load(h200):
    b = GraphBuilder("t", stage="dit")
    b.embedding("emb", b.input((2,)), 1001, 1152)
    default = [{"unit": 2, "words_in": 2 * 1152, "words_out": 2 * 1152, "launches": 1}]
    (k,) = expand(b.graph["emb"], default, b.graph, RuntimeConfig())
    assert k["gpu_kind"] == GK_GATHER
    words = {"unit": 2, "words_in": 2 * 1152, "words_out": 2 * 1152}
    extra = _us(h200, **words, gpu_kind=GK_GATHER, b_dram=0) - _us(h200, **words, gpu_kind=GK_COPY, b_dram=0)
    assert extra == pytest.approx(h200.gpu.gather_latency_us) and 0.5 < extra < 1.5


def test_patchify_convs_transpose_whatever_their_channels():
    def kinds(cin: int, kernel: int, stride: int) -> list[int]:
        b = GraphBuilder("t", stage="dit")
        b.conv("c", b.input((2, cin, 32, 32)), 1152, kernel, stride=stride, padding=0 if kernel == stride else None)
        op = b.graph["c"]
        return [k["gpu_kind"] for k in expand(op, [{"unit": 0, "m": 1, "k": 1, "n": 1}], b.graph, RuntimeConfig())]

    assert kinds(4, 2, 2)[:3] == [GK_ACT_TRANSPOSE, GK_WEIGHT_TRANSPOSE, GK_CONV]  # DiT's patch embedding
    assert kinds(4, 3, 1)[0] == GK_CONV  # a UNet's conv_in: no transposes (conv.csv conv3x3_in)
    r = pd.read_csv(REUSE)
    patch = r[r.benchmark == "patch"]
    transposes = patch.kernels.str.contains("nchwToNhwc").to_numpy()
    ks = patch["shape"].str.extract(r"k(\d+)s(\d+)$").astype(int).to_numpy()
    patchify = ks[:, 0] == ks[:, 1]
    assert patchify.sum() >= 5 and transposes[patchify].all() and not transposes[~patchify].any()


def test_reuse_family_runs_on_the_cpu_harness(tmp_path):
    pytest.importorskip("torch")
    from sim.calibrate import main

    assert main(["--out", str(tmp_path), "--families", "reuse", "--device", "cpu"]) == 0
    rows = pd.read_csv(tmp_path / "reuse.csv")
    assert set(rows.benchmark) == {"reuse", "tiny", "patch"}
    assert {"warm/eager", "cold_operand/eager", "cold/eager", "evicted/eager"} <= set(rows.op)
    assert (rows.launches > 0).all()
