"""`rocketc tune`: a real (tiny) study on digits, resume, the space, the verdict, the errors."""

from __future__ import annotations

import csv
import json
import math
import shlex
import statistics

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy import stats
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file, compile_source, compile_text, embedded_spec
from rocketc.compiler.load import Source
from rocketc.compiler.losses import spec_terms
from rocketc.compiler.spec import KD, Hint, Loss
from rocketc.errors import SpecError, TuneError
from rocketc.experiments.stats import paired_interval
from rocketc.experiments.tune import TuneOptions, tune
from rocketc.experiments.tune.budget import Budget
from rocketc.experiments.tune.runs import light_alone_compiled
from rocketc.experiments.tune.space import (
    UNSET,
    apply_recipe,
    default_space,
    load_space,
    sample_recipe,
)
from rocketc.experiments.tune.verdict import MAX_SEEDS, Verdict, seeds_to_resolve

QUICKSTART = embedded_spec("quickstart")

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115
runner = CliRunner()


def quickstart(*sets: str):
    return compile_file(QUICKSTART, ["train.epochs=1", *sets])


def options(**changes) -> TuneOptions:
    base = {"trials": 2, "seeds": 1, "verdict_seeds": 2, "overrides": ["train.epochs=1"]}
    return TuneOptions(**{**base, **changes})


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A 2-trial, 1-epoch, 1-seed study on digits with a 2-seed verdict (a few seconds)."""
    out = tmp_path_factory.mktemp("tune")
    result = tune(quickstart(), out, options(), QUIET)
    return out, result


def rows(out) -> list[dict[str, str]]:
    with open(out / "trials.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_study_writes_every_file_and_a_verdict(study_dir):
    out, result = study_dir
    files = ("best.yaml", "best_recipe.yaml", "trials.csv", "report.md", "tune.json")
    for name in (*files, "objective_vs_hint.png"):
        assert (out / name).is_file(), name
    table = rows(out)
    assert [r["trial"] for r in table] == ["0", "1"]
    assert all(r["state"] == "complete" for r in table)
    # The first trial is the spec's own recipe (enqueued), so the report shows where it stands.
    assert table[0]["loss.hint.on"] == "probs" and float(table[0]["loss.hint.weight"]) == 1.0
    best = result.best
    assert best.value == max(float(r["value"]) for r in table)
    assert float(table[best.number]["seed_0"]) == pytest.approx(best.value)
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best"]["trial"] == best.number
    assert summary["light_alone"]["seeds"] == [0]
    verdict = summary["verdict"]
    assert verdict["seeds"] == [1, 2]  # after the search's seeds: none picked the recipe
    report = (out / "report.md").read_text()
    assert "## Verdict on the test split" in report and verdict["text"] in report
    assert "train with best.yaml" in verdict["text"].lower() or (
        "Train the light net alone." in verdict["text"]
    )


def test_the_verdict_is_a_paired_t_interval(study_dir):
    verdict = study_dir[1].verdict
    diffs = [r - a for r, a in zip(verdict.rocket, verdict.alone, strict=True)]
    mean, low, high = verdict.interval
    half = stats.t.ppf(0.975, 1) * statistics.stdev(diffs) / math.sqrt(2)
    assert mean == pytest.approx(statistics.fmean(diffs))
    assert (low, high) == pytest.approx((mean - half, mean + half))
    assert all(e == 1 for e in verdict.rocket_epochs + verdict.alone_epochs)


def test_the_verdict_scores_the_booster_of_the_same_runs(study_dir):
    """The booster's own test score, per seed, beside the light nets': the head start."""
    verdict = study_dir[1].verdict
    assert len(verdict.booster) == 2 and all(0 <= b <= 1 for b in verdict.booster)
    assert verdict.booster != verdict.rocket  # the booster net, not the light net again
    gap = statistics.fmean(verdict.booster) - statistics.fmean(verdict.alone)
    assert f"({gap:+.4f}): the head start" in verdict.text
    report = (study_dir[0] / "report.md").read_text()
    assert f"| {verdict.booster[0]:.4f} |" in report


def test_each_epoch_is_reported_for_pruning(study_dir):
    for trial in study_dir[1].study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        assert list(trial.intermediate_values) == [0]  # 1 seed x 1 epoch
        assert trial.intermediate_values[0] == pytest.approx(trial.value)


# --- best.yaml: what the verdict says to train --------------------------------------------
def resumed(study_dir, out, monkeypatch, beats: bool, spec=None, **changes):
    """The fixture's study resumed in `out` with its verdict forced: nothing trains again (the
    trials, light alone and the verdict are stored in the study), only the files are written."""
    out.mkdir(exist_ok=True)
    (out / "study.db").write_bytes((study_dir[0] / "study.db").read_bytes())
    monkeypatch.setattr(Verdict, "beats", property(lambda self: beats))
    compiled = compile_file(spec or QUICKSTART, ["train.epochs=1"])
    return tune(compiled, out, options(**changes), QUIET)


def test_a_light_alone_verdict_writes_a_light_alone_best_yaml(study_dir, tmp_path, monkeypatch):
    """Issue 19: best.yaml held the recipe that lost, and its header said to train it."""
    out = tmp_path / "tune"
    result = resumed(study_dir, out, monkeypatch, beats=False)
    text = (out / "best.yaml").read_text()
    assert text.startswith("# best.yaml: quickstart as the light net alone, on its labels")
    assert "Train the light net alone." in " ".join(text.split())
    assert f"# Train: rocketc train {out / 'best.yaml'}" in text
    compiled = compile_file(out / "best.yaml")
    assert compiled.spec.name == "quickstart_light_alone"  # not runs/quickstart/, the first run
    # Labels only, as the registry tells: no term teaches, none reads the booster.
    terms = spec_terms(compiled.spec)
    assert terms and not any(t.kind.teaches for t in terms)
    assert all(r.side == "light" for t in terms for r in t.reads)
    # Exactly the loss the verdict's light-alone runs trained with.
    assert compiled.source.data["loss"] == light_alone_compiled(quickstart()).source.data["loss"]
    # The recipe that lost is kept apart, says so, and has a run name of its own too.
    kept = (out / "best_recipe.yaml").read_text()
    assert "did NOT beat light alone" in " ".join(kept.split())
    recipe = compile_file(out / "best_recipe.yaml")
    assert recipe.spec.name == "quickstart_tuned"
    stored = result.best.user_attrs["recipe"]
    assert recipe.spec.loss.gradient_block == stored["loss.gradient_block"]
    assert recipe.spec.loss.hint.weight == pytest.approx(stored["loss.hint.weight"])
    assert "`best_recipe.yaml`" in (out / "report.md").read_text()
    assert result.next_step.startswith(f"rocketc train {out / 'best.yaml'}")


def test_a_rocket_verdict_writes_the_tuned_recipe_with_its_numbers(
    study_dir, tmp_path, monkeypatch, repo_root
):
    """The loss comment is the tuned recipe's, never the spec's "rocketc's defaults"."""
    spec = tmp_path / "quickstart.yaml"
    text = (repo_root / "specs" / "quickstart.yaml").read_text()
    spec.write_text(text.replace("\nloss:\n", "\nloss:  # rocketc's defaults; try ablate\n", 1))
    out = tmp_path / "tune"
    out.mkdir()
    result = resumed(study_dir, out, monkeypatch, beats=True, spec=spec)
    text = (out / "best.yaml").read_text()
    flat = " ".join(w for w in text.split() if w != "#")  # the comments' prose, unwrapped
    assert text.startswith("# best.yaml: the loss recipe `rocketc tune` found for quickstart")
    assert "rocket beats light-alone" in flat and "Applied: --set train.epochs=1." in flat
    assert "rocketc's defaults" not in text
    best, verdict = result.best, result.verdict
    mean, low, high = verdict.interval
    assert (
        f"Loss: the recipe rocketc tune found, trial {best.number} of study 'quickstart': "
        f"validation accuracy {best.value:.4f} against {result.baseline['mean']:.4f}"
    ) in flat
    assert f"on test {mean:+.4f} [{low:+.4f}, {high:+.4f}] over 2 paired seeds" in flat
    # The user's own comments survive the round trip.
    assert "# shared bottom: computed once per step, trained by both nets" in text
    assert "# quickstart: the smallest Rocket Launching pair" in text
    compiled = compile_file(out / "best.yaml")
    assert compiled.spec.name == "quickstart_tuned" and compiled.spec.train.epochs == 1
    recipe = best.user_attrs["recipe"]
    assert compiled.spec.loss.gradient_block == recipe["loss.gradient_block"]
    assert compiled.spec.loss.hint.weight == pytest.approx(recipe["loss.hint.weight"])
    # The recipe file is always written: one path for `rocketc ablate --recipe`.
    kept = (out / "best_recipe.yaml").read_text()
    assert "The verdict says to train it: best.yaml is this same recipe." in " ".join(kept.split())
    assert (
        compile_file(out / "best_recipe.yaml").source.data["loss"] == (compiled.source.data["loss"])
    )


def test_without_a_verdict_best_yaml_is_the_recipe_and_says_it_is_not_judged(
    study_dir, tmp_path, monkeypatch
):
    out = tmp_path / "tune"
    result = resumed(study_dir, out, monkeypatch, beats=False, verdict_seeds=0)
    assert result.verdict is None
    for name in ("best.yaml", "best_recipe.yaml"):
        flat = " ".join(w for w in (out / name).read_text().split() if w != "#")
        assert "Not judged on the test split yet" in flat, name
        assert "not judged on the test split (--verdict-seeds 0)" in flat, name
        assert compile_file(out / name).spec.name == "quickstart_tuned"


def test_cli_prints_a_train_command_that_runs_beside_the_first_run(
    study_dir, tmp_path, monkeypatch, repo_root
):
    """The suggested command, run as printed (plus --epochs 1), after the user's first run of
    the spec: it trains into a run directory of its own instead of being refused."""
    out = tmp_path / "tune"
    out.mkdir()
    (out / "study.db").write_bytes((study_dir[0] / "study.db").read_bytes())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "quickstart").mkdir(parents=True)  # the user's first run
    spec = str(repo_root / "specs" / "quickstart.yaml")
    args = ["--trials", "2", "--seeds", "1", "--epochs", "1", "--verdict-seeds", "2"]
    result = runner.invoke(app, ["tune", spec, *args, "-o", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("warning: the budget is short: try --epochs 2.") for line in lines)
    step = next(line for line in lines if line.startswith("next: ")).removeprefix("next: ")
    command = shlex.split(step.split("  (")[0])
    assert command == ["rocketc", "train", str(out / "best.yaml")]
    name = compile_file(out / "best.yaml").spec.name
    assert name != "quickstart" and f"run directory runs/{name}/" in step
    trained = runner.invoke(app, [*command[1:], "--epochs", "1"])
    assert trained.exit_code == 0, trained.output + trained.stderr
    assert (tmp_path / "runs" / name / "light.onnx").is_file()


# --- the budget ----------------------------------------------------------------------------
def test_the_budget_is_short_when_most_runs_peak_at_their_last_epoch():
    short = Budget.of(4, [4, 4, 3, 0])  # 0: a run that never scored, left out
    assert (short.runs, short.at_last, short.short) == (3, 2, True)
    assert short.text.startswith("the budget is short: try --epochs 8.")
    assert "In 2 of 3 runs the best validation epoch was the last, epoch 4" in short.text
    assert not Budget.of(4, [4, 4, 3, 2]).short  # half is not most
    assert Budget.of(4, [0, 0]) is None


def test_a_short_budget_is_in_the_report_and_the_header(study_dir):
    out, result = study_dir
    budget = result.budget  # 1 epoch per run: every run peaks at its last
    assert budget.short and budget.at_last == budget.runs
    # light alone (1 seed), 2 trials (1 seed each), the verdict (2 seeds x 2 arms)
    assert budget.runs == 1 + 2 + 4
    assert f"**Warning: {budget.text}**" in (out / "report.md").read_text()
    assert json.loads((out / "tune.json").read_text())["budget"] == budget.to_json()
    assert "The budget is short: try --epochs 2." in (out / "best.yaml").read_text()


def test_resume_adds_trials_to_the_same_study(study_dir, tmp_path_factory):
    out, first = study_dir
    copy = tmp_path_factory.mktemp("resume")
    (copy / "study.db").write_bytes((out / "study.db").read_bytes())
    result = tune(quickstart(), copy, options(trials=3), QUIET)
    assert [t.number for t in result.study.trials] == [0, 1, 2]
    assert result.baseline == first.baseline  # stored in the study, not trained again
    assert len(rows(copy)) == 3
    # Asking for no more trials than the study holds runs none.
    again = tune(quickstart(), copy, options(trials=2), QUIET)
    assert len(again.study.trials) == 3


def test_resume_with_more_verdict_seeds_keeps_the_verdict_seeds_already_run(
    study_dir, tmp_path_factory
):
    """The verdict's advice, followed: the same study with --verdict-seeds 3 keeps seeds 1-2 of
    the 2-seed verdict (their scores to the digit) and adds seed 3."""
    out, first = study_dir
    copy = tmp_path_factory.mktemp("more_verdict_seeds")
    (copy / "study.db").write_bytes((out / "study.db").read_bytes())
    result = tune(quickstart(), copy, options(verdict_seeds=3), QUIET)
    verdict = result.verdict
    assert verdict.seeds == [1, 2, 3]
    assert verdict.rocket[:2] == first.verdict.rocket
    assert verdict.alone[:2] == first.verdict.alone
    assert verdict.booster[:2] == first.verdict.booster
    assert len(verdict.rocket) == len(verdict.alone) == len(verdict.booster) == 3


def test_resume_refuses_other_settings(study_dir, tmp_path_factory):
    out, _ = study_dir
    copy = tmp_path_factory.mktemp("resume_other")
    (copy / "study.db").write_bytes((out / "study.db").read_bytes())
    with pytest.raises(TuneError, match="seeds"):
        tune(quickstart(), copy, options(seeds=2), QUIET)
    with pytest.raises(TuneError, match="fingerprint"):
        tune(quickstart("data.val_fraction=0.2"), copy, options(), QUIET)


# --- the search space ----------------------------------------------------------------------
def paths(space) -> list[str]:
    return [d.path for d in space]


def test_space_includes_the_hint_fields_the_schema_has():
    spec = quickstart().spec
    got = paths(default_space(spec, epochs=4))
    for name in ("weight", "on", "normalize", "temperature", "warmup_epochs"):
        assert (f"loss.hint.{name}" in got) == (name in Hint.model_fields), name
    assert ("loss.kd.warmup_epochs" in got) == ("warmup_epochs" in KD.model_fields)
    assert {"loss.gradient_block", "loss.kd.weight", "loss.kd.temperature"} <= set(got)
    # One epoch leaves no room for a warm-up.
    assert "loss.hint.warmup_epochs" not in paths(default_space(spec, epochs=1))


def test_space_has_no_zscore_for_one_logit(repo_root):
    ctr = compile_file(repo_root / "specs" / "ctr_movielens.yaml").spec
    assert "loss.hint.normalize" not in paths(default_space(ctr, epochs=4))


def test_space_searches_each_feature_hint_weight(spec_text, edit):
    if "feature_hints" not in Loss.model_fields:
        pytest.skip("this schema has no feature hints")
    text = edit(
        spec_text("quickstart"),
        "  kd: {weight: 0.0}\n",
        "  kd: {weight: 0.0}\n  feature_hints:\n"
        "    - {light: light_hidden, booster: booster_hidden, weight: 0.5}\n",
    )
    spec = compile_text(text).spec
    assert "loss.feature_hints.0.weight" in paths(default_space(spec, epochs=4))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), which=st.sampled_from(["quickstart", "temperature", "ctr"]))
def test_every_recipe_of_the_default_space_is_a_valid_spec(seed, which, spec_text, edit):
    text = spec_text("ctr_movielens" if which == "ctr" else "quickstart")
    if which == "temperature" and "temperature" in Hint.model_fields:
        text = edit(
            text, "on: probs, reduction: mean}", "on: probs, reduction: mean, temperature: 2}"
        )
    compiled = compile_text(text)
    space = default_space(compiled.spec, epochs=6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    recipe = sample_recipe(space, study.ask(), compiled.spec, compiled.source.data)
    data = apply_recipe(compiled.source.data, recipe)
    try:
        tuned = compile_source(Source(data, compiled.source.source_map)).spec
    except SpecError as exc:
        pytest.fail(f"recipe {recipe} gives an invalid spec: {exc}")
    if recipe.get("loss.hint.temperature") is UNSET:
        assert tuned.loss.hint.on == "logits"


def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_space_file_overrides_the_default(tmp_path):
    spec = quickstart().spec
    path = write(
        tmp_path,
        "loss.hint.on: logits                 # fixed\n"
        "loss.gradient_block: [booster, none]\n"
        "loss.kd.weight: null                 # not searched\n"
        "loss.booster: {low: 0.5, high: 2}    # a new dimension\n"
        "loss.hint.weight: {low: 0.03, high: 3, log: true}\n",
    )
    space = {d.path: d for d in load_space(str(path), spec, epochs=4)}
    assert space["loss.hint.on"].kind == "fixed" and space["loss.hint.on"].value == "logits"
    assert space["loss.gradient_block"].choices == ("booster", "none")
    assert "loss.kd.weight" not in space
    assert (space["loss.booster"].kind, space["loss.booster"].low) == ("float", 0.5)
    hint = space["loss.hint.weight"]
    assert (hint.low, hint.high, hint.log, hint.zero) == (0.03, 3, True, False)


def test_space_file_errors_are_positioned_and_all_reported(tmp_path):
    path = write(
        tmp_path,
        "loss.hint.weight: {low: 0.1, high: 1}\n"
        "loss.hint.colour: [red]\n"
        "loss.hint.on: [logits, softmax]\n"
        "train.epochs: [1, 2]\n"
        "loss.kd.weight: {low: 0, high: 1, log: true}\n",
    )
    with pytest.raises(TuneError) as info:
        load_space(str(path), quickstart().spec, epochs=4)
    lines = [str(d) for d in info.value.diagnostics]
    assert len(lines) == 4
    assert lines[0].startswith(f"{path}:2:1: loss.hint.colour: unknown loss field")
    assert lines[1].startswith(f"{path}:3:1: loss.hint.on: 'softmax'")
    assert lines[2].startswith(f"{path}:4:1: train.epochs: a search dimension is a path into")
    assert lines[3].startswith(f"{path}:5:1: loss.kd.weight: a log-scale range needs low > 0")


# --- the verdict ---------------------------------------------------------------------------
def verdict(rocket, alone) -> Verdict:
    n = len(rocket)
    return Verdict("accuracy", 0, list(range(n)), rocket, alone, [1] * n, [1] * n)


def test_verdict_says_plainly_when_rocket_does_not_beat_light_alone():
    win = verdict([0.91, 0.92, 0.93, 0.92, 0.91], [0.90, 0.90, 0.91, 0.90, 0.90])
    assert win.beats and win.text.startswith("rocket beats light-alone")
    tie = verdict([0.91, 0.89, 0.93, 0.88, 0.91], [0.90, 0.90, 0.91, 0.90, 0.90])
    assert not tie.beats and "includes 0. Train the light net alone." in tie.text
    loss = verdict([0.80, 0.81, 0.80, 0.82, 0.80], [0.90, 0.90, 0.91, 0.90, 0.90])
    assert loss.text.startswith("rocket is worse") and "Train the light net alone." in loss.text
    diverged = verdict([float("nan"), 0.9], [0.9, 0.9])
    assert not diverged.beats and "Train the light net alone." in diverged.text
    assert "booster" not in tie.text  # no booster scores: no head-start sentence


def test_verdict_names_the_boosters_head_start_and_reads_old_verdicts():
    tie = verdict([0.91, 0.89, 0.93, 0.88, 0.91], [0.90, 0.90, 0.91, 0.90, 0.90])
    tie.booster = [0.92, 0.93, 0.92, 0.91, 0.92]
    assert tie.text.endswith(
        "Its booster scores 0.9200 on test against 0.9020 for light alone (+0.0180): "
        "the head start the light net can learn from."
    )
    old = tie.to_json()
    del old["booster"]  # verdict.json written before the booster was scored
    assert Verdict.from_json(old).booster == []


def test_an_inconclusive_verdict_says_how_many_seeds_would_show_its_gain():
    """5 seeds cannot show +0.46 points with differences spread by about a point (issue 8's
    Fashion-MNIST study); the verdict says how many could, and that number does: the interval
    of as many differences, spread the same way, lies wholly above 0."""
    rocket = [0.8765, 0.8753, 0.8791, 0.8740, 0.8681]
    alone = [0.8702, 0.8782, 0.8770, 0.8522, 0.8726]
    tie = verdict(rocket, alone)
    needed = seeds_to_resolve(statistics.fmean(tie.diffs), statistics.stdev(tie.diffs))
    assert needed is not None and 5 < needed <= MAX_SEEDS
    assert (
        f"about {needed} paired seeds would show it 4 times in 5 (--verdict-seeds {needed}); "
        "5 cannot." in tie.text
    )
    # the textbook power rule: (t_0.975 + t_0.8) * sd / sqrt(n) < mean, first true at `needed`
    mean, spread = statistics.fmean(tie.diffs), statistics.stdev(tie.diffs)
    for n, enough in ((needed - 1, False), (needed, True)):
        margin = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * spread / math.sqrt(n)
        assert bool(margin < mean) is enough
    # and it holds by simulation: differences drawn with that mean and spread clear 0 at
    # `needed` seeds about 80% of the time (paired_interval is the verdict's own interval)
    rng = np.random.default_rng(0)
    shown = [paired_interval(list(rng.normal(mean, spread, needed)))[1] > 0 for _ in range(2000)]
    assert 0.75 < statistics.fmean(shown) < 0.9
    # a gain that is tiny next to the spread: not worth the seeds
    tiny = verdict([0.90 + d for d in (0.02, -0.02, 0.021, -0.019, 0.0)], [0.90] * 5)
    assert f"more than {MAX_SEEDS} paired seeds to show: far below the noise" in tiny.text
    # a loss, or no spread at all: nothing to resolve
    worse = verdict([0.89, 0.91, 0.88, 0.90, 0.89], [0.90] * 5)
    assert "paired seeds would" not in worse.text


def test_more_verdict_seeds_train_only_the_seeds_not_run_yet(monkeypatch):
    """Following the verdict's advice (--verdict-seeds N on the same study) keeps the seeds the
    earlier verdict ran, and trains both arms for the new ones only."""
    from rocketc.experiments.tune import verdict as verdict_module
    from rocketc.experiments.tune.runs import RunOutcome

    trained = []

    def fake_train(gen, data, seed, metric, keep_best=False):
        trained.append((gen, seed))
        return RunOutcome(seed, [0.5], 1)

    def fake_score(gen, data, run, metric, net="light"):
        return {"rocket": 0.91, "alone": 0.90}[gen] + (0.05 if net == "booster" else 0.0)

    monkeypatch.setattr(verdict_module, "train_once", fake_train)
    monkeypatch.setattr(verdict_module, "score_on_test", fake_score)
    earlier = Verdict("accuracy", 3, [2, 3], [0.80, 0.81], [0.79, 0.80], [4, 4], [3, 4])
    earlier.booster = [0.85, 0.86]
    lines = []
    out = verdict_module.run_verdict(
        3, "rocket", "alone", None, [2, 3, 4], "accuracy", progress=lines.append, earlier=earlier
    )
    assert trained == [("rocket", 4), ("alone", 4)]
    assert out.seeds == [2, 3, 4]
    assert out.rocket == [0.80, 0.81, 0.91] and out.alone == [0.79, 0.80, 0.90]
    assert out.rocket_epochs == [4, 4, 1] and out.alone_epochs == [3, 4, 1]
    assert out.booster == pytest.approx([0.85, 0.86, 0.96])
    assert "verdict: seed 2 kept from the earlier verdict" in lines
    # another trial's verdict is not reused
    trained.clear()
    verdict_module.run_verdict(5, "rocket", "alone", None, [2], "accuracy", earlier=earlier)
    assert trained == [("rocket", 2), ("alone", 2)]


@given(st.lists(st.floats(-1, 1), min_size=2, max_size=8), st.floats(-1, 1))
def test_paired_interval_holds_the_mean_and_shifts_with_the_data(diffs, shift):
    mean, low, high = paired_interval(diffs)
    assert low <= mean + 1e-12 and mean <= high + 1e-12
    moved = paired_interval([d + shift for d in diffs])
    assert moved == pytest.approx((mean + shift, low + shift, high + shift), abs=1e-9)


# --- the command line ----------------------------------------------------------------------
def test_cli_bad_storage_is_one_line_not_a_traceback(repo_root, tmp_path):
    result = runner.invoke(
        app,
        [
            "tune",
            str(repo_root / "specs" / "quickstart.yaml"),
            "--storage",
            "nosuchdb://nowhere/x",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "--storage nosuchdb://nowhere/x: cannot open the study" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_cli_one_verdict_seed_is_a_usage_error(repo_root):
    spec = str(repo_root / "specs" / "quickstart.yaml")
    result = runner.invoke(app, ["tune", spec, "--verdict-seeds", "1"])
    assert result.exit_code == 2
    assert "--verdict-seeds" in result.stderr


class ScriptedTrial:
    """Stands in for an Optuna trial: records reports, prunes at a scripted report."""

    number = 7

    def __init__(self, prune_at: int):
        self.reports: list[tuple[int, float]] = []
        self.user_attrs: dict[str, str] = {}
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return len(self.reports) - 1 == self.prune_at

    def set_user_attr(self, key: str, value: str) -> None:
        self.user_attrs[key] = value


def test_pruning_sees_the_running_mean_over_seeds(tmp_path):
    from rich.progress import Progress

    from rocketc.experiments.tune.tuner import Tuner

    tuner = Tuner(quickstart("train.epochs=3"), tmp_path, options(seeds=2), QUIET)
    tuner.progress = Progress(disable=True)
    tuner.task = tuner.progress.add_task("trials", status="")
    trial = ScriptedTrial(prune_at=2)
    # Second seed (k=1) after a first seed that ended at 0.8: steps continue at 3 = 1 x 3 epochs.
    hook = tuner._report_hook(trial, 1, finished=0.8)
    hook(0, 0.6)
    hook(1, 0.7)
    with pytest.raises(optuna.TrialPruned):
        hook(2, 0.7)
    assert trial.reports == [(3, pytest.approx(0.7)), (4, 0.75), (5, 0.75)]
    assert trial.user_attrs["pruned_at"] == "seed 1, epoch 3"


# --- the recipe book and duplicate trials ---------------------------------------------------
def test_book_recipes_come_right_after_the_specs_own(study_dir):
    study = study_dir[1].study
    first, second = study.get_trials(deepcopy=False)[:2]
    assert first.user_attrs["origin"] == "spec"
    # quickstart hints on probabilities at weight 1 with the block; the book's first question
    # is the same hint without the block.
    assert second.user_attrs["origin"] == "book: no gradient block"
    assert second.params["loss.gradient_block"] == "none"
    assert second.params["loss.hint.on"] == "probs"


def test_book_skips_what_the_spec_already_is_and_what_the_space_cannot_hold(tmp_path):
    from rocketc.experiments.tune.book import book_params

    compiled = quickstart()  # hint on probs at weight 1, 1 epoch: no warm-up entry
    space = default_space(compiled.spec, epochs=1)
    names = [name for name, _ in book_params(space, compiled.spec, compiled.source.data, 1)]
    assert names == ["no gradient block", "z-scored logit hint"]
    # With gradient_block fixed by the space, its entry goes; a binary task has no z-score.
    fixed = write(tmp_path, "loss.gradient_block: booster\n")
    space = load_space(str(fixed), compiled.spec, epochs=8)
    names = [name for name, _ in book_params(space, compiled.spec, compiled.source.data, 8)]
    assert names == ["z-scored logit hint", "hint warm-up"]


_ALL_LOSS_PATHS = (
    "loss.hint.weight",
    "loss.hint.on",
    "loss.hint.normalize",
    "loss.hint.temperature",
    "loss.gradient_block",
    "loss.kd.weight",
    "loss.kd.temperature",
)


def test_a_recipe_drawn_twice_reuses_the_first_score_without_training(tmp_path):
    # Every dimension fixed or off: each trial draws the spec's own recipe again.
    space = write(
        tmp_path, "".join(f"{p}: null\n" for p in _ALL_LOSS_PATHS) + "loss.booster: [1.0]\n"
    )
    result = tune(
        quickstart(), tmp_path / "dup", options(trials=3, space=space, verdict_seeds=0), QUIET
    )
    trials = result.study.get_trials(deepcopy=False)
    assert [t.user_attrs.get("duplicate_of") for t in trials] == [None, 0, 0]
    assert trials[1].value == trials[2].value == trials[0].value
    assert not trials[1].intermediate_values  # never trained


def test_a_recipe_pruned_before_is_pruned_again_without_training(tmp_path):
    # A study that already holds a pruned trial of the recipe every trial will draw.
    space = write(
        tmp_path, "".join(f"{p}: null\n" for p in _ALL_LOSS_PATHS) + "loss.booster: [1.0]\n"
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="quickstart", direction="maximize")
    dist = optuna.distributions.CategoricalDistribution([1.0])
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"loss.booster": 1.0},
            distributions={"loss.booster": dist},
            user_attrs={"recipe": {"loss.booster": 1.0}},
            intermediate_values={0: 0.1},
        )
    )
    opts = options(trials=2, space=space, verdict_seeds=0, storage=storage)
    result = tune(quickstart(), tmp_path / "out", opts, QUIET)
    trials = result.study.get_trials(deepcopy=False)
    # --trials counts finished trials, pruned ones included: one more trial ran, and stopped
    # at once as the pruned trial's twin.
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert [t.user_attrs.get("duplicate_of") for t in trials] == [None, 0]
    assert not trials[1].intermediate_values
