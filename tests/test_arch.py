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
