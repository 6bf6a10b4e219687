"""`rocketc ablate`: every variant really changes the model (not a flag that does nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from rocketc.compiler import compile_file, compile_text, embedded_spec
from rocketc.compiler.passes.insert_stop_gradients import stop_gradient_edges
from rocketc.compiler.spec import Loss
from rocketc.errors import SpecError
from rocketc.experiments.ablate import VARIANTS, ablate, variant_compiled
from rocketc.experiments.variants import overridden_sets, tuned_variant

QUICKSTART = embedded_spec("quickstart")

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture(scope="module")
def quickstart():
    return compile_file(QUICKSTART, [])


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


def test_every_row_says_what_it_sets(result):
    rows = by_name(result)
    rocket = rows["rocket"]["sets"]
    assert rocket["loss.hint.weight"] == 1.0 and rocket["loss.hint.on"] == "logits"
    assert rocket["loss.kd.weight"] == 0.0 and rocket["loss.gradient_block"] == "booster"
    assert rows["rocket_no_block"]["sets"]["loss.gradient_block"] == "none"
    assert "layers" in rows["rocket_no_sharing"]["sets"]
    assert rows["light_alone"]["sets"]["loss.booster"] == 0.0
    assert all(row["overrides"] == [] for row in rows.values())  # no --set given
    md = (result[1] / "ablation.md").read_text()
    assert "- `rocket` trains both nets jointly; sets `loss.hint.weight=1.0`, `loss.hint.on=" in md
    # A booster row's label loss is printed under the booster's name, and kd says it trains
    # its teacher first.
    booster = rows["booster_alone"]["sets"]
    assert booster["loss.booster"] == 1.0 and booster["loss.light"] == 0.0
    assert "- `booster_alone` trains the booster net alone" in md
    assert "- `kd` trains booster_alone's net first, then freezes it as the teacher" in md


def test_rows_show_the_paired_difference_to_light_alone(result):
    rows = by_name(result)
    assert "vs_light_alone" not in rows["light_alone"]
    assert "vs_light_alone" not in rows["booster_alone"]  # no light net to compare
    for name in ("kd", "rocket", "rocket_no_block", "rocket_hint_probs"):
        d = rows[name]["vs_light_alone"]
        alone = {r["seed"]: r["light"]["accuracy"] for r in rows["light_alone"]["runs"]}
        diffs = [r["light"]["accuracy"] - alone[r["seed"]] for r in rows[name]["runs"]]
        assert d["mean"] == pytest.approx(sum(diffs) / 2) and d["n"] == 2
        assert d["low"] <= d["mean"] <= d["high"]
        assert d["verdict"] in ("better", "worse", "no clear difference")
    md = (result[1] / "ablation.md").read_text()
    assert "Δ vs light alone [95% CI]" in md and "| verdict |" in md


def test_every_run_says_which_epoch_was_scored(result):
    for row in result[0]["variants"]:
        for run in row["runs"]:
            for chosen in run["epochs"].values():
                assert 1 <= chosen["selected"] <= chosen["trained"] == 1


def test_a_variant_that_replaces_a_set_says_so():
    compiled = compile_file(QUICKSTART, ["loss.kd.weight=1", "loss.hint.weight=0"])
    variants = {v.name: v for v in VARIANTS}
    rocket = variants["rocket"]
    assert overridden_sets(compiled, rocket) == [
        "--set loss.kd.weight=1",
        "--set loss.hint.weight=0",
    ]
    assert overridden_sets(compiled, variants["rocket_kd"]) == ["--set loss.hint.weight=0"]
    # A value the variant keeps is not replaced: rocket trains with the user's hint weight.
    kept = compile_file(QUICKSTART, ["loss.hint.weight=0.3", "train.epochs=2"])
    assert overridden_sets(kept, rocket) == []
    assert variant_compiled(kept, rocket, None).spec.loss.hint.weight == 0.3


def test_rocket_rows_use_the_papers_plain_hint():
    """A spec hinting z-scored probabilities at T = 2 still gets the paper's logit hint (a
    logit hint at T = 2 would not even compile)."""
    compiled = compile_file(QUICKSTART, ["loss.hint.normalize=zscore", "loss.hint.temperature=2"])
    variants = {v.name: v for v in VARIANTS}
    rocket = variant_compiled(compiled, variants["rocket"], None).spec.loss.hint
    assert (rocket.on, rocket.normalize, rocket.temperature) == ("logits", "none", 1.0)
    probs = variant_compiled(compiled, variants["rocket_hint_probs"], None).spec.loss.hint
    assert (probs.on, probs.normalize, probs.temperature) == ("probs", "none", 1.0)


def test_rocket_stays_the_papers_on_a_spec_left_to_the_defaults(repo_root):
    """A spec with no loss section trains rocketc's default, the probability hint (issue 19); its
    `rocket` row is still the paper's logit hint, and `rocket_hint_probs` is the default itself."""
    text = (repo_root / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
    start = text.index("\nloss:") + 1
    compiled = compile_text(text[:start] + text[text.index("\n\n", start) + 2 :])
    assert "loss" not in compiled.source.data and compiled.spec.loss == Loss()
    variants = {v.name: v for v in VARIANTS}
    rocket = variant_compiled(compiled, variants["rocket"], None).spec.loss
    assert rocket == Loss.model_validate({"hint": {"on": "logits"}})
    assert (rocket.hint.on, rocket.hint.weight, rocket.gradient_block) == ("logits", 1.0, "booster")
    probs = variant_compiled(compiled, variants["rocket_hint_probs"], None).spec.loss
    assert probs == compiled.spec.loss


def test_paper_rows_drop_a_tuned_specs_warm_ups():
    """A spec shipping a tuned recipe (warmed-up hint and KD, as ctr_movielens does) still gets
    the paper's rows: hint and KD from the first step; the warm-ups belong to its tuned row."""
    warm = ["loss.hint.warmup_epochs=2", "loss.kd.weight=0.5", "loss.kd.warmup_epochs=1"]
    compiled = compile_file(QUICKSTART, ["train.epochs=4", *warm])
    variants = {v.name: v for v in VARIANTS}
    for name in ("rocket", "rocket_no_block", "rocket_hint_probs", "rocket_kd", "kd"):
        loss = variant_compiled(compiled, variants[name], None).spec.loss
        assert loss.hint.warmup_epochs == 0 or not loss.hint.weight, name
        assert loss.kd.warmup_epochs == 0 or not loss.kd.weight, name
    assert variant_compiled(compiled, variants["rocket_kd"], None).spec.loss.kd.weight == 0.5


def test_cli_prints_the_keys_and_warns_about_a_replaced_set(tmp_path):
    from typer.testing import CliRunner

    from rocketc.cli import app

    spec = Path(compile_file(QUICKSTART, []).file)
    args = ["ablate", str(spec), "--variant", "rocket", "--seeds", "1", "--epochs", "1"]
    args += ["--set", "loss.kd.weight=1", "--set", "loss.hint.weight=0", "-o", str(tmp_path)]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    assert "rocket trains both nets jointly; sets loss.hint.weight=1.0 loss.hint.on=logits " in (
        run.stderr
    )
    assert " loss.kd.weight=0.0 loss.gradient_block=booster" in run.stderr
    assert "warning: rocket replaces your --set loss.kd.weight=1" in run.stderr
    rows = json.loads((tmp_path / "ablation.json").read_text())["variants"]
    assert [r["variant"] for r in rows] == ["light_alone", "rocket"]  # the Δ's baseline added
    row = rows[1]
    assert row["overrides"] == ["--set loss.kd.weight=1", "--set loss.hint.weight=0"]
    assert "**replaces your `--set loss.kd.weight=1`**" in (tmp_path / "ablation.md").read_text()


def test_a_tuned_recipe_is_one_more_row(quickstart, tmp_path, spec_text, edit):
    recipe = tmp_path / "best.yaml"
    text = edit(
        spec_text("quickstart"),
        "hint: {weight: 1.0, on: probs, reduction: mean}",
        "hint: {weight: 0.3, on: logits, reduction: sum}",
    )
    recipe.write_text(edit(text, "gradient_block: booster", "gradient_block: none"))
    out = ablate(
        quickstart,
        seeds=1,
        epochs=1,
        out_dir=tmp_path / "out",
        variants=["light_alone"],
        console=QUIET,
        recipe=recipe,
    )
    rows = {row["variant"]: row for row in out["variants"]}
    assert list(rows) == ["light_alone", "tuned"]
    tuned = rows["tuned"]
    assert (
        tuned["sets"]["loss.hint.weight"] == 0.3 and tuned["sets"]["loss.gradient_block"] == "none"
    )
    assert tuned["hint_reaches_booster"] is True  # gradient_block none, measured
    assert "light" in tuned and "booster" in tuned
    compiled = variant_compiled(quickstart, tuned_variant(recipe), None)
    assert compiled.spec.loss.hint.reduction == "sum"


def test_a_broken_recipe_is_reported_at_its_own_line(tmp_path, spec_text, edit):
    recipe = tmp_path / "best.yaml"
    recipe.write_text(edit(spec_text("quickstart"), "kd: {weight: 0.0}", "kd: {weight: -1}"))
    with pytest.raises(SpecError, match=rf"^{recipe}:\d+:\d+: loss.kd.weight"):
        tuned_variant(recipe)


def test_a_new_teaching_term_is_off_in_light_alone_and_audited(tmp_path):
    """The loss-term registry is the one source: a toy teaching term, registered here and
    listed nowhere else, is audited like the hint, switched off in the light-alone row (and
    tune's baseline) through its own `off` keys, and searched by tune through its tunables."""
    from rocketc.compiler.losses import LOSS_KINDS, LossKind, Term, Tunable, loss_term, spec_terms
    from rocketc.compiler.losses.logits import Hint, head_read
    from rocketc.experiments.tune.runs import light_alone_compiled
    from rocketc.experiments.tune.space import default_space
    from rocketc.train.audit import run_audit

    class Toy(LossKind):
        name, column, teaches = "toy_teacher", "both", True
        off = {"description": "toy off"}  # any spec key will do for a toy

        def terms(self, spec):
            if spec.description != "toy on":
                return []
            reads = (head_read(spec, "light"), head_read(spec, "booster", teacher=True))
            return [Term(self.name, self, 0.5, 0, ("description",), reads)]

        def expression(self, term, spec, names):
            return f"F.l1_loss({names['light']}, {names['booster']})"

        def per_example(self, term, spec, names):
            return f"({names['light']} - {names['booster']}).abs().mean(dim=1)"

        def label(self, term, spec, node):
            return "L1 of logits"

        reaches = Hint.reaches

        def tunables(self, spec, epochs):
            return [Tunable("description", "choice", choices=("toy on", "toy off"))]

    loss_term(Toy)
    try:
        compiled = compile_file(QUICKSTART, ["description=toy on"])
        assert "toy_teacher" in [t.name for t in spec_terms(compiled.spec)]
        audit = run_audit(compiled)
        assert audit.ok and "toy_teacher" in audit.matrix()
        alone = {v.name: v for v in VARIANTS}["light_alone"]
        for spec in (
            variant_compiled(compiled, alone, None).spec,
            light_alone_compiled(compiled).spec,
        ):
            assert [t.name for t in spec_terms(spec)] == ["light"]
        assert alone.values(compiled.source.data)["description"] == "toy off"
        searched = [d.path for d in default_space(compiled.spec, compiled.spec.train.epochs)]
        assert searched[-1] == "description" and "loss.hint.weight" in searched  # tune's space
    finally:
        del LOSS_KINDS["toy_teacher"]


def test_headroom_is_the_boosters_paired_lead_over_the_light_net_alone():
    from rocketc.experiments.ablate import headroom, headroom_words, render_markdown

    def row(variant, net, values):
        runs = [{"seed": s, net: {"auc": v}} for s, v in enumerate(values)]
        return {"variant": variant, "runs": runs}

    light = row("light_alone", "light", [0.80, 0.82, 0.81])
    leads = headroom([light, row("booster_alone", "booster", [0.82, 0.84, 0.835])], "auc")
    assert leads["n"] == 3 and abs(leads["mean"] - 0.0217) < 1e-3 and leads["low"] > 0
    assert "rocket can pass it on" in headroom_words(leads)
    level = headroom([light, row("booster_alone", "booster", [0.81, 0.81, 0.815])], "auc")
    assert level["low"] < 0 < level["high"] and level["mean"] > 0
    assert "cannot tell from noise; more seeds decide" in headroom_words(level)
    behind = headroom([light, row("booster_alone", "booster", [0.79, 0.815, 0.80])], "auc")
    assert "the booster does not lead, so there is little" in headroom_words(behind)
    assert headroom([light], "auc") is None
    result = {
        "spec": "s",
        "metric": "auc",
        "seeds": 3,
        "epochs": 1,
        "variants": [],
        "headroom": leads,
    }
    assert "Headroom: the booster alone minus the light net alone" in render_markdown(result)
