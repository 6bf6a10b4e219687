"""One training run inside `rocketc tune`: a recipe (or light-alone) with one seed.

Each run is a `Recipe`, the one training path of `rocketc train`: the light net is scored on
the validation split after every epoch and the epoch `train.select` picks is the trial's value
(not the last). The score is the task's headline metric: accuracy, or GAUC (AUC without
groups) for binary.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console

from rocketc.compiler import Compiled, compile_source
from rocketc.compiler.load import Source
from rocketc.data import Dataset
from rocketc.data.metrics import evaluate
from rocketc.experiments.variants import VARIANTS
from rocketc.train.batches import eval_loader
from rocketc.train.generated import Generated
from rocketc.train.recipe import Diverged as RecipeDiverged
from rocketc.train.recipe import Recipe
from rocketc.train.tracking import NONE, Tracker

# on_epoch(epoch (0-based), value so far): may raise (Optuna's TrialPruned) to stop the run.
EpochHook = Callable[[int, float], None]


class Diverged(Exception):
    """The loss went non-finite: the recipe cannot train this net (`epoch N: why`)."""


@dataclass
class RunOutcome:
    seed: int
    values: list[float]  # the light net's validation metric after each epoch
    best_epoch: int  # 1-based; 0 when no epoch gave a finite value
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def best(self) -> float:
        return self.values[self.best_epoch - 1] if self.best_epoch else float("nan")


def light_alone_compiled(compiled: Compiled) -> Compiled:
    """The spec trained as light-alone: labels only, booster weight 0 (ablate's `light_alone`).

    The whole RocketNet still runs, so both arms of a paired comparison start from the same
    weights and draw the same random numbers; with no loss term reading the booster, only the
    light net's weights (shared + light) move, as if it were trained on its own.
    """
    data = copy.deepcopy(compiled.source.data)
    {v.name: v for v in VARIANTS}["light_alone"].edit(data)
    loss = data["loss"]
    loss["gradient_block"] = "booster"  # `shared` would leave the shared layers untrained
    loss.pop("feature_hints", None)
    return compile_source(Source(data, compiled.source.source_map))


def train_once(
    gen: Generated,
    data: Dataset,
    seed: int,
    metric: str,
    on_epoch: EpochHook | None = None,
    keep_best: bool = False,
    console: Console | None = None,
    label: str = "",
    tracker: Tracker = NONE,
) -> RunOutcome:
    """Train from scratch with `seed` as `rocketc train` does (`Recipe`: the epoch
    `train.select` picks on validation is kept); record the light net's validation `metric`
    after each epoch, and the selected epoch's weights when `keep_best`."""
    out = RunOutcome(seed, [], 0)

    def after_epoch(recipe: Recipe) -> None:
        out.values = recipe.values(metric)
        out.best_epoch = recipe.selection.best_epoch or 0
        if on_epoch is not None:
            on_epoch(len(out.values) - 1, out.best)

    console = console or Console(quiet=True)  # tune draws its own bar over the trials
    recipe = Recipe(
        gen, data, seed=seed, console=console, label=label, on_epoch=after_epoch, tracker=tracker
    )
    try:
        recipe.run(test=False)
    except RecipeDiverged as exc:
        raise Diverged(str(exc).removeprefix("training stopped in ")) from None
    if keep_best:
        out.state = recipe.best_state
    return out


def score(
    task: str,
    gen: Generated,
    model: torch.nn.Module,
    split,
    metric: str,
    batch_size: int,
    device: torch.device,
    net: str = "light",
) -> float:
    """The light (or booster) net's `metric` on `split`, evaluated without running the other."""
    alone = model.light_net() if net == "light" else model.booster_net()
    logits = gen.train.predict(alone, eval_loader(split, batch_size), device)
    return float(evaluate(task, logits.numpy(), split.target, split.group, split.weight)[metric])


def score_on_test(
    gen: Generated, data: Dataset, run: RunOutcome, metric: str, net: str = "light"
) -> float:
    """The light net (or `net="booster"`) of `run`'s best epoch, scored on the test split."""
    settings = gen.train.Settings(seed=run.seed)
    device = gen.train.resolve_device(settings.device)
    model = gen.model.RocketNet().to(device)
    if run.state is not None:
        model.load_state_dict(run.state)
    return score(
        gen.compiled.spec.task, gen, model, data.test, metric, settings.eval_batch_size, device, net
    )


def describe_runs(runs: list[RunOutcome]) -> dict[str, Any]:
    """What a trial records per seed: best value and the epoch it came from."""
    return {
        "seeds": [r.seed for r in runs],
        "values": [r.best for r in runs],
        "best_epochs": [r.best_epoch for r in runs],
    }
