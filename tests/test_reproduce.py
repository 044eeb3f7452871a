"""The characterization studies run end to end at reduced sizes (structure and invariants only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sim
from experiments import reproduce
from experiments.characterize import decode_idle, image_size, seqlen, temporal


@pytest.fixture(scope="module")
def a100():
    return sim.load_arch("a100")


def test_every_study_writes_a_report_with_claims_and_plots(tmp_path):
    paths = reproduce.run(list(reproduce.STUDIES), "a100", small=True, out=tmp_path)
    assert [p.stem for p in paths] == list(reproduce.STUDIES)
    for path in paths:
        text = path.read_text()
        assert "| claim | paper | ttvsim | agrees |" in text
        assert text.count("\n| ") >= 3
        for line in text.splitlines():
            if line.startswith("!["):
                assert (tmp_path / line.split("(")[1].rstrip(")")).stat().st_size > 1000
    shares = __import__("pandas").read_csv(tmp_path / "breakdown_shares.csv")
    classes = shares.drop(columns=["model", "family", "latency_s"])
    assert ((classes.sum(axis=1) - 1).abs() < 1e-9).all()
    assert {"diffusion-tti", "transformer-tti", "ttv"} <= set(shares["family"])


def test_sd15_sequence_lengths_step_by_4x(a100):
    study = seqlen.run(a100, small=True)
    assert study.claims[0].agrees is True


def test_attention_outgrows_convolution_with_image_size(a100):
    frame = image_size.run(a100, small=True).tables["scaling"]
    assert frame["attention_growth"].iloc[-1] > frame["conv_growth"].iloc[-1] > 1


def test_graph_capture_removes_launch_gaps(a100):
    frame = decode_idle.run(a100, small=True).tables["idle"]
    eager = frame[frame["mode"] == "eager"].set_index("model")["idle_share"]
    captured = frame[frame["mode"] == "graph capture"].set_index("model")["idle_share"]
    assert (captured < eager).all() and (eager > 0).all()


def test_temporal_attention_is_few_flops(a100):
    frame = temporal.run(a100, small=True).tables["temporal"]
    assert set(frame["frames"]) == {8, 16}
    assert (frame["temporal_flop_share"] < 0.15).all()
    assert ((frame["temporal_time_share"] > 0) & (frame["temporal_time_share"] < 1)).all()


def test_unknown_study_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        reproduce.main(["nope"])
    assert info.value.code == 2


@pytest.mark.torch
def test_eager_llama_trace_launches_more_kernels_than_the_ir():
    pytest.importorskip("transformers")
    graph = decode_idle.eager_llama_graph()
    assert graph is not None and graph.total_params() == 6_738_415_616
    assert len(graph) > 2 * len(__import__("workloads").build("llama2_7b_decode")) * 0.9
