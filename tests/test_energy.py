"""Energy tables: load, cite, follow their documented rule; energy = sum(actions x table) + leakage x time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from sim.energy import ACTIONS, COMPONENTS, derive, energy_by_action, load_table, tables
from sim.energy.table import PRICED_FIELDS
from workloads.errors import InputError

NAMES = ("tpu_v1_28nm", "os128_16nm", "edge_7nm", "a100_7nm", "h100_4nm", "h200_4nm", "tpu_v4_7nm")


def test_every_named_table_ships():
    assert set(NAMES) <= set(tables())


@pytest.mark.parametrize("name", sorted(tables()))
def test_table_loads_cites_every_entry_and_follows_its_rule(name):
    table = load_table(name)
    assert set(PRICED_FIELDS) <= set(table.sources)
    assert all(table.sources[k].strip() for k in PRICED_FIELDS)
    rule = derive.derive(table.technology_nm, table.mac_pj, int_vector=name.startswith(("tpu_v1", "edge")))
    assert dict(table.mac_pj) == rule["mac_pj"]
    for key in ("sram_read_pj_per_byte", "sram_write_pj_per_byte", "l2_read_pj_per_byte", "l2_write_pj_per_byte"):
        assert getattr(table, key) == rule[key], key
    assert set(table.vector_pj_per_op.values()) == {rule["vector_pj_per_op"]}


@pytest.mark.parametrize("name", sorted(tables()))
def test_precision_and_hierarchy_order(name):
    t = load_table(name)
    assert t.mac_pj["int8"] < t.mac_pj["fp16"] < t.mac_pj["fp32"]
    if "bf16" in t.mac_pj:
        assert t.mac_pj["bf16"] < t.mac_pj["fp16"]
    assert t.sram_read_pj_per_byte < t.l2_read_pj_per_byte < t.dram_read_pj_per_byte


def test_energy_is_actions_times_table_plus_leakage_times_time():
    t = load_table("h100_4nm", overrides={"leakage_w": 70.0})
    actions = {
        "mac_fp16": np.array([1e9, 0.0, 3e6]),
        "mac_fp8": np.array([0.0, 2e9, 0.0]),
        "sram_read_bytes": np.array([4e6, 1e3, 0.0]),
        "sram_write_bytes": np.array([1e6, 0.0, 7.0]),
        "l2_read_bytes": np.array([2e6, 5e5, 1.0]),
        "l2_write_bytes": np.array([0.0, 1e5, 2.0]),
        "dram_read_bytes": np.array([3e6, 0.0, 9e6]),
        "dram_write_bytes": np.array([1e6, 2e6, 0.0]),
        "vector_norm_ops": np.array([0.0, 0.0, 5e6]),
        "vector_softmax_ops": np.array([1e5, 0.0, 0.0]),
        "launches": np.array([1.0, 2.0, 3.0]),
    }
    time_s = np.array([1e-3, 2e-3, 5e-4])
    e = energy_by_action(actions, time_s, t)
    pj = 1e-12
    mac = (actions["mac_fp16"] * t.mac_pj["fp16"] + actions["mac_fp8"] * t.mac_pj["fp8"]) * pj
    sram = (actions["sram_read_bytes"] * t.sram_read_pj_per_byte + actions["sram_write_bytes"] * t.sram_write_pj_per_byte) * pj
    l2 = (actions["l2_read_bytes"] * t.l2_read_pj_per_byte + actions["l2_write_bytes"] * t.l2_write_pj_per_byte) * pj
    dram = (actions["dram_read_bytes"] * t.dram_read_pj_per_byte + actions["dram_write_bytes"] * t.dram_write_pj_per_byte) * pj
    vector = (actions["vector_norm_ops"] * t.vector_pj_per_op["norm"]
              + actions["vector_softmax_ops"] * t.vector_pj_per_op["softmax"]) * pj
    launch = actions["launches"] * t.launch_pj * pj
    leakage = time_s * 70.0
    expected = {"mac": mac, "sram": sram, "l2": l2, "dram": dram, "vector": vector, "launch": launch, "leakage": leakage}
    for key, value in expected.items():
        np.testing.assert_allclose(e[key], value, rtol=1e-12, atol=0, err_msg=key)
    np.testing.assert_allclose(e["total"], sum(expected.values()), rtol=1e-12)
    assert set(e) == {*COMPONENTS, "total"}


def test_missing_columns_are_zero_and_unpriced_dtype_is_an_error():
    t = load_table("tpu_v1_28nm")
    e = energy_by_action({}, np.zeros(4), t)
    assert all(np.array_equal(v, np.zeros(4)) for v in e.values())
    with pytest.raises(InputError, match=r"tpu_v1_28nm.*'int4'|'int4'.*tpu_v1_28nm"):
        energy_by_action({"mac_int4": np.ones(2)}, np.ones(2), t)
    with pytest.raises(InputError, match="unknown action column 'mac_count'"):
        energy_by_action({"mac_count": np.ones(2)}, np.ones(2), t)


def test_overrides_partial_and_nested():
    t = load_table("h100_4nm", overrides={"dram_read_pj_per_byte": 25, "mac_pj": {"int4": 0.01}})
    assert t.dram_read_pj_per_byte == 25.0
    assert t.mac_pj["int4"] == 0.01 and t.mac_pj["fp8"] == load_table("h100_4nm").mac_pj["fp8"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"sram_read_pj_per_byte": math.nan}, "sram_read_pj_per_byte"),
        ({"leakage_w": -1.0}, "leakage_w"),
        ({"dram_raed_pj_per_byte": 1.0}, "dram_raed_pj_per_byte"),
        ({"mac_pj": {"fp12": 1.0}}, "fp12"),
        ({"vector_pj_per_op": {"norm": math.inf}}, "vector_pj_per_op.norm"),
        ({"mac_pj": {"int8": "cheap"}}, "mac_pj.int8"),
    ],
)
def test_bad_values_are_input_errors_naming_file_and_key(overrides, key):
    with pytest.raises(InputError) as err:
        load_table("a100_7nm", overrides=overrides)
    message = str(err.value)
    assert key in message and "a100_7nm.yaml" in message and "\n" not in message


def test_missing_key_and_missing_citation(tmp_path):
    data = yaml.safe_load(tables()["edge_7nm"].read_text())
    del data["l2_write_pj_per_byte"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="bad.yaml.*missing key 'l2_write_pj_per_byte'"):
        load_table(path)
    with pytest.raises(InputError, match="missing citation for 'launch_pj'"):
        load_table("edge_7nm", overrides={"sources": {"launch_pj": " "}})
    with pytest.raises(InputError, match="unknown energy table 'h100'.*h100_4nm"):
        load_table("h100")


def test_every_action_has_a_price_in_a_full_table():
    t = load_table("h100_4nm", overrides={"mac_pj": {"int4": 0.01}})
    e = energy_by_action({a: np.ones(1) for a in ACTIONS}, np.ones(1), t)
    assert e["total"][0] > 0


def test_vectorized_over_a_thousand_entries():
    """One call prices every entry of every column (its speed is measured by the benchmarks,
    not asserted here: timings on a shared machine are not deterministic)."""
    t = load_table("a100_7nm")
    rng = np.random.default_rng(0)
    actions = {a: rng.random(1000) for a in ACTIONS if a not in ("mac_fp8",)}
    time_s = rng.random(1000)
    out = energy_by_action(actions, time_s, t)
    assert all(v.shape == (1000,) and np.isfinite(v).all() for v in out.values())
    one = energy_by_action({a: v[:1] for a, v in actions.items()}, time_s[:1], t)
    assert out["total"][0] == pytest.approx(one["total"][0], rel=1e-12)
