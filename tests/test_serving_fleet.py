"""Heterogeneous fleets: groups of instances with their own step costs, dispatch to the fastest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.serving.config import ArrivalSpec, PromptSpec, validate
from sim.serving.engine import EngineConfig, run
from sim.serving.runner import run_point
from sim.serving.service import StepCosts
from sim.serving.stream import Stream, arrival_times, prompt_embeddings
from workloads.errors import InputError

STEPS = 20


def costs_at(step_s: float):
    def costs(batch: int) -> StepCosts:
        scale = 1 + 0.6 * (batch - 1)
        return StepCosts(0.05 * scale, np.full(STEPS, step_s * scale), 0.2 * scale)

    return costs


SLOW, FAST = costs_at(0.2), costs_at(0.1)


def stream(n: int, rate: float) -> Stream:
    rng = np.random.default_rng(7)
    return Stream(arrival_times(ArrivalSpec(rate=rate), n, rng), *prompt_embeddings(PromptSpec(), n, rng))


def config(groups: tuple[int, ...], **kw) -> EngineConfig:
    base = dict(batching="none", max_batch=1, scheduling="fifo", lookup_s=0.0, transfer_s=0.0, warmup=0)
    return EngineConfig(instances=sum(groups), groups=groups if len(groups) > 1 else (), **(base | kw))


@pytest.mark.parametrize("batching", ["none", "static", "continuous"])
def test_idle_fast_instances_take_the_work_at_light_load(batching):
    out = run(stream(400, 0.05), None, [SLOW, FAST], config((2, 2), batching=batching, max_batch=2))
    # the slow pair works only while both fast instances are busy: rare at 11% load
    assert 0 <= out.busy_s[:2].sum() < 0.03 * out.busy_s[2:].sum()
    reversed_ = run(stream(400, 0.05), None, [FAST, SLOW], config((2, 2), batching=batching, max_batch=2))
    assert np.array_equal(reversed_.finish_s, out.finish_s)  # the fastest wins, not the first group


def test_mixed_fleet_lies_between_the_pure_fleets_under_load():
    s = stream(4000, 2.0)  # ~90% load on two slow + two fast instances
    mean = {
        name: run(s, None, c, config(g)).latency_s.mean()
        for name, c, g in (("slow", SLOW, (4,)), ("mixed", [SLOW, FAST], (2, 2)), ("fast", FAST, (4,)))
    }
    assert mean["fast"] < mean["mixed"] < mean["slow"]
    out = run(s, None, [SLOW, FAST], config((2, 2)))
    assert out.busy_s[:2].sum() > 0.5 * out.busy_s[2:].sum()  # under load the slow pair works too


def test_one_group_list_is_the_single_arch_fleet():
    s = stream(1500, 1.0)
    for batching in ("none", "static", "continuous"):
        single = run(s, None, SLOW, config((3,), batching=batching, max_batch=3))
        listed = run(s, None, [SLOW], config((3,), batching=batching, max_batch=3))
        assert np.array_equal(single.finish_s, listed.finish_s)


def test_groups_must_match_the_cost_functions():
    with pytest.raises(ValueError, match="one step-cost function per group"):
        run(stream(10, 1.0), None, [SLOW], config((1, 1)))


SMALL = {
    "name": "fleet",
    "workload": {"model": "sd15", "options": {"resolution": 256, "steps": 30, "cfg": True}},
    "stream": {"requests": 1500, "seed": 5, "arrivals": {"rate": 3.0}},
    "cache": {"capacity": 0},
    "metrics": {"price_per_hour": 2.0},
}


def test_yaml_groups_and_the_old_spelling_give_the_same_metrics():
    old = validate(SMALL | {"fleet": {"arch": "h100", "instances": 2}}, "t:", Path("."))
    new = validate(SMALL | {"fleet": {"groups": [{"arch": "h100", "instances": 2}]}}, "t:", Path("."))
    assert run_point(old).metrics == run_point(new).metrics


def test_mixed_yaml_fleet_prices_each_group():
    fleet = {"groups": [{"arch": "a100", "instances": 1, "price_per_hour": 1.0}, {"arch": "h100", "instances": 1}]}
    m = run_point(validate(SMALL | {"fleet": fleet}, "t:", Path("."))).metrics
    fast, slow = sorted(m["service_s_batch1_by_group"])
    assert m["service_s_batch1_by_group"][1] == fast  # the h100 group is the faster one
    assert m["cost_per_1k_provisioned"] == pytest.approx(
        3.0 * (m["requests"] / m["throughput_rps"]) / 3600 / 1500 * 1000
    )


@pytest.mark.parametrize(
    "fleet, where",
    [
        ({"arch": "h100", "groups": [{"arch": "a100"}]}, "fleet.arch"),
        ({"groups": []}, "fleet.groups"),
        ({"groups": [{"arch": "a100", "instance": 2}]}, r"fleet.groups\[0\]"),
        ({"groups": [{"arch": "a100"}, {"arch": 5}]}, r"fleet.groups\[1\].arch"),
        ({"groups": [{"arch": "a100"}, {"arch": "b200x"}]}, r"fleet.groups\[1\].arch"),
    ],
)
def test_bad_groups_are_input_errors(fleet, where):
    with pytest.raises(InputError, match=where) as info:
        run_point(validate(SMALL | {"fleet": fleet}, "f.yaml:", Path(".")), where="f.yaml:")
    assert "f.yaml" in str(info.value)
