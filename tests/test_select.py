"""Best-epoch selection (`train.select`): the run ships the best epoch's light net, not the last.

The recipe tests script the validation metric per epoch (a `TrainRecipe` subclass), so which
epoch must win is known in advance; the weights are real, snapshotted after every epoch.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from rocketc.compiler import compile_file, embedded_spec
from rocketc.errors import TrainError
from rocketc.train.run import TrainRecipe
from rocketc.train.select import Selection, selection_for

QUICKSTART = embedded_spec("quickstart")

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


# --- the policy ------------------------------------------------------------------------------
def replay(selection: Selection, values: list[float]) -> list[bool]:
    return [selection.update(epoch, v) for epoch, v in enumerate(values, start=1)]


def test_higher_is_better_keeps_the_first_of_equal_bests():
    sel = Selection("accuracy")
    assert replay(sel, [0.5, 0.8, 0.7, 0.8, 0.6]) == [True, True, False, False, False]
    assert (sel.best_epoch, sel.best_value, sel.epochs_without_improvement) == (2, 0.8, 3)


@pytest.mark.parametrize("metric", ["error", "ce", "logloss"])
def test_lower_is_better_for_losses_and_error(metric):
    sel = Selection(metric)
    replay(sel, [0.9, 0.4, 0.5, 0.3, 0.35])
    assert not sel.higher_is_better
    assert (sel.best_epoch, sel.best_value) == (4, 0.3)


def test_nan_never_improves_and_counts_against_patience():
    sel = Selection("auc", patience=2)
    assert replay(sel, [math.nan, 0.6, math.nan]) == [False, True, False]
    assert sel.best_epoch == 2 and not sel.patience_spent
    sel.update(4, math.nan)
    assert sel.patience_spent
    nothing = Selection("auc")
    replay(nothing, [math.nan, math.nan])
    summary = nothing.summary(epochs=2)
    assert summary["selected_epoch"] == 2 and summary["value"] is None
    assert "last epoch" in summary["why"]


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30))
def test_best_epoch_is_the_first_argmax(values):
    sel = Selection("accuracy")
    replay(sel, values)
    assert sel.best_epoch == values.index(max(values)) + 1


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30), st.integers(1, 5))
def test_patience_is_spent_exactly_when_the_best_is_that_old(values, patience):
    sel = Selection("accuracy", patience=patience)
    for epoch, value in enumerate(values, start=1):
        sel.update(epoch, value)
        best = values[:epoch].index(max(values[:epoch])) + 1
        assert sel.patience_spent == (epoch - best >= patience)


def test_state_round_trips():
    sel = Selection("ce", patience=3)
    replay(sel, [1.0, 0.5, 0.7])
    again = Selection("ce", patience=3)
    again.load_state_dict(sel.state_dict())
    assert again == sel


def test_default_metric_follows_the_task_and_the_data(compile_spec_text, spec_text, edit):
    quickstart = compile_file(QUICKSTART, [])
    assert selection_for(quickstart, grouped=False).metric == "accuracy"
    ctr = compile_spec_text(spec_text("ctr_movielens"), "ctr_movielens.yaml")
    assert selection_for(ctr, grouped=True).metric == "gauc"
    assert selection_for(ctr, grouped=False).metric == "auc"
    text = edit(spec_text("ctr_movielens"), "\ntrain:\n", "\ntrain:\n  select: {metric: gauc}\n")
    with pytest.raises(TrainError, match=r"ctr_movielens.yaml:\d+:\d+: .*gauc needs data"):
        selection_for(compile_spec_text(text, "ctr_movielens.yaml"), grouped=False)


# --- the recipe ------------------------------------------------------------------------------
class Killed(Exception):
    """Stands in for a kill: nothing after the raise runs."""


class Scripted(TrainRecipe):
    """Validation accuracy comes from `script`; the real weights of every epoch are kept."""

    def __init__(self, *args, script, **kwargs):
        super().__init__(*args, **kwargs)
        self.script = script
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def validate(self):
        value = self.script[len(self.history)]
        metrics = {"accuracy": value, "error": 1 - value, "ce": 1.0}
        return {"light": metrics, "booster": dict(metrics)}

    def end_epoch(self, epoch, train_losses):
        self.weights[epoch] = copy.deepcopy(self.model.state_dict())
        super().end_epoch(epoch, train_losses)


def quickstart(epochs: int, patience: int | None = None):
    select = "null" if patience is None else str(patience)
    return compile_file(QUICKSTART, [f"train.epochs={epochs}", f"train.select.patience={select}"])


def light_part(state, light_keys):
    return {k: v for k, v in state.items() if k in light_keys}


def test_ships_the_best_epoch_and_stops_early(tmp_path):
    recipe = Scripted(
        quickstart(6, patience=2), tmp_path, console=QUIET, script=[0.5, 0.8, 0.7, 0.75, 0.9, 0.95]
    )
    result = recipe.run(launch=True)
    # Best at epoch 2, then 3 and 4 are worse: patience 2 is spent after epoch 4.
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    sel = result.selection
    assert sel["selected_epoch"] == 2 and sel["value"] == 0.8 and sel["metric"] == "accuracy"
    assert sel["stopped_early"] and sel["patience"] == 2 and sel["epochs_trained"] == 4
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    for key, value in recipe.weights[2].items():
        assert torch.equal(best["model"][key], value), key
    # The exported light net is epoch 2's, not epoch 4's.
    shipped = torch.load(tmp_path / "light_state_dict.pt", weights_only=True)
    light = recipe.gen.model.LightNet()
    light.load_state_dict(shipped)
    model = recipe.gen.model.RocketNet()
    model.load_state_dict(recipe.weights[2])
    for (name, got), (_, want) in zip(
        light.state_dict().items(), model.light_net().state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), name
    model.load_state_dict(recipe.weights[4])
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            light.state_dict().values(), model.light_net().state_dict().values(), strict=True
        )
    )
    # The test split was scored with epoch 2's weights.
    recipe.model.load_state_dict(recipe.weights[2])
    assert recipe.evaluate(recipe.data.test) == result.test
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["selection"]["selected_epoch"] == 2 and report["selection"]["stopped_early"]
    md = (tmp_path / "report.md").read_text()
    assert "epoch 2's weights" in md and "stopped early after epoch 4 of 6" in md


def test_without_patience_every_epoch_trains(tmp_path):
    result = Scripted(quickstart(3), tmp_path, console=QUIET, script=[0.9, 0.5, 0.6]).run(
        launch=False
    )
    assert len(result.history) == 3
    assert result.selection["selected_epoch"] == 1 and not result.selection["stopped_early"]


class KilledAfterEpoch3(Scripted):
    def end_epoch(self, epoch, train_losses):
        super().end_epoch(epoch, train_losses)
        if epoch == 3:
            raise Killed


class KilledBeforeBestIsWritten(Scripted):
    """Dies after epoch 2's checkpoint.pt is written, before its best.pt is."""

    def save_best(self):
        if self.selection.best_epoch == 2:
            raise Killed
        super().save_best()


SCRIPT = [0.5, 0.9, 0.6, 0.7, 0.8]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return Scripted(quickstart(5), out, console=QUIET, script=SCRIPT).run(launch=False)


@pytest.mark.parametrize("killer", [KilledAfterEpoch3, KilledBeforeBestIsWritten])
def test_resume_keeps_the_best_so_far(tmp_path, uninterrupted, killer):
    with pytest.raises(Killed):
        killer(quickstart(5), tmp_path, console=QUIET, script=SCRIPT).run(launch=False)
    resumed = Scripted(quickstart(5), tmp_path, console=QUIET, resume=True, script=SCRIPT)
    result = resumed.run(launch=False)
    assert result.selection == uninterrupted.selection
    assert result.selection["selected_epoch"] == 2
    assert result.test == uninterrupted.test
    got = torch.load(tmp_path / "best.pt", weights_only=True)
    want = torch.load(uninterrupted.out_dir / "best.pt", weights_only=True)
    assert got["epoch"] == want["epoch"] == 2
    for key in want["model"]:
        assert torch.equal(got["model"][key], want["model"][key]), key


def test_resume_refuses_a_best_file_from_another_run(tmp_path):
    with pytest.raises(Killed):
        KilledAfterEpoch3(quickstart(5), tmp_path, console=QUIET, script=SCRIPT).run(launch=False)
    (tmp_path / "best.pt").unlink()
    with pytest.raises(TrainError, match="does not hold epoch 2"):
        Scripted(quickstart(5), tmp_path, console=QUIET, resume=True, script=SCRIPT).run(
            launch=False
        )


# --- a validation split the metric cannot score is refused before training ---------------------
def _split(target, group=None):
    from rocketc.data.base import Split

    target = np.asarray(target, dtype=np.float32)
    inputs = {"x": np.zeros((len(target), 1), np.float32)}
    return Split(inputs, target, None if group is None else np.asarray(group), None, None)


@pytest.mark.parametrize(
    ("metric", "target", "group", "problem"),
    [
        ("auc", [1, 1, 1], None, "no negative one: its auc is undefined"),
        ("auc", [0], None, "no positive one: its auc is undefined"),
        ("gauc", [1, 0, 1, 0], [1, 2, 3, 4], "no group with a positive and a negative row"),
        ("accuracy", [], None, "has no rows"),
    ],
)
def test_a_split_its_metric_cannot_score_is_refused(metric, target, group, problem):
    from rocketc.train.select import check_scorable

    with pytest.raises(TrainError, match=problem) as caught:
        check_scorable(Selection(metric), _split(target, group))
    assert "data.val_fraction" in str(caught.value)


def test_a_split_with_both_classes_is_scorable():
    from rocketc.train.select import check_scorable

    check_scorable(Selection("gauc"), _split([1, 0, 1, 0], [1, 1, 2, 3]))
    check_scorable(Selection("accuracy"), _split([2]))
