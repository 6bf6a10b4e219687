"""`rocketc ablate`: every variant really changes the model (not a flag that does nothing)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from rocketc.cli import _load_with_overrides
from rocketc.compiler.passes.insert_stop_gradients import stop_gradient_edges
from rocketc.runtime.ablate import VARIANTS, ablate, variant_compiled

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture(scope="module")
def quickstart():
    return _load_with_overrides(None, [])


@pytest.fixture(scope="module")
def result(quickstart, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    return ablate(quickstart, seeds=2, epochs=1, out_dir=out, console=QUIET), out


def by_name(result):
    return {row["variant"]: row for row in result[0]["variants"]}


def test_table_has_every_variant_with_stats_over_seeds(result):
    rows = by_name(result)
    assert list(rows) == [v.name for v in VARIANTS]
    for name, row in rows.items():
        assert len(row["runs"]) == 2
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        if name != "booster_alone":
            assert row["light"]["min"] <= row["light"]["median"] <= row["light"]["max"]
        assert row["seconds"]["median"] > 0
    out = result[1]
    assert (
        json.loads((out / "ablation.json").read_text())["variants"][0]["variant"] == "light_alone"
    )
    md = (out / "ablation.md").read_text()
    assert "| rocket_no_sharing |" in md and "hint→booster" in md


def test_variants_differ_in_what_they_train(result, quickstart):
    rows = by_name(result)
    counts = quickstart.param_counts()
    assert rows["light_alone"]["trained_params"] == counts["light_net"]
    assert rows["booster_alone"]["trained_params"] == counts["booster_net"]
    assert rows["rocket"]["trained_params"] == counts["total"]
    # Without sharing each net owns a copy of the shared layers: more weights to train.
    assert rows["rocket_no_sharing"]["trained_params"] == counts["total"] + counts["shared"]
    assert rows["kd"]["trained_params"] == counts["light_net"] + counts["booster_net"]
    assert "booster" not in rows["light_alone"] and "light" not in rows["booster_alone"]


def test_gradient_block_is_measured_not_assumed(result):
    rows = by_name(result)
    assert rows["rocket"]["hint_reaches_booster"] is False
    assert rows["rocket_no_block"]["hint_reaches_booster"] is True
    assert rows["rocket_no_sharing"]["hint_reaches_booster"] is False
    assert rows["light_alone"]["hint_reaches_booster"] is None


def test_variant_specs(quickstart):
    variants = {v.name: v for v in VARIANTS}
    rocket = variant_compiled(quickstart, variants["rocket"], None)
    no_block = variant_compiled(quickstart, variants["rocket_no_block"], None)
    assert stop_gradient_edges(rocket.graph) == [("booster_logits", "loss:hint")]
    assert stop_gradient_edges(no_block.graph) == []
    unshared = variant_compiled(quickstart, variants["rocket_no_sharing"], None)
    assert unshared.layers("shared") == []
    assert {"embed_light", "embed_booster"} <= set(unshared.layers())
    assert unshared.param_counts()["light_net"] == quickstart.param_counts()["light_net"]
    probs = variant_compiled(quickstart, variants["rocket_hint_probs"], None)
    assert probs.spec.loss.hint.on == "probs" and rocket.spec.loss.hint.on == "logits"
    kd = variant_compiled(quickstart, variants["rocket_kd"], None)
    assert kd.spec.loss.kd.weight > 0 and kd.spec.loss.hint.weight > 0
