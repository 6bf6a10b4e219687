"""The trainings of a shrink: per size, the light net alone, KD and rocket; once per seed, the
booster alone (the KD rows' teacher: the booster and the layers it shares do not change with the
light net's size, so one teacher serves every size of a seed).

Each is a run of `Recipe`, the one training path of `rocketc train`: every net is scored on the
test split at the epoch `train.select` picks on validation, the one `train` would ship. The rows
are ablate's (`variants.py`): `light_alone` and `kd` as there; `rocket` trains the spec's own
loss section (or `--recipe`'s), which is what `shrunk.yaml` will train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from rocketc.compiler import Compiled
from rocketc.compiler.sizes import Size
from rocketc.data import Dataset
from rocketc.experiments.ablate import (
    booster_only,
    light_only,
    selected_epochs,
    student_of,
    train_part,
    variant_compiled,
)
from rocketc.experiments.variants import VARIANTS, Variant
from rocketc.train.generated import Generated, load_generated
from rocketc.train.recipe import whole
from rocketc.train.tracking import NONE, Tracker

ARMS = ("light_alone", "kd", "rocket")
_BY_NAME = {v.name: v for v in VARIANTS}
SPEC_LOSS = Variant("rocket", "the spec's loss section", "both", {})


@dataclass
class Arm:
    """One kind of training of one size: its spec and its generated code."""

    name: str  # "light_alone" | "kd" | "rocket" | "booster_alone"
    size: str
    compiled: Compiled
    gen: Generated
    code: str = ""  # the generated model.py: part of what a stored training was

    @property
    def key(self) -> str:
        return f"{self.size}.{self.name}"


def arms_of(
    size: Size, epochs: int | None, recipe: Variant | None, code_dir: Path
) -> dict[str, Arm]:
    """The three arms of `size` (compiled and rendered into `code_dir/<size>/<arm>`)."""
    variants = {
        "light_alone": _BY_NAME["light_alone"],
        "kd": _BY_NAME["kd"],
        "rocket": recipe or SPEC_LOSS,
    }
    out = {}
    for name, variant in variants.items():
        compiled = variant_compiled(size.compiled, variant, epochs)
        where = code_dir / size.name / name
        gen = load_generated(compiled, where)
        out[name] = Arm(name, size.name, compiled, gen, (where / "model.py").read_text())
    return out


def booster_arm(full: Size, epochs: int | None, code_dir: Path) -> Arm:
    compiled = variant_compiled(full.compiled, _BY_NAME["booster_alone"], epochs)
    where = code_dir / "booster_alone"
    gen = load_generated(compiled, where)
    return Arm("booster_alone", "booster", compiled, gen, (where / "model.py").read_text())


def train_booster(
    arm: Arm, data: Dataset, seed: int, console: Console, tracker: Tracker = NONE
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The booster alone with `seed`: its test scores, and its weights (the KD teacher)."""
    label = f"booster seed {seed}"
    recipe = train_part(arm.gen, data, seed, booster_only, label, console, tracker)
    result = _result(recipe, seed)
    teacher = recipe.part.module.booster_part
    return result, {k: v.detach().clone() for k, v in teacher.state_dict().items()}


def train_arm(
    arm: Arm,
    data: Dataset,
    seed: int,
    console: Console,
    teacher: dict[str, torch.Tensor] | None = None,
    booster_gen: Generated | None = None,
    tracker: Tracker = NONE,
) -> dict[str, Any]:
    """One arm of one size with `seed`, from scratch; `kd` needs the seed's teacher weights."""
    label = f"{arm.size} {arm.name} seed {seed}"
    if arm.name == "kd":
        assert teacher is not None and booster_gen is not None
        torch.manual_seed(seed)
        net = booster_gen.model.RocketNet().booster_net()
        net.load_state_dict(teacher)
        for p in net.parameters():
            p.requires_grad_(False)
        recipe = train_part(arm.gen, data, seed, student_of(net), label, console, tracker)
    else:
        part = light_only if arm.name == "light_alone" else whole
        recipe = train_part(arm.gen, data, seed, part, label, console, tracker)
    return _result(recipe, seed)


def _result(recipe, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "seconds": recipe.result.seconds}
    out["epochs"] = {recipe.part.select: selected_epochs(recipe)}
    out.update(recipe.result.test)
    return out
