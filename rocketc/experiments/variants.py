"""The rows of `rocketc ablate`: what each variant changes in the user's spec, said out loud.

A variant is a real change to the compiled model, not a flag: it fixes some spec keys (`sets`,
dotted paths as `--set` writes them) and may rewrite the layers (`unshare`: each net gets its
own copy of the shared layers). Because a variant's keys win over the user's `--set` values of
the same keys, `overridden_sets` names every `--set` a variant replaced, so the table never
silently shows a different recipe from the one the user asked for. `tuned_variant` turns the
loss section of another spec file (e.g. `rocketc tune`'s best.yaml) into one more row.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rocketc.compiler import Compiled, compile_file, compile_source
from rocketc.compiler.load import Source
from rocketc.compiler.losses import teaching_off
from rocketc.compiler.overrides import set_path
from rocketc.errors import Diagnostic, SpecError


@dataclass(frozen=True)
class FromSpec:
    """The spec's own value at `path` (after `--set`), or `fallback` where it is missing or 0:
    a rocket row always has a hint, with the user's weight when they gave one."""

    path: str
    fallback: float = 1.0

    def resolve(self, data: dict[str, Any]) -> Any:
        return _get(data, tuple(self.path.split("."))) or self.fallback


DROP = "(removed)"  # a `sets` value: take the key out of the spec, where it is there at all


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    trains: str  # "light" | "booster" | "both" | "kd"
    sets: Mapping[str, Any]  # dotted spec key -> value (or FromSpec)
    unshare: bool = False
    origin: str = field(default="", compare=False)  # what wrote `sets`, for error messages

    def resolved(self, data: dict[str, Any]) -> dict[str, Any]:
        """`sets` with every FromSpec read from the user's spec `data` (as compiled), and
        TEACHING_OFF expanded from the loss-term registry as it stands now."""
        out: dict[str, Any] = {}
        for key, value in self.sets.items():
            if key == TEACHING_OFF:
                out.update({k: DROP if v == [] else v for k, v in teaching_off().items()})
            elif isinstance(value, FromSpec):
                out[key] = value.resolve(data)
            else:
                out[key] = copy.deepcopy(value)
        return out

    def edit(self, data: dict[str, Any]) -> list[tuple]:
        """Apply this variant to spec `data` in place; returns the paths it set."""
        values = self.resolved(data)
        if self.unshare:
            _unshare(data)
        paths = []
        for key, value in values.items():
            path = tuple(key.split("."))
            if value == DROP:
                parent = _get(data, path[:-1])
                if isinstance(parent, dict):
                    parent.pop(path[-1], None)
            else:
                paths.append(set_path(data, path, value))
        return paths

    def values(self, data: dict[str, Any]) -> dict[str, Any]:
        """The keys this variant fixes and the values it gives them, flattened for printing."""
        out: dict[str, Any] = {}
        for key, value in self.resolved(data).items():
            if value == DROP and _get(data, tuple(key.split("."))) is None:
                continue  # nothing to remove
            out.update(_flatten(key, value))
        if self.unshare:
            out["layers"] = "each shared layer split into a light and a booster copy"
        return out


# The light net on its labels alone: every term that teaches switched off, as the loss-term
# registry says (a new teaching term is off here without being listed). Single-net variants use
# this loss too: it is the loss of the light slot, which `_Pair` (ablate.py) points at the one
# net it trains. An emptied list (feature hints, which read both nets' features) is removed
# from the spec instead, where it is there at all (the default: none).
TEACHING_OFF = "(every teaching term off)"  # a `sets` key, expanded when a row is resolved
LABELS_ONLY = {"loss.light": 1.0, "loss.booster": 0.0, TEACHING_OFF: True}
HINT = FromSpec("loss.hint.weight")
KD = FromSpec("loss.kd.weight")
# The paper's rocket: hint on plain logits (no z-score; a temperature needs probs), no warm-up,
# gradient block on the booster, no KD. (A tuned spec's warm-ups belong to its `tuned` row.)
ROCKET = {
    "loss.hint.weight": HINT,
    "loss.hint.on": "logits",
    "loss.hint.normalize": "none",
    "loss.hint.temperature": 1.0,
    "loss.hint.warmup_epochs": 0,
    "loss.kd.weight": 0.0,
    "loss.gradient_block": "booster",
}
# Online or sequential KD as Hinton et al. wrote it: from the first step, at the spec's weight
# and temperature.
WITH_KD = {"loss.kd.weight": KD, "loss.kd.warmup_epochs": 0}

VARIANTS = (
    Variant("light_alone", "light net, labels only", "light", LABELS_ONLY),
    Variant("booster_alone", "booster net, labels only", "booster", LABELS_ONLY),
    Variant(
        "kd",
        "booster first, then frozen teacher for a fresh light net",
        "kd",
        {**LABELS_ONLY, **WITH_KD},
    ),
    Variant("rocket", "joint training, hint on logits, gradient block", "both", ROCKET),
    Variant(
        "rocket_no_block",
        "rocket without gradient block",
        "both",
        {**ROCKET, "loss.gradient_block": "none"},
    ),
    Variant(
        "rocket_no_sharing", "rocket, each net its own bottom layers", "both", ROCKET, unshare=True
    ),
    Variant(
        "rocket_kd",
        "rocket plus online KD from the booster",
        "both",
        {**ROCKET, **WITH_KD},
    ),
    Variant(
        "rocket_hint_probs",
        "rocket, hint on probabilities (paper Table 3)",
        "both",
        {**ROCKET, "loss.hint.on": "probs"},
    ),
)


def tuned_variant(recipe: str | Path) -> Variant:
    """The loss section of spec file `recipe` as a row named `tuned` (both nets, joint).

    The file is compiled on its own first, so a mistake in it is reported at its line:col.
    """
    compiled = compile_file(recipe)
    loss = compiled.source.data.get("loss")
    if not isinstance(loss, dict):
        raise SpecError([Diagnostic("a recipe needs a loss: section", str(recipe))])
    what = f"the loss section of {Path(recipe).name}"
    return Variant("tuned", what, "both", {"loss": loss}, origin=f"--recipe {recipe}")


def variant_compiled(compiled: Compiled, variant: Variant, epochs: int | None) -> Compiled:
    """The user's spec with the variant's keys set (and its layers unshared, if it says so)."""
    data = copy.deepcopy(compiled.source.data)
    source_map = compiled.source.source_map
    overrides = dict(source_map.overrides)
    for path in variant.edit(data):
        if variant.origin:
            overrides[path] = variant.origin  # errors in these values are the recipe's
    if epochs is not None:
        data.setdefault("train", {})["epochs"] = epochs
    return compile_source(Source(data, dataclasses.replace(source_map, overrides=overrides)))


def overridden_sets(compiled: Compiled, variant: Variant) -> list[str]:
    """The user's `--set`s whose value this variant replaces (`--set loss.kd.weight=1` under
    `rocket`, which trains without KD)."""
    data = compiled.source.data
    mine = [tuple(key.split(".")) for key in variant.resolved(data)]
    changed = copy.deepcopy(data)
    variant.edit(changed)
    out = []
    for path, origin in compiled.source.source_map.overrides.items():
        overlaps = any(p[: len(path)] == path or path[: len(p)] == p for p in mine)
        if overlaps and _get(changed, path) != _get(data, path):
            out.append(origin)
    return out


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def _flatten(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{key}.{k}", v))
        return out
    return {key: value}


def _unshare(data: dict) -> None:
    """Give each net its own copy of every shared layer (ids `<id>_light` / `<id>_booster`)."""
    layers = data["layers"]
    shared = {layer["id"] for layer in layers if layer.get("role") == "shared"}
    out = []
    for layer in layers:
        if layer.get("role") != "shared":
            ins = layer["in"] if isinstance(layer["in"], list) else [layer["in"]]
            suffix = "_light" if layer.get("role") == "light" else "_booster"
            layer = {**layer, "in": [f"{i}{suffix}" if i in shared else i for i in ins]}
            out.append(layer)
            continue
        for role in ("light", "booster"):
            ins = layer["in"] if isinstance(layer["in"], list) else [layer["in"]]
            out.append(
                {
                    **layer,
                    "id": f"{layer['id']}_{role}",
                    "role": role,
                    "in": [f"{i}_{role}" if i in shared else i for i in ins],
                }
            )
    data["layers"] = out
