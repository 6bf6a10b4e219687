"""`rocketc tune`: search the loss recipe on Optuna; judge the best against light-alone.

`space` (what a trial varies), `runs` (one training run, best epoch kept), `tuner` (the study's
phases), `verdict` (paired seeds on the test split), `report` (best.yaml, trials.csv,
report.md).
"""

from rocketc.runtime.tune.tuner import TuneOptions, TuneResult, tune

__all__ = ["TuneOptions", "TuneResult", "tune"]
