"""Known recipes a new study tries first, right after the spec's own.

A sampler that starts from nothing spends its first trials on random corners of the space; on a
budget of a dozen trials that decides the study. These are the recipes with evidence behind
them, each a small edit of the spec's own loss section, so each trial answers one question:

- the paper's hint without its gradient block (mutual learning: on Fashion-MNIST this was the
  only recipe that beat light-alone in issue 8's hand-written reference, +1.2 points);
- the hint on probabilities (the paper's Table 3 alternative; it tames the booster's growing
  logits, which the plain logit hint makes the light net chase);
- z-scored logits (Sun et al., CVPR 2024: the light net matches the booster's ranking of the
  classes, not its scale; multiclass only);
- a warm-up of a quarter of the epochs (the hint bites once the booster is worth imitating).

A book entry the space cannot express (a dimension fixed, or a value outside its range) or that
the spec refuses is skipped, as is one equal to a recipe already queued.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rocketc.compiler.spec import Spec
from rocketc.experiments.tune.space import UNSET, Dimension, Recipe, apply_recipe, spec_params


def book(spec: Spec, epochs: int) -> list[tuple[str, Recipe]]:
    """(name, recipe) of each known recipe, as edits of the spec's loss section."""
    weight = spec.loss.hint.weight or 0.3  # a spec without a hint gets a moderate one
    logits = {"loss.hint.weight": weight, "loss.hint.on": "logits", "loss.hint.temperature": UNSET}
    entries: list[tuple[str, Recipe]] = [
        ("no gradient block", {"loss.hint.weight": weight, "loss.gradient_block": "none"}),
        ("hint on probabilities", {"loss.hint.weight": weight, "loss.hint.on": "probs"}),
    ]
    if spec.task == "multiclass":
        entries.append(("z-scored logit hint", {**logits, "loss.hint.normalize": "zscore"}))
    if epochs >= 4:
        warmup = {"loss.hint.weight": weight, "loss.hint.warmup_epochs": epochs // 4}
        entries.append(("hint warm-up", warmup))
    return entries


def book_params(
    space: list[Dimension], spec: Spec, data: dict[str, Any], epochs: int
) -> list[tuple[str, dict[str, Any]]]:
    """The Optuna parameters of each book recipe the space can hold, duplicates dropped."""
    seen = [spec_params(space, spec)]
    out = []
    for name, recipe in book(spec, epochs):
        try:
            edited = Spec.model_validate(apply_recipe(data, recipe))
        except ValidationError:
            continue  # e.g. a z-scored hint the spec's task refuses
        if not _holds(space, edited, recipe):
            continue
        params = spec_params(space, edited)
        if params not in seen:
            seen.append(params)
            out.append((name, params))
    return out


def _holds(space: list[Dimension], spec: Spec, recipe: Recipe) -> bool:
    """Whether every path the recipe sets is searched and can take its new value."""
    from rocketc.experiments.tune.space import spec_value

    dims = {d.path: d for d in space}
    for path, value in recipe.items():
        if value is UNSET:
            continue
        dim = dims.get(path)
        if dim is None or dim.kind == "fixed":
            return False
        if dim.params_for(spec_value(spec, path)) is None:
            return False
    return True
