"""The sparsity and approximation studies run at reduced sizes (structure and invariants only)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sim
from experiments.characterize import approximation, cho_sd21, sparsity


@pytest.fixture(scope="module")
def a100():
    return sim.load_arch("a100")


def _written(study, tmp_path) -> str:
    text = study.write(tmp_path).read_text()
    assert "| claim | paper | ttvsim | agrees |" in text
    for line in text.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("(")[1].rstrip(")")).stat().st_size > 1000
    return text


def test_cho_sd21_gpu_sparse_kernel_moves_more_bytes_and_the_unit_pays(a100, tmp_path):
    study = cho_sd21.run(a100, small=True)
    _written(study, tmp_path)
    sp = study.tables["sparsity"]
    flash = sp[sp["kernel"] == cho_sd21.REFERENCE[0]].set_index("resolution")
    sparse = sp[(sp["kernel"] == "sparse unfused (CSR + gather)") & (sp["density"] == 0.3)].set_index("resolution")
    assert (sparse["attention_l2_bytes"] > flash["attention_l2_bytes"]).all()
    unit = sp[(sp["kernel"] == "score-skipping unit")]
    assert (unit["attention_speedup_vs_dense_fused"] > 1).all()
    assert (unit[unit["density"] == 0.3]["attention_macs_removed"] - 0.7).abs().max() < 1e-6
    shares = study.tables["breakdown"].drop(columns=["model", "resolution", "latency_s"])
    assert ((shares.sum(axis=1) - 1).abs() < 1e-9).all()


def test_sparsity_study_skipping_gating_and_break_even(a100, tmp_path):
    study = sparsity.run(a100, small=True)
    _written(study, tmp_path)
    frame = study.tables["configs"]
    gate = frame[frame["family"] == "gate"]
    assert (gate["gemm_compute_cycles_vs_dense"] == 1).all() and (gate["energy_j_vs_dense"] < 1).all()
    assert (frame[frame["family"] == "skip"]["gemm_compute_cycles_vs_dense"] < 1).all()
    be = study.tables["break_even"].set_index("format")["break_even_16bit"]
    assert be["dense"] == 1.0 and abs(be["csr"] - 1 / 3) < 1e-6
    assert [c.agrees for c in study.claims[:4]] == [True, True, True, True]


def test_nirvana_k_distribution_from_the_published_quantiles():
    dist = approximation.nirvana_k()
    assert set(dist) == {0, 5, 10, 15, 20, 25}
    assert abs(sum(dist.values()) - 1) < 1e-5
    assert 7.0 < sum(k * p for k, p in dist.items()) < 7.5


def test_approximation_study_saves_time_per_technique(a100, tmp_path):
    study = approximation.run(a100, small=True)
    _written(study, tmp_path)
    frame = study.tables["techniques"]
    gpu = frame[frame["platform"] == "a100"].set_index("technique")
    assert gpu.loc["baseline", "speedup"] == 1.0
    for name in ("steps 20", approximation.NIRVANA, "deepcache 5", "NIRVANA + deepcache 3"):
        assert gpu.loc[name, "speedup"] > 1, name
    assert gpu.loc["NIRVANA + deepcache 3", "latency_s"] < gpu.loc["deepcache 5", "latency_s"] * 1.5
