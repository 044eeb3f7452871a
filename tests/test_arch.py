"""Hardware configs: presets load, and every kind of bad input gets one clear error."""

from __future__ import annotations

import pytest

import sim
from workloads.errors import InputError

GOOD = {
    "name": "x",
    "frequency_mhz": 1000,
    "word_bytes": 2,
    "array": {"rows": 32, "cols": 32, "dataflow": "ws"},
    "sram": {"ifmap_kb": 64, "filter_kb": 64, "ofmap_kb": 64},
    "dram": {"bandwidth_gbs": 100},
    "vector": {"lanes": 32},
}


def with_(path: str, value):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    *parents, key = path.split(".")
    node = data
    for p in parents:
        node = node[p]
    node[key] = value
    return data


@pytest.mark.parametrize("name", sorted(sim.presets()))
def test_presets_load_and_cite_sources(name):
    arch = sim.load_arch(name)
    assert arch.name == name
    assert arch.source and arch.description
    assert arch.peak_macs_per_cycle >= 32 * 32


def test_presets_are_the_documented_three():
    assert {"tpu_v1", "os128", "edge"} <= set(sim.presets())
    assert sim.load_arch("tpu_v1").array.rows == 256 and sim.load_arch("tpu_v1").array.dataflow == "ws"
    assert sim.load_arch("os128").array.dataflow == "os"


def test_overrides_merge_nested_keys():
    arch = sim.load_arch("os128", {"array": {"rows": 64}, "dram": {"bandwidth_gbs": 1000}})
    assert (arch.array.rows, arch.array.cols, arch.dram.bandwidth_gbs) == (64, 128, 1000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_("array.rowz", 4), "arch.array: unknown key 'rowz' (did you mean 'rows'?)"),
        (with_("array.rows", "many"), "arch.array.rows: expected an integer, got 'many'"),
        (with_("array.rows", 0), "arch.array.rows: must be positive, got 0"),
        (with_("dram.bandwidth_gbs", -5), "arch.dram.bandwidth_gbs: must be positive"),
        (with_("array.dataflow", "wss"), "arch.array.dataflow: unknown value 'wss' (did you mean 'ws'?)"),
        (with_("sram.filter_kb", 1), "arch.sram.filter_kb: 1 KiB per array cannot hold a double-buffered 32x32 WS"),
        (with_("array.overlap_folds", "yes"), "expected true or false"),
        (with_("vector.cycles_per_element", {"norms": 2.0}), "unknown vector op class 'norms' (did you mean 'norm'?)"),
        ({k: v for k, v in GOOD.items() if k != "dram"}, "arch.dram: missing required key"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(InputError) as info:
        sim.load_arch(data)
    assert message in str(info.value)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("array: {rows: 4\n")
    with pytest.raises(InputError, match=r"bad.yaml: malformed YAML: line \d+"):
        sim.load_arch(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(InputError, match="expected a mapping at the top level"):
        sim.load_arch(scalar)
    with pytest.raises(InputError, match="not found"):
        sim.load_arch(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="unknown arch preset 'os12' \\(did you mean 'os128'\\?\\)"):
        sim.load_arch("os12")


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: m\nfrequency_mhz: 1000\nword_bytes: 2\narray: {rows: 8, cols: 8, dataflow: xs}\n")
    with pytest.raises(InputError, match=r"mine.yaml: array.dataflow: unknown value 'xs'"):
        sim.load_arch(path)


def test_field_ranges_from_doc_metadata():
    from dataclasses import dataclass, field

    from sim.arch.schema import NUMBER_MAX, POSITIVE_FLOAT_MIN, doc, from_mapping

    @dataclass(frozen=True)
    class Unit:
        lanes: int = field(metadata=doc("lanes", min=4, max=64))
        clock: float = field(default=1.0, metadata=doc("clock"))
        spare: float = field(default=0.0, metadata=doc("spare", positive=False))

    assert from_mapping(Unit, {"lanes": 4.0, "spare": 0}, "u") == Unit(4, 1.0, 0.0)
    for data, message in [
        ({"lanes": 2}, "u.lanes: must be at least 4, got 2"),
        ({"lanes": 65}, "u.lanes: must be at most 64, got 65"),
        ({"lanes": 8, "clock": NUMBER_MAX * 2}, "u.clock: must be at most 1e+09"),
        ({"lanes": 8, "clock": POSITIVE_FLOAT_MIN / 2}, "u.clock: must be positive"),
        ({"lanes": 8, "spare": -1}, "u.spare: must not be negative"),
        ({"lanes": 8, "clock": float("nan")}, "u.clock: must be a finite number, got nan"),
        ({"lanes": True}, "u.lanes: expected an integer, got True"),
        ({"lanes": 10**5000}, "u.lanes: must be at most 64, got <integer of about 5001 digits>"),
    ]:
        with pytest.raises(InputError) as info:
            from_mapping(Unit, data, "u")
        assert message in str(info.value)


def test_messages_quote_user_input_briefly():
    from workloads.errors import short_repr

    assert len(short_repr("x" * 10**6)) <= 80 and short_repr(10**5000).startswith("<integer of about")
    laughs: list = [1]
    for _ in range(30):
        laughs = [laughs] * 10  # 10**30 elements if expanded: short_repr must not expand it
    assert len(short_repr(laughs)) <= 80
    with pytest.raises(InputError) as info:
        sim.load_arch("os128", overrides={"k" * 10**6: 1})
    assert len(str(info.value)) < 1000 and "\n" not in str(info.value)
