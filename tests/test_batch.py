"""The design-space fast path: a batch of archs gives, bit for bit, what one `simulate` gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import workloads
from sim.arch import with_overrides
from sim.cost import group_max, group_sum, hardware_record, hardware_records, weighted_sum
from sim.experiment import load_experiment, sweep
from sim.experiment.cli import main
from workloads.errors import InputError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@pytest.fixture(scope="module")
def unet() -> workloads.OpGraph:
    return workloads.build("sd15_unet", resolution=256)


def same(a: dict, b: dict) -> bool:
    """Equal summaries, every float to the bit (JSON keeps the shortest exact repr)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_simulate_many_is_simulate_bit_for_bit_across_presets(unet):
    """Mixed presets in one call (other native dtypes, graph capture, energy tables and GPU
    presets split into batches) and overrides of every kind of field."""
    archs = [
        sim.load_arch("os128"), sim.load_arch("os128", {"dram": {"bandwidth_gbs": 77.5}, "frequency_mhz": 733}),
        sim.load_arch("os128", {"array": {"rows": 64, "dataflow": "ws"}, "sram": {"filter_kb": 2048}}),
        sim.load_arch("edge"), sim.load_arch("tpu_v1"), sim.load_arch("h200"), sim.load_arch("a100"),
        sim.load_arch("os128", {"host": {"graph_capture": True}, "attention": {"tile_q": 64}}),
    ]  # fmt: skip
    for attention in ("fused", "unfused"):
        many = sim.simulate_many(unet, archs, attention=attention)
        assert len(many) == len(archs)
        for arch, summary in zip(archs, many):
            assert same(summary, sim.simulate(unet, arch, attention=attention).summary()), (arch.name, attention)


def test_simulate_many_with_passes_and_runtime(unet):
    archs = [sim.load_arch("h200"), sim.load_arch("h200", {"dram": {"bandwidth_gbs": 3000}})]
    passes = [{"name": "sparsity", "by_class": {"linear": "2:4"}}, {"name": "precision", "by_class": {"linear": "fp8"}}]
    for options in ({"passes": passes}, {"runtime": "cuda_graph"}, {"fuse_elementwise": True}):
        many = sim.simulate_many(unet, archs, **options)
        assert all(same(m, sim.simulate(unet, a, **options).summary()) for m, a in zip(many, archs)), options


def test_simulate_many_checks_its_arguments(unet):
    for bad in (sim.load_arch("os128"), "os128"):
        with pytest.raises(InputError, match="list of Arch"):
            sim.simulate_many(unet, bad)
    with pytest.raises(InputError, match="arch must be an Arch"):
        sim.simulate_many(unet, ["os128"])


@SETTINGS
@given(
    bandwidth=st.floats(1.0, 1e5), lanes=st.integers(1, 4096), capture=st.booleans(),
    fp8=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
)
def test_hardware_records_equal_one_record_per_arch(bandwidth, lanes, capture, fp8):
    base = sim.load_arch("os128")
    over = {"dram": {"bandwidth_gbs": bandwidth}, "vector": {"lanes": lanes}, "host": {"graph_capture": capture},
            "array": {"throughput": {"fp8": fp8}}}  # fmt: skip
    archs = [with_overrides(base, over, parts={}), base]
    paths = [("dram", "bandwidth_gbs"), ("vector", "lanes"), ("host", "graph_capture"), ("array", "throughput", "fp8")]
    records = hardware_records(archs, base, paths)
    assert all(records[i].tobytes() == hardware_record(a).tobytes() for i, a in enumerate(archs))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["dram", "vector", "frequency_mhz"]), st.integers(1, 4096), min_size=1))
def test_memoized_overrides_build_the_same_arch(values):
    base = sim.load_arch("os128")
    over = {k: ({"bandwidth_gbs": v} if k == "dram" else {"lanes": v} if k == "vector" else v) for k, v in values.items()}
    parts: dict = {}
    first, again = with_overrides(base, over, parts=parts), with_overrides(base, over, parts=parts)
    plain = sim.load_arch(base, over)
    assert first == plain == again and repr(first) == repr(plain)
    assert hardware_record(first).tobytes() == hardware_record(plain).tobytes()
    assert not hasattr(first, "_hardware_record") or first is not base


@SETTINGS
@given(st.lists(st.integers(-1, 5), min_size=1, max_size=60), st.integers(1, 4))
def test_group_reductions_match_numpy(groups, configs):
    rng = np.random.default_rng(len(groups) * configs)
    group = np.array(groups, dtype=np.int64)
    source = rng.integers(0, 7, len(group)).astype(np.int64)
    values = rng.normal(size=(2, configs, 7))
    sums = group_sum(values, source, group, 6)
    keep = group >= 0
    for f in range(2):
        for b in range(configs):
            want = np.bincount(group[keep], weights=values[f, b, source[keep]], minlength=6)
            assert np.array_equal(sums[f, b], want)  # the same order of additions: the same bits
    top = group_max(np.abs(values[0]), source, group, 6)
    for b in range(configs):
        for g in range(6):
            rows = source[group == g]
            assert top[b, g] == (np.abs(values[0, b, rows]).max() if len(rows) else 0.0)
    weights = rng.integers(0, 3, size=(3, 7)).astype(float)
    assert np.allclose(weighted_sum(values[0], weights), values[0] @ weights.T)


POOL = """\
name: batch
workload: {model: sd15_unet, options: {resolution: 256}}
arch: os128
sweep:
  arch.dram.bandwidth_gbs: [100, 900]
  arch.array.rows: [64, 256]
  arch.sram.ofmap_kb: [64, 256]
"""


def test_sweep_rows_are_simulate_numbers_and_infeasible_points_are_rows(tmp_path, capsys):
    """Through the sweep runner (serial and 2 processes): every feasible point has the numbers of
    `simulate` on its arch; a 256x128 array whose output tile does not fit 64 KiB is a row marked
    infeasible with the reason, not an error that stops the sweep."""
    path = tmp_path / "b.yaml"
    path.write_text(POOL)
    graph = workloads.build("sd15_unet", resolution=256)
    texts = []
    for jobs in ("1", "2"):
        assert main(["run", str(path), "--out", str(tmp_path / jobs), "--jobs", jobs]) == 0
        texts.append((tmp_path / jobs / "sweep.csv").read_text())
        out = capsys.readouterr().out
        assert "2 points are infeasible" in out and "cannot hold a double-buffered 256x128" in out
    assert texts[0] == texts[1]
    exp = load_experiment(path)
    frame = sweep.run_sweep(exp, str(path), tmp_path / "1" / "sweep.sqlite")
    bad = frame["infeasible"].notna()
    assert bad.sum() == 2 and frame.loc[bad, "latency_s"].isna().all()
    assert set(frame.loc[bad, "arch.array.rows"]) == {256} and set(frame.loc[bad, "arch.sram.ofmap_kb"]) == {64}
    for _, row in frame[~bad].iterrows():
        over = {"dram": {"bandwidth_gbs": row["arch.dram.bandwidth_gbs"]}, "array": {"rows": row["arch.array.rows"]},
                "sram": {"ofmap_kb": row["arch.sram.ofmap_kb"]}}  # fmt: skip
        want = sim.simulate(graph, sim.load_arch("os128", over)).summary()
        assert row["latency_s"] == want["latency_s"] and row["energy_j"] == want["energy_j"]
        assert json.loads(row["by_step"]) == want["by_step"]


def test_infeasible_points_are_never_feasible_in_a_search(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(POOL + "search: {objectives: [latency_s, area_mm2]}\n")
    frame = sweep.run_sweep(load_experiment(path), str(path), tmp_path / "s.sqlite")
    bad = frame["infeasible"].notna()
    assert bad.any() and not frame.loc[bad, "feasible"].any() and not frame.loc[bad, "pareto"].any()
    assert frame.loc[~bad, "pareto"].any()


def test_keys_without_building_archs_match_resolved_keys(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text(POOL)
    exp = load_experiment(path)
    grid, resolver = sweep.validate(exp, str(path))
    feasible = [p for p in grid if not (p["arch.array.rows"] == 256 and p["arch.sram.ofmap_kb"] == 64)]
    assert all(resolver.keyed(p).key == resolver.resolve(p).key for p in feasible)
    assert len({resolver.keyed(p).key for p in grid}) == len(grid)
    gpu = load_experiment(path)
    object.__setattr__(gpu, "runtime", "eager")  # the runtime is part of the workload's key
    other = sweep.Resolver(gpu, str(path))
    assert other.keyed(grid.point(0)).key != resolver.keyed(grid.point(0)).key


@pytest.mark.parametrize("mode", ["random", "optuna"])
def test_sampled_infeasible_archs_do_not_stop_a_search(tmp_path, mode):
    """Samples whose arrays do not fit their SRAMs are counted as infeasible (random: rows with
    the reason; optuna: pruned trials), and the search runs to its end."""
    if mode == "optuna":
        pytest.importorskip("optuna")
    path = tmp_path / "r.yaml"
    path.write_text(POOL.replace("sweep:", f"search: {{mode: {mode}, samples: 12, seed: 1, objectives: [latency_s, area_mm2]}}\nsweep:"))
    frame = sweep.run_sweep(load_experiment(path), str(path), tmp_path / "r.sqlite")
    bad = (frame["arch.array.rows"] == 256) & (frame["arch.sram.ofmap_kb"] == 64)
    if mode == "random":
        assert len(frame) == 12 and bad.any() and frame.loc[bad, "infeasible"].notna().all()
        assert not frame.loc[bad, "feasible"].any()
    else:
        assert 1 <= len(frame) <= 12 and not bad.any() and frame["latency_s"].notna().all()


def test_bundle_arch_keys_reach_the_batch_records(tmp_path):
    """Arch keys set only inside a design bundle are read per point like swept arch keys."""
    path = tmp_path / "d.yaml"
    path.write_text("""\
name: bundles
workload: {model: sd15_unet, options: {resolution: 256}}
arch: os128
sweep:
  design.size: {small: {arch.array.rows: 64}, big: {arch.array.rows: 128, arch.dram.bandwidth_gbs: 900}}
  arch.frequency_mhz: [500, 1000]
""")
    frame = sweep.run_sweep(load_experiment(path), str(path), tmp_path / "d.sqlite")
    graph = workloads.build("sd15_unet", resolution=256)
    settings = {"small": {"array": {"rows": 64}}, "big": {"array": {"rows": 128}, "dram": {"bandwidth_gbs": 900}}}
    for _, row in frame.iterrows():
        arch = sim.load_arch("os128", {**settings[row["design.size"]], "frequency_mhz": row["arch.frequency_mhz"]})
        assert row["latency_s"] == sim.simulate(graph, arch).summary()["latency_s"]
    assert frame["latency_s"].nunique() == 4


@pytest.mark.parametrize("preset", ["os128", "h200", "edge"])
@pytest.mark.parametrize("options", [{}, {"attention": "unfused"}, {"runtime": "eager"},
                                     {"passes": [{"name": "precision", "by_class": {"linear": "int8"}}]}])
def test_summary_totals_equal_the_per_op_columns(unet, preset, options):
    """Summaries add actions over unique kernels, `ops` per op: the two must agree."""
    arch = sim.load_arch(preset)
    if "runtime" in options and not arch.gpu.available:
        return
    r = sim.simulate(unet, arch, **options)
    s, ops = r.summary(), r.ops
    for key, column in (("latency_s", "time_s"), ("cycles", "cycles"), ("energy_j", "energy_j"),
                        ("compute_cycles", "compute_cycles"), ("launch_cycles", "launch_cycles")):
        assert s[key] == pytest.approx(ops[column].sum(), rel=1e-9), key
    assert s["dram_bytes"] == pytest.approx((ops["dram_read_bytes"] + ops["dram_write_bytes"]).sum(), rel=1e-9)
    for component, joules in s["energy_by_component"].items():
        assert joules == pytest.approx(ops[f"energy_{component}_j"].sum(), rel=1e-9, abs=1e-15), component
    by_class = ops.groupby("op_class")["time_s"].sum()
    assert s["by_class"] == pytest.approx(by_class.to_dict(), rel=1e-9)
    assert sum(s["by_step"].values()) == pytest.approx(s["latency_s"], rel=1e-9)
