"""`rocketc shrink`: cheaper light nets derived from a spec, trained as the light net alone,
with KD and with rocket, and the answer to "how much cheaper can I serve at the same quality?"."""

from rocketc.experiments.shrink.shrinker import ShrinkOptions, shrink

__all__ = ["ShrinkOptions", "shrink"]
