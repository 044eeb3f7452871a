"""The `sparsity` pass and the `Sparsity` annotation: forms, precedence, errors, dense identity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from workloads import GraphBuilder, InputError, OpGraph, apply_passes
from workloads.annotations import Sparsity, parse_nm, sparsity_of


def attention_graph() -> OpGraph:
    """Self and cross attention over space and time at two lengths, a matmul, a conv, two stages."""
    b = GraphBuilder("attn", stage="denoiser")
    x = b.conv("conv", b.input((1, 4, 16, 16)), 32)
    big = b.move("tokens", x, (1, 256, 32))
    small = b.input((4, 64, 32))
    text = b.input((1, 77, 32))
    b.attention("self_big", b.linear("q", big, 32, bias=False), big, big, heads=2)
    b.attention("self_small", small, small, small, heads=2)
    b.attention("cross", b.linear("q2", big, 32, bias=False), text, text, heads=2, role="cross")
    b.attention("temporal", small, small, small, heads=2, axis="temporal")
    b.matmul("mm", big, b.input((1, 32, 8)))
    g = b.build()
    d = GraphBuilder("dec", stage="decoder")
    d.linear("dec.proj", d.input((16, 32)), 32)
    g.extend(d.build())
    return g


def run(graph: OpGraph, **options) -> OpGraph:
    return apply_passes(graph, [{"name": "sparsity", **options}])


def annotated(graph: OpGraph) -> dict[str, Sparsity]:
    return {op.name: sparsity_of(op) for op in graph if sparsity_of(op) is not None}


# -- the annotation ----------------------------------------------------------------------------
def test_sparsity_fields_and_helpers():
    s = Sparsity(weights=" 2 : 4 ", activations=0.5)
    assert (s.weights, s.nm, s.weight_density, s.format, s.mode) == ("2:4", (2, 4), 0.5, "ellpack_block", "skip")
    assert s.work_density == 0.25 and not s.is_dense and s.structured and s.metadata_bits_per_nonzero == 2
    u = Sparsity(weights=0.3, mode="gate")
    assert (u.nm, u.weight_density, u.format, u.label()) == (None, 0.3, "bitmask", "w0.3/bitmask gate")
    assert Sparsity(scores=0.3).format == "dense" and Sparsity(scores=0.3).label() == "s0.3 skip"
    for dense in (Sparsity(), Sparsity(weights="4:4"), Sparsity(weights=1.0), Sparsity(weights=1, activations=1)):
        assert dense.is_dense and dense.weights is None and dense.label() == "dense"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": "5:4"}, "N <= M"),
        ({"weights": "0:4"}, "N <= M"),
        ({"weights": "2.5:4"}, "two positive integers"),
        ({"weights": 0.0}, r"density in \(0, 1\]"),
        ({"weights": 124}, "base-60"),
        ({"weights": True}, "density"),
        ({"activations": 1.5}, "activations"),
        ({"scores": -0.1}, "scores"),
        ({"format": "zip"}, "unknown format"),
        ({"activation_format": "csv"}, "unknown activation_format"),
        ({"mode": "skipp"}, "unknown mode"),
    ],
)
def test_sparsity_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sparsity(**kwargs)


def test_parse_nm():
    assert parse_nm("2:4") == (2, 4) and parse_nm("1:1") == (1, 1)
    for bad in ("2", "2:4:8", ":4", "-1:4", "1:1000000"):
        with pytest.raises(ValueError):
            parse_nm(bad)


# -- the pass -----------------------------------------------------------------------------------
def test_by_class_weights_structured_and_unstructured():
    g = run(attention_graph(), by_class={"linear": {"weights": "2:4"}, "conv": {"weights": 0.3}})
    got = annotated(g)
    assert set(got) == {"q", "q2", "dec.proj", "conv"}  # not the matmul: it has no weights
    assert got["q"] == Sparsity(weights="2:4") and got["q"].format == "ellpack_block"
    assert got["conv"] == Sparsity(weights=0.3) and got["conv"].format == "bitmask"


def test_bare_ratio_or_density_is_the_weights():
    g = attention_graph()
    assert annotated(run(g, by_class={"linear": "2:4", "conv": 0.3})) == annotated(
        run(g, by_class={"linear": {"weights": "2:4"}, "conv": {"weights": 0.3}})
    )


def test_attention_scores_apply_to_attention_ops_only():
    got = annotated(run(attention_graph(), attention_scores=0.3))
    assert set(got) == {"self_big", "self_small", "cross", "temporal"}
    assert all(s == Sparsity(scores=0.3) for s in got.values())


def test_attention_score_precedence():
    got = annotated(
        run(
            attention_graph(),
            attention_scores=0.5,
            attention_scores_by_axis={"temporal": 1.0},
            attention_scores_by_role={"cross": 0.9},
            attention_scores_by_length={128: 0.2, "200": 0.1},
            by_name={"self_small": {"scores": 0.7}},
        )
    )
    # self_big: Lk 256 >= 200 -> 0.1; cross: Lk 77 -> role 0.9; temporal: axis 1.0 -> dense
    assert {k: s.scores for k, s in got.items()} == {"self_big": 0.1, "self_small": 0.7, "cross": 0.9}


def test_name_and_stage_rules_merge_field_by_field():
    g = run(
        attention_graph(),
        by_class={"linear": "2:4"},
        by_stage={"decoder": {"activations": 0.5}},
        by_name={"q*": {"weights": 0.25, "format": "csr"}, "dec.*": {"mode": "gate"}},
    )
    got = annotated(g)
    assert got["q"] == got["q2"] == Sparsity(weights=0.25, format="csr")
    assert got["dec.proj"] == Sparsity(weights="2:4", activations=0.5, mode="gate")


def test_globs_set_only_the_fields_that_apply():
    got = annotated(run(attention_graph(), by_name={"*": {"weights": "1:4", "activations": 0.5, "scores": 0.3}}))
    assert got["q"] == Sparsity(weights="1:4", activations=0.5)
    assert got["mm"] == Sparsity(activations=0.5)
    assert got["self_big"] == Sparsity(activations=0.5, scores=0.3)
    assert "tokens" not in got  # data movement: no field applies


def test_pass_level_format_and_mode():
    got = annotated(run(attention_graph(), by_class={"linear": 0.4, "conv": {"weights": "2:4", "format": "csc"}},
                        format="rle", mode="gate"))  # fmt: skip
    assert got["q"] == Sparsity(weights=0.4, format="rle", mode="gate")
    assert got["conv"] == Sparsity(weights="2:4", format="csc", mode="gate")


def test_second_pass_updates_and_dense_removes():
    g = run(attention_graph(), by_class={"linear": {"weights": "2:4", "format": "csr"}}, mode="gate")
    g2 = run(g, by_class={"linear": {"activations": 0.5}})
    assert annotated(g2)["q"] == Sparsity(weights="2:4", activations=0.5, format="csr", mode="gate")
    g3 = run(g2, by_class={"linear": {"weights": 0.5}})
    assert annotated(g3)["q"].format == "bitmask"  # the default format follows the new pattern
    g4 = run(g2, by_class={"linear": {"weights": "1:1", "activations": 1.0}})
    assert annotated(g4) == {} and g4["q"] == attention_graph()["q"]


def test_pass_does_not_modify_its_input():
    g = attention_graph()
    before = list(g.ops())
    run(g, by_class={"linear": "2:4"}, attention_scores=0.3)
    assert list(g.ops()) == before


@pytest.mark.parametrize(
    "options",
    [
        {"by_class": {"linear": "1:1", "conv": 1.0}},
        {"by_class": {"linear": {"weights": "4:4", "activations": 1.0}}, "format": "csr", "mode": "gate"},
        {"attention_scores": 1.0, "attention_scores_by_length": {1: 1.0}},
        {"by_name": {"*": {"weights": 1, "activations": 1.0, "scores": 1.0}}},
    ],
)
def test_density_one_is_the_dense_graph(options, os128):
    g = attention_graph()
    out = run(g, **options)
    assert list(out.ops()) == list(g.ops()) and annotated(out) == {}
    dense = sim.simulate(g, os128).summary()
    assert sim.simulate(g, os128, passes=[{"name": "sparsity", **options}]).summary() == dense


def test_composes_with_precision():
    precision = {"name": "precision", "by_class": {"linear": {"weights": "int8"}}}
    sparsity = {"name": "sparsity", "by_class": {"linear": "2:4"}}
    a = apply_passes(attention_graph(), [precision, sparsity])
    b = apply_passes(attention_graph(), [sparsity, precision])
    assert list(a.ops()) == list(b.ops())
    assert a["q"].dtypes.weights == "int8" and sparsity_of(a["q"]) == Sparsity(weights="2:4")


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"by_class": {"linaer": "2:4"}}, r"sparsity\.by_class: unknown op class 'linaer' \(did you mean 'linear'\?\)"),
        ({"by_class": {"linear": "5:4"}}, r"sparsity\.by_class\.linear\.weights: N:M ratio 5:4"),
        ({"by_class": {"linear": "0:4"}}, r"by_class\.linear\.weights: N:M ratio 0:4"),
        ({"by_class": {"linear": "1.5:4"}}, r"by_class\.linear\.weights: expected an N:M ratio"),
        ({"by_class": {"linear": 124}}, r"by_class\.linear\.weights: .*base-60"),
        ({"by_class": {"conv": 1.5}}, r"by_class\.conv\.weights: weights must be a density in \(0, 1\]"),
        ({"by_class": {"conv": {"weights": 0}}}, r"by_class\.conv\.weights: weights must be a density"),
        ({"by_class": {"conv": {"format": "zip"}}}, r"by_class\.conv\.format: unknown format 'zip'"),
        ({"by_class": {"conv": {"wieghts": 0.3}}}, r"by_class\.conv: unknown sparsity field 'wieghts'"),
        ({"by_class": {"conv": {}}}, r"by_class\.conv: expected an N:M ratio, a density or a mapping"),
        ({"by_class": {"attention": "2:4"}}, r"by_class\.attention\.weights: 'weights' does not apply to attention"),
        ({"by_class": {"norm": {"mode": "gate"}}}, r"by_class\.norm: sparsity of norm ops is not modeled"),
        ({"by_stage": {"vae": 0.5}}, r"sparsity\.by_stage: unknown stage 'vae'"),
        ({"by_name": {"*": {"scores": 2}}}, r"by_name\.\*\.scores: scores must be a density"),
        ({"attention_scores": 1.5}, r"attention_scores: expected a number in \(0, 1\]"),
        ({"attention_scores_by_axis": {"spacial": 0.3}}, r"unknown attention axis 'spacial' \(did you mean 'spatial'\?\)"),
        ({"attention_scores_by_role": {"self": 0}}, r"attention_scores_by_role\.self: expected a number in \(0, 1\]"),
        ({"attention_scores_by_length": {"x": 0.3}}, r"attention_scores_by_length: expected a positive key length"),
        ({"attention_scores_by_length": [0.3]}, r"attention_scores_by_length: expected a mapping"),
        ({"format": "zip"}, r"sparsity\.format: unknown format 'zip'"),
        ({"mode": "skipp"}, r"sparsity\.mode: unknown mode 'skipp'"),
        ({"weights": "2:4"}, r"unknown key 'weights'"),
    ],
)
def test_errors_name_the_key(options, where):
    with pytest.raises(InputError, match=where):
        run(attention_graph(), **options)


@settings(max_examples=40)
@given(
    weights=st.one_of(st.sampled_from(["1:1", "1:4", "2:4", "3:4", "8:8"]), st.floats(0.01, 1.0)),
    activations=st.sampled_from([0.25, 0.5, 1.0]),
)
def test_annotated_iff_not_dense(weights, activations):
    out = run(attention_graph(), by_class={"linear": {"weights": weights, "activations": activations}})
    expected = Sparsity(weights=weights, activations=activations)
    got = sparsity_of(out["q"])
    assert got == (None if expected.is_dense else expected)
    if got is not None:
        assert 0 < got.work_density < 1 and got.weight_density == expected.weight_density
