"""The spec's `train:`: epochs, batches, optimizer, schedule, best-epoch selection."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rocketc.compiler.spec.base import SpecModel


class Optimizer(SpecModel):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD only.")
    nesterov: bool = Field(default=False, description="SGD only.")
    weight_decay: float = Field(default=0.0, ge=0.0)
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam/AdamW only.")


class StepSchedule(SpecModel):
    name: Literal["step"]
    milestones: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    gamma: float = Field(default=0.2, gt=0.0, description="The paper: x0.2 at 60/120/160.")


class CosineSchedule(SpecModel):
    name: Literal["cosine"]
    min_lr: float = Field(default=0.0, ge=0.0)


class ConstantSchedule(SpecModel):
    name: Literal["constant"]


Schedule = Annotated[StepSchedule | CosineSchedule | ConstantSchedule, Field(discriminator="name")]


# Validation metrics of the light net, by task; `select.metric` picks one of them.
SELECT_METRICS = {"multiclass": ("accuracy", "error", "ce"), "binary": ("gauc", "auc", "logloss")}


class Select(SpecModel):
    """Which epoch's weights the run ships: the best on the light net's validation metric."""

    metric: Literal["accuracy", "error", "ce", "gauc", "auc", "logloss"] | None = Field(
        default=None,
        description="Light net's validation metric to select on (error, ce and logloss: lower "
        "is better). Default: the task's headline, accuracy, or for binary GAUC when the data "
        "has groups, else AUC.",
    )
    patience: int | None = Field(
        default=None,
        ge=1,
        description="Stop after this many epochs without improvement; null: train every epoch.",
    )


class Train(SpecModel):
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=128, ge=1)
    eval_batch_size: int = Field(default=1024, ge=1)
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = ConstantSchedule(name="constant")
    clip_grad_norm: float | None = Field(default=None, gt=0.0)
    seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="Seeds the weights, the batch order and the data split (0 .. 2**63-1).",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: CUDA autocast.")
    select: Select = Select()
    track: Literal["none", "tensorboard", "mlflow"] = Field(
        default="none",
        description="Log every epoch's losses and metrics, the shipped epoch and the run's files "
        "where teams look: TensorBoard event files in the run directory, or an MLflow store "
        "(pip install 'rocketc[track]').",
    )
    track_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; default a local store, mlruns/ in the working "
        "directory (sqlite:///mlruns/mlflow.db, artifacts in mlruns/artifacts).",
    )
