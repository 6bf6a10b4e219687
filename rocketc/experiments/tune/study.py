"""The words a tune study is told in: its trials' states and recipes, and what a run returns.

Shared by the tuner (which runs the study), the report and best.yaml (which write it down), so
that none of them imports another's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna

from rocketc.compiler import Compiled
from rocketc.compiler.spec import Spec
from rocketc.experiments.tune.budget import Budget
from rocketc.experiments.tune.space import UNSET, Recipe
from rocketc.experiments.tune.verdict import Verdict

State = optuna.trial.TrialState


class StudyRun(Protocol):
    """What the report and best.yaml read of the tuner that ran a study (tuner.Tuner)."""

    compiled: Compiled
    alone_compiled: Compiled  # the spec as light alone: what the verdict's baseline trains
    spec: Spec
    study_name: str
    options: Any  # TuneOptions
    space: Any  # the search space (space.Space)
    seeds: list[int]
    epochs: int


@dataclass
class TuneResult:
    out_dir: Path
    study: optuna.Study
    storage: str
    metric: str
    baseline: dict[str, Any]  # light-alone on validation: seeds, values, best_epochs, mean
    best: optuna.trial.FrozenTrial | None
    verdict: Verdict | None
    budget: Budget | None = None  # None when no run kept a best epoch
    files: list[Path] = field(default_factory=list)
    next_step: str | None = None  # the command that trains best.yaml, and where it writes


def recipe_of(trial: optuna.trial.FrozenTrial) -> Recipe:
    """A trial's recipe as stored (JSON null stands for a key the recipe removes)."""
    return {k: UNSET if v is None else v for k, v in trial.user_attrs.get("recipe", {}).items()}


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state, lower case (complete, pruned, fail, running, waiting)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


def brief(recipe: Recipe) -> str:
    """`hint.weight=0.12 hint.on=logits gradient_block=none` (paths without `loss.`)."""
    parts = []
    for path, value in recipe.items():
        shown = short(value)
        parts.append(f"{path.removeprefix('loss.')}={shown}")
    return " ".join(parts)


def states(study: optuna.Study) -> str:
    """`5 trials: 3 complete, 2 pruned`."""
    by_state = counts(study)
    total = sum(by_state.values())
    parts = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
    return f"{plural(total, 'trial')}: {parts}"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def short(value: Any) -> str:
    """For people: 4 significant digits."""
    if value is UNSET:
        return "unset"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
