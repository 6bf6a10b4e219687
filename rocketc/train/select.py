"""Best-epoch selection: which epoch's light net a run ships, and when to stop early.

Every epoch the light net's validation metric (`train.select.metric`, default the task's
headline) is offered to a `Selection`. It keeps the best epoch (strictly better only, so ties go
to the earlier epoch; a NaN never improves), counts the epochs since, and says when `patience`
of them passed without improvement. Its state is a small dict, saved in every checkpoint so a
resumed run keeps the best so far.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from rocketc.compiler import Compiled
from rocketc.data.metrics import headline
from rocketc.errors import Diagnostic, TrainError

# Every other metric rocketc reports (accuracy, AUC, GAUC) is better when higher.
LOWER_IS_BETTER = frozenset({"error", "ce", "logloss"})


@dataclass
class Selection:
    metric: str
    patience: int | None = None
    best_epoch: int | None = None  # 1-based, as in metrics.jsonl
    best_value: float | None = None
    last_epoch: int = 0

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def update(self, epoch: int, value: float) -> bool:
        """Record epoch `epoch`'s validation value; True when it is the new best."""
        self.last_epoch = epoch
        if math.isnan(value):
            return False
        if self.best_value is not None:
            better = value > self.best_value if self.higher_is_better else value < self.best_value
            if not better:
                return False
        self.best_epoch, self.best_value = epoch, value
        return True

    @property
    def epochs_without_improvement(self) -> int:
        return self.last_epoch - (self.best_epoch or 0)

    @property
    def patience_spent(self) -> bool:
        return self.patience is not None and self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
        self.last_epoch = state["last_epoch"]

    def summary(self, epochs: int) -> dict[str, Any]:
        """What report.json says about the shipped epoch and why it was chosen."""
        direction = "higher" if self.higher_is_better else "lower"
        if self.best_epoch is None:
            why = f"no epoch had a finite validation {self.metric}; the last epoch is shipped"
        else:
            why = f"best validation {self.metric} of the light net ({direction} is better)"
        return {
            "selected_epoch": self.best_epoch or self.last_epoch,
            "metric": self.metric,
            "value": self.best_value,
            "higher_is_better": self.higher_is_better,
            "patience": self.patience,
            "epochs_trained": self.last_epoch,
            "epochs": epochs,
            "stopped_early": self.last_epoch < epochs,
            "why": why,
        }


def selection_for(compiled: Compiled, grouped: bool) -> Selection:
    """The spec's `train.select`, with the default metric resolved for this data."""
    select = compiled.spec.train.select
    metric = select.metric or headline(compiled.spec.task, grouped)
    if metric == "gauc" and not grouped:
        file, pos = compiled.source.source_map.where(("train", "select", "metric"))
        message = "train.select.metric: gauc needs data with groups (a group column); use auc"
        raise TrainError([Diagnostic(message, file, pos)])
    return Selection(metric, select.patience)


def check_scorable(selection: Selection, split, name: str = "validation") -> None:
    """Refuse, before training, a split on which the selection metric is undefined: every
    epoch would score NaN and the shipped epoch would be chosen on nothing."""
    import numpy as np

    target = np.asarray(split.target)
    rows = len(target)
    problem = None
    if rows == 0:
        problem = "has no rows"
    elif selection.metric in ("auc", "gauc"):
        positives = int((target > 0.5).sum())
        if positives in (0, rows):
            which = "positive" if positives == 0 else "negative"
            problem = f"has {rows:,} row(s) and no {which} one: its {selection.metric} is undefined"
        elif selection.metric == "gauc" and split.group is not None:
            group = np.asarray(split.group)
            both = np.intersect1d(group[target > 0.5], group[target <= 0.5])
            if both.size == 0:
                problem = "has no group with a positive and a negative row: its gauc is undefined"
    if problem is not None:
        raise TrainError(
            f"the {name} split {problem}; give it more rows (data.val_fraction, data.val_size) "
            "or select on another metric (train.select.metric)"
        )
