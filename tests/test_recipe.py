"""One training path: `train`, `ablate` and `tune` all score the epoch `train.select` ships.

The validation metric is scripted so the best epoch is not the last (epoch 2 of 3); every
command must then report the test score of epoch 2's weights, the same number `rocketc train`
prints for the same spec and seed, and each must differ from what the last epoch scores.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from rocketc.compiler import compile_file, embedded_spec
from rocketc.data import load_data
from rocketc.experiments.ablate import ablate
from rocketc.experiments.tune.runs import score_on_test, train_once
from rocketc.train import recipe as recipe_module
from rocketc.train.generated import load_generated
from rocketc.train.recipe import Recipe
from rocketc.train.run import train_run

QUICKSTART = embedded_spec("quickstart")

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115
SCRIPT = [0.5, 0.9, 0.6]  # validation accuracy by epoch: the best is epoch 2, not the last


def _scripted(self):
    value = SCRIPT[len(self.history)]
    metrics = {"accuracy": value, "error": 1 - value, "ce": 1.0}
    return {net: dict(metrics) for net in self.part.nets}


@pytest.fixture(scope="module")
def compiled():
    return compile_file(QUICKSTART, ["train.epochs=3", "train.seed=3"])


@pytest.fixture(scope="module")
def data(compiled):
    return load_data(compiled.spec)


@pytest.fixture(scope="module")
def shipped(compiled, data, tmp_path_factory):
    """What `rocketc train` ships: its test table with the selected weights."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Recipe, "validate", _scripted)
        result = train_run(compiled, tmp_path_factory.mktemp("train"), data=data, console=QUIET)
    assert result.selection["selected_epoch"] == 2
    return result.test["light"]["accuracy"]


@pytest.fixture(scope="module")
def last_epoch(compiled, data, tmp_path_factory):
    """The same run scored at its last epoch instead (what ablate used to report)."""
    gen = load_generated(compiled, tmp_path_factory.mktemp("last") / "code")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Recipe, "validate", _scripted)
        mp.setattr(Recipe, "load_selected", lambda self: None)
        result = Recipe(gen, data, console=QUIET).run()
    return result.test["light"]["accuracy"]


def test_the_last_epoch_scores_differently(shipped, last_epoch):
    assert shipped != last_epoch  # else the agreement below would prove nothing


def test_ablate_scores_the_shipped_epoch(compiled, data, shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(Recipe, "validate", _scripted)
    monkeypatch.setattr("rocketc.experiments.ablate.load_data", lambda spec, source=None: data)
    # The `tuned` row trains the spec's own loss: the very run `rocketc train` made.
    out = ablate(
        compiled,
        seeds=1,
        epochs=None,
        out_dir=tmp_path,
        variants=["light_alone"],
        console=QUIET,
        recipe=compiled.file,
    )
    tuned = {row["variant"]: row for row in out["variants"]}["tuned"]
    (run,) = tuned["runs"]
    assert run["seed"] == 3 and run["epochs"]["light"] == {"selected": 2, "trained": 3}
    assert run["light"]["accuracy"] == shipped


def test_tune_scores_the_shipped_epoch(compiled, data, shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(Recipe, "validate", _scripted)
    gen = load_generated(compiled, tmp_path / "code")
    run = train_once(gen, data, 3, "accuracy", keep_best=True)
    assert run.values == SCRIPT and run.best_epoch == 2 and run.best == 0.9
    assert score_on_test(gen, data, run, "accuracy") == shipped


def test_a_recipe_stops_early_on_the_specs_patience(data, tmp_path, monkeypatch):
    compiled = compile_file(QUICKSTART, ["train.epochs=5", "train.select.patience=1"])
    monkeypatch.setattr(recipe_module, "summary_line", lambda *a: "")
    monkeypatch.setattr(Recipe, "validate", lambda self: _scripted_long(self))
    result = Recipe(load_generated(compiled, tmp_path / "code"), data, console=QUIET).run()
    assert result.selection["selected_epoch"] == 2 and result.selection["epochs_trained"] == 3


def _scripted_long(self):
    value = [0.5, 0.9, 0.6, 0.95, 0.97][len(self.history)]
    return {net: {"accuracy": value, "error": 1 - value, "ce": 1.0} for net in self.part.nets}


def test_a_long_epoch_prints_lines_when_not_in_a_terminal(monkeypatch):
    """No terminal (a log file, CI): a plain line every LINE_EVERY seconds within an epoch."""
    import io

    from rocketc.train.recipe import EpochProgress

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    monkeypatch.setattr(EpochProgress, "LINE_EVERY", 0.0)
    progress = EpochProgress(console, steps=4, epochs=3, label="rocket seed 1")
    progress.start(2)
    with progress:
        for step in range(4):
            progress.step(step, 64)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "━" not in out.getvalue()
    assert lines[1].startswith("rocket seed 1 epoch 2/3: 50% of its batches, ")
