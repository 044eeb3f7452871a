"""Dense results of every zoo model x {os128, tpu_v1, edge} x {fused, unfused} are pinned.

The snapshot (tests/data/dense_snapshot.json, from tests/make_snapshot.py) was written before
the Core v2 refactor; any change to it must be intentional and named in the commit and README.
"""

import json

import pytest
from make_snapshot import ATTENTION, FIELDS, PATH, PRESETS, models, snapshot_row

SNAPSHOT = json.loads(PATH.read_text())


SNAPSHOT_MODELS = sorted({k.split("|")[0] for k in SNAPSHOT})


@pytest.mark.parametrize("model", SNAPSHOT_MODELS)
def test_dense_results_unchanged(model):
    for preset in PRESETS:
        for attention in ATTENTION:
            want = SNAPSHOT[f"{model}|{preset}|{attention}"]
            got = snapshot_row(model, preset, attention)
            for f in FIELDS:
                assert got[f] == pytest.approx(want[f], rel=1e-12, abs=1e-9), (model, preset, attention, f)


def test_snapshot_models_still_exist():
    """Models added after the snapshot are not in it; none of those in it may disappear."""
    assert set(SNAPSHOT_MODELS) <= set(models())
