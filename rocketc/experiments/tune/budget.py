"""Whether a study's runs had time to learn: most runs peaking at their last epoch say not.

A run whose best validation epoch is its last was still improving when it stopped. When that
holds for most runs of a study (light alone, the trials, the verdict seeds), the recipes were
compared before the light net had learnt what its labels teach, where the booster's teaching
has the least to add (BENCHMARKS.md: on Fashion-MNIST no recipe paid at 4 epochs, the tuned
one did at 20), so `rocketc tune` says the budget is short and suggests twice the epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Budget:
    """Where the runs' best validation epochs fell: most at the last, and the budget is short."""

    epochs: int  # per run
    runs: int  # runs that kept a best epoch: light alone, complete trials, verdict seeds
    at_last: int  # of those, the runs whose best epoch was the last

    @property
    def short(self) -> bool:
        return 2 * self.at_last > self.runs

    @property
    def text(self) -> str:
        return (
            f"the budget is short: try --epochs {2 * self.epochs}. In {self.at_last} of "
            f"{self.runs} runs the best validation epoch was the last, epoch {self.epochs}: the "
            "nets were still learning when they stopped. A study keeps its --epochs: run it "
            "with a new -o (or --study)."
        )

    @classmethod
    def of(cls, epochs: int, best_epochs: list[int]) -> Budget | None:
        """From each run's best epoch (1-based; 0, a run that never scored, is left out)."""
        kept = [e for e in best_epochs if e]
        if not kept:
            return None
        return cls(epochs, len(kept), sum(e >= epochs for e in kept))

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "runs": self.runs,
            "best_at_last_epoch": self.at_last,
            "short": self.short,
        }
