"""The verdict: does the best recipe's light net beat light-alone on the test split?

Both arms train with the same seeds (paired: the same initial weights, the same batches), each
keeping its best validation epoch; the test metrics are then compared seed by seed. The mean
paired difference and its 95% Student-t interval decide, and anything short of an interval
entirely above 0 says plainly to train the light net alone. The verdict seeds follow the
search's seeds, so none of them helped to pick the recipe.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats

from rocketc.data import Dataset
from rocketc.experiments.stats import paired_interval
from rocketc.experiments.tune.runs import Diverged, score_on_test, train_once
from rocketc.train.generated import Generated


@dataclass
class Verdict:
    metric: str
    trial: int  # the Optuna trial whose recipe was tested
    seeds: list[int]
    rocket: list[float]  # test metric of the best recipe's light net, per seed
    alone: list[float]  # test metric of light-alone, per seed
    rocket_epochs: list[int]  # best validation epoch per seed (1-based)
    alone_epochs: list[int]
    # test metric of the best recipe's booster at the same epoch, per seed: how far ahead of
    # light alone the net the light net imitates is (empty in verdicts from before it was kept)
    booster: list[float] = field(default_factory=list)

    @property
    def diffs(self) -> list[float]:
        return [r - a for r, a in zip(self.rocket, self.alone, strict=True)]

    @property
    def interval(self) -> tuple[float, float, float]:
        return paired_interval(self.diffs)

    @property
    def beats(self) -> bool:
        """Rocket wins only when the whole 95% interval of the difference lies above 0."""
        low = self.interval[1]
        return math.isfinite(low) and low > 0

    @property
    def text(self) -> str:
        mean, low, high = self.interval
        n = len(self.seeds)
        what = (
            f"test {self.metric} {mean:+.4f} on average over {n} paired seeds "
            f"(95% interval [{low:+.4f}, {high:+.4f}])"
        )
        if not all(math.isfinite(v) for v in self.rocket + self.alone):
            return (
                f"undecided: a run did not train (non-finite loss) with some of {n} paired "
                "seeds. Train the light net alone."
            )
        if self.beats:
            return f"rocket beats light-alone: {what}. Train with best.yaml.{self._headroom}"
        if math.isfinite(high) and high < 0:
            return (
                f"rocket is worse than light-alone: {what}. Train the light net alone."
                f"{self._headroom}"
            )
        return (
            f"no evidence that rocket beats light-alone: {what}, an interval that includes 0. "
            f"Train the light net alone.{self._resolution}{self._headroom}"
        )

    @property
    def _resolution(self) -> str:
        """For a gain too small for these seeds to show: how many paired seeds would show it,
        if it were real (the seed-to-seed spread of the differences as measured here)."""
        mean = statistics.fmean(self.diffs)
        spread = statistics.stdev(self.diffs) if len(self.diffs) > 1 else 0.0
        if not mean > 0 or not spread > 0:
            return ""
        needed = seeds_to_resolve(mean, spread)
        if needed is None:
            return (
                f" A gain of {mean:+.4f} against a seed-to-seed spread of {spread:.4f} would "
                f"take more than {MAX_SEEDS} paired seeds to show: far below the noise."
            )
        return (
            f" If the gain of {mean:+.4f} is real, about {needed} paired seeds would show it "
            f"4 times in 5 (--verdict-seeds {needed}); {len(self.diffs)} cannot."
        )

    @property
    def _headroom(self) -> str:
        """How far the booster itself is ahead of light alone: what the light net can learn."""
        if len(self.booster) != len(self.alone) or not all(map(math.isfinite, self.booster)):
            return ""
        booster, alone = statistics.fmean(self.booster), statistics.fmean(self.alone)
        return (
            f" Its booster scores {booster:.4f} on test against {alone:.4f} for light alone "
            f"({booster - alone:+.4f}): the head start the light net can learn from."
        )

    def to_json(self) -> dict[str, Any]:
        mean, low, high = self.interval
        out = asdict(self)
        out.update(mean_diff=mean, ci95=[low, high], beats=self.beats, text=self.text)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


MAX_SEEDS = 100  # past this many paired seeds, a gain is lost in the noise


def seeds_to_resolve(
    mean: float, spread: float, level: float = 0.95, power: float = 0.8
) -> int | None:
    """The fewest paired seeds that show a true gain of `mean` (differences spread as
    `spread`, their standard deviation) with probability `power`: a paired t-test at `level`
    whose interval then lies wholly above 0. None past MAX_SEEDS."""
    for n in range(2, MAX_SEEDS + 1):
        t_level = float(stats.t.ppf(0.5 + level / 2, n - 1))
        t_power = float(stats.t.ppf(power, n - 1))
        if (t_level + t_power) * spread / math.sqrt(n) < mean:
            return n
    return None


def run_verdict(
    trial: int,
    rocket: Generated,
    alone: Generated,
    data: Dataset,
    seeds: list[int],
    metric: str,
    progress: Callable[[str], None] | None = None,
    earlier: Verdict | None = None,
) -> Verdict:
    """Train both arms with every seed; score each best-epoch light net on the test split.

    `earlier`: a verdict on the same trial and metric (one asked for with fewer seeds): the
    seeds it holds are taken from it, not trained again.
    """
    out = Verdict(metric, trial, list(seeds), [], [], [], [])
    kept = {}
    if earlier is not None and earlier.trial == trial and earlier.metric == metric:
        boosters = earlier.booster or [float("nan")] * len(earlier.seeds)
        kept = {
            seed: row
            for seed, *row in zip(
                earlier.seeds,
                earlier.rocket,
                earlier.alone,
                earlier.rocket_epochs,
                earlier.alone_epochs,
                boosters,
                strict=True,
            )
        }
    for seed in seeds:
        if seed in kept:
            if progress is not None:
                progress(f"verdict: seed {seed} kept from the earlier verdict")
            rocket_score, alone_score, rocket_epoch, alone_epoch, booster = kept[seed]
            out.rocket.append(rocket_score)
            out.alone.append(alone_score)
            out.rocket_epochs.append(rocket_epoch)
            out.alone_epochs.append(alone_epoch)
            out.booster.append(booster)
            continue
        for gen, values, epochs, arm in (
            (rocket, out.rocket, out.rocket_epochs, "best recipe"),
            (alone, out.alone, out.alone_epochs, "light alone"),
        ):
            if progress is not None:
                progress(f"verdict: {arm}, seed {seed}")
            try:
                run = train_once(gen, data, seed, metric, keep_best=True)
            except Diverged:
                values.append(float("nan"))
                epochs.append(0)
                if gen is rocket:
                    out.booster.append(float("nan"))
                continue
            values.append(score_on_test(gen, data, run, metric))
            epochs.append(run.best_epoch)
            if gen is rocket:
                out.booster.append(score_on_test(gen, data, run, metric, net="booster"))
    return out
