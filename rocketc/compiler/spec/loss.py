"""The spec's `heads:` and `loss:`: label losses, hint, KD, feature hints, the gradient block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from rocketc.compiler.spec.base import SpecModel


class Heads(SpecModel):
    light: str = Field(description="Layer giving the light net's logits (the served output).")
    booster: str = Field(description="Layer giving the booster net's logits.")


class Hint(SpecModel):
    """The paper's hint loss: squared error between the light and the booster outputs.

    rocketc's default compares probabilities, not the paper's logits. In BENCHMARKS.md's
    ablations (test split, paired seeds) the probability hint beats the light net alone on digits
    (+0.44 points) and is level on Fashion-MNIST and MovieLens (-0.08, -0.01), while the paper's
    logit hint is below it on all three (-9.9 and -1.3 points, worse; -0.6, within noise).
    Probabilities are bounded, so the term cannot outgrow the label loss when the booster's
    logits grow large. `on: logits` with the other defaults is the paper's recipe (and `rocketc
    ablate`'s `rocket` row).
    """

    weight: float = Field(default=1.0, ge=0.0, description="lambda in the paper.")
    on: Literal["logits", "probs"] = Field(
        default="probs",
        description="probs: softmax (sigmoid) outputs, the paper's Table 3 (rocketc's default: "
        "level with the light net alone wherever measured). logits: the paper's recipe.",
    )
    reduction: Literal["mean", "sum"] = Field(
        default="mean",
        description="mean: average over batch and classes (F.mse_loss). "
        "sum: sum over classes, average over batch (the paper's ||l(x) - z(x)||^2).",
    )
    normalize: Literal["none", "zscore"] = Field(
        default="none",
        description="zscore: standardise each example's logits on both sides first (Sun et al., "
        "CVPR 2024), so the light net learns the booster's ranking of classes, not its scale. "
        "Multiclass only.",
    )
    temperature: float = Field(
        default=1.0, gt=0.0, description="on: probs only: softmax (sigmoid) of logits / T."
    )
    warmup_epochs: int = Field(
        default=0,
        ge=0,
        description="The weight ramps linearly from 0: epoch e (0-based) trains at "
        "weight * min(1, e / warmup_epochs).",
    )

    @model_validator(mode="after")
    def _temperature_needs_probs(self) -> Hint:
        if self.on == "logits" and self.temperature != 1.0:
            raise PydanticCustomError(
                "hint_temperature",
                "a temperature scales the logits before softmax/sigmoid; it needs on: probs "
                "(a logit hint at T would only rescale the weight by 1/T^2)",
                {"at": "temperature"},
            )
        return self


class KD(SpecModel):
    """Online knowledge distillation from the booster: KL at temperature T, scaled by T^2."""

    weight: float = Field(default=0.0, ge=0.0)
    temperature: float = Field(default=4.0, gt=0.0)
    warmup_epochs: int = Field(
        default=0, ge=0, description="As hint.warmup_epochs: the weight ramps linearly from 0."
    )


class FeatureHint(SpecModel):
    """Match an intermediate light layer to a booster layer (FitNets; attention transfer)."""

    light: str = Field(description="A light layer (the student side).")
    booster: str = Field(description="A booster layer at the same spatial size (the teacher).")
    weight: float = Field(default=1.0, ge=0.0, description="0 switches the term off.")
    kind: Literal["mse", "attention"] = Field(
        default="mse",
        description="mse: squared error, through a training-only 1x1 conv / linear adapter when "
        "widths differ. attention: attention transfer (Zagoruyko & Komodakis, ICLR 2017) on "
        "feature maps: per-example mean over channels of squared activations, L2-normalised.",
    )
    warmup_epochs: int = Field(
        default=0, ge=0, description="As hint.warmup_epochs: the weight ramps linearly from 0."
    )


class Loss(SpecModel):
    light: float = Field(default=1.0, ge=0.0, description="Weight of the light net's label loss.")
    booster: float = Field(default=1.0, ge=0.0, description="Weight of the booster's label loss.")
    hint: Hint = Hint()
    kd: KD = KD()
    feature_hints: list[FeatureHint] = Field(
        default_factory=list,
        description="Hints between intermediate layers, named feature_hint_<i> by position.",
    )
    gradient_block: Literal["booster", "shared", "none"] = Field(
        default="booster",
        description="booster: hint/KD/feature hints never update booster-only weights (the "
        "paper). shared: also the light branch reads the shared output detached (EasyRec "
        "style), so only the booster trains the shared layers. none: no stop-gradient "
        "(ablation).",
    )

    @model_validator(mode="after")
    def _light_learns(self) -> Loss:
        # Without one of these the served net never trains (and with all weights 0 the
        # generated compute_loss would have nothing to sum).
        if not (self.light or self.hint.weight or self.kd.weight):
            raise ValueError(
                "the light net would learn nothing: give light, hint.weight or "
                "kd.weight a weight above 0"
            )
        return self
