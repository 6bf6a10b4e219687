"""`rocketc tune`: search the loss recipe on Optuna; judge the best against light-alone.

`space` (what a trial varies), `runs` (one training run, best epoch kept), `tuner` (the study's
phases), `verdict` (paired seeds on the test split), `budget` (did the runs have time to
learn), `best` (best.yaml: what the verdict says to train), `report` (trials.csv, report.md,
plots, tune.json).
"""

from rocketc.experiments.tune.tuner import TuneOptions, TuneResult, tune

__all__ = ["TuneOptions", "TuneResult", "tune"]
