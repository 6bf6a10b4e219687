"""The shipped CNN/MLP twins written by hand, as a PyTorch user would without rocketc.

The overhead part times one training step of these against the generated model. They hold the
same layers in the same order as the generated `RocketNet` (so its weights load by position)
and compute the same loss terms; `bench.overhead` checks that both give the same losses on the
same weights and batch before it times anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class QuickstartTwins(nn.Module):
    """specs/quickstart.yaml: a 64-wide shared layer, a 32-unit light head, a 512x256 booster."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(64, 64)
        self.light = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.booster = nn.Sequential(
            nn.Linear(64, 512),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(256, 10),
        )

    def forward(self, image):
        h = F.relu(self.shared(image))
        return self.light(h), self.booster(h)


class FashionTwins(nn.Module):
    """specs/fashion_mnist_cnn.yaml: a conv stem, a 16-channel light CNN, a 64/128 booster."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.light = nn.Sequential(
            nn.Conv2d(32, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 10),
        )
        self.booster = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, 256),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(256, 10),
        )

    def forward(self, image):
        h = self.stem(image)
        return self.light(h), self.booster(h)


TWINS = {"quickstart": QuickstartTwins, "fashion_mnist_cnn": FashionTwins}


@dataclass(frozen=True)
class Recipe:
    """The loss settings a user would type into their own script."""

    light: float = 1.0
    booster: float = 1.0
    hint_weight: float = 1.0
    hint_on: str = "logits"  # logits | probs
    hint_reduction: str = "mean"  # mean | sum over classes
    hint_normalize: str = "none"  # none | zscore
    hint_temperature: float = 1.0
    kd_weight: float = 0.0
    kd_temperature: float = 4.0
    gradient_block: str = "booster"  # booster | none


def _zscore(logits: torch.Tensor) -> torch.Tensor:
    mean = logits.mean(dim=1, keepdim=True)
    return (logits - mean) / (logits.var(dim=1, keepdim=True) + 1e-7).sqrt()


def rocket_loss(light_logits, booster_logits, target, r: Recipe) -> dict[str, torch.Tensor]:
    """Label losses of both nets, the hint, optional KD, and their weighted total."""
    # Gradient block: the hint and KD see the booster as a constant target.
    teacher = booster_logits.detach() if r.gradient_block == "booster" else booster_logits
    losses = {
        "light": F.cross_entropy(light_logits, target),
        "booster": F.cross_entropy(booster_logits, target),
    }
    total = r.light * losses["light"] + r.booster * losses["booster"]
    if r.hint_weight:
        student, goal = light_logits, teacher
        if r.hint_normalize == "zscore":
            student, goal = _zscore(student), _zscore(goal)
        if r.hint_on == "probs":
            t = r.hint_temperature
            student, goal = F.softmax(student / t, dim=1), F.softmax(goal / t, dim=1)
        squared = (student - goal) ** 2
        losses["hint"] = squared.mean() if r.hint_reduction == "mean" else squared.sum(1).mean()
        total = total + r.hint_weight * losses["hint"]
    if r.kd_weight:
        t = r.kd_temperature
        losses["kd"] = (
            F.kl_div(
                F.log_softmax(light_logits / t, dim=1),
                F.softmax(teacher / t, dim=1),
                reduction="batchmean",
            )
            * t
            * t
        )
        total = total + r.kd_weight * losses["kd"]
    losses["total"] = total
    return losses
