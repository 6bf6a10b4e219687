"""Experiments on a spec: `ablate` (the paper's ablation, rows from `variants`) and `tune` (a
search of the loss recipe with a paired test verdict). Every run goes through `rocketc.train`'s
`Recipe`, the one training path, and `stats` turns paired runs into intervals and verdicts.
"""
