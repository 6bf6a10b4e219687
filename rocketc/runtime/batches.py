"""Batches and evaluation: split arrays -> tensors -> batches -> each net's logits -> metrics.

`rocketc train` uses them, and so do ablate, tune and the benchmarks (through `train`, which
re-exports them).
"""

from __future__ import annotations

import numpy as np
import torch

from rocketc.runtime.data import Split
from rocketc.runtime.generated import Generated
from rocketc.runtime.history import NETS
from rocketc.runtime.metrics import evaluate

__all__ = ["batch_loader", "evaluate_nets", "predict_nets", "tensors"]


def tensors(split: Split, weighted: bool = False) -> list[torch.Tensor]:
    """A split's inputs in spec order, then the target; `weighted`: then the sample weights
    (the split's, or ones if it has none), which a weighted spec's train_one_epoch reads."""
    out = [torch.from_numpy(np.ascontiguousarray(a)) for a in split.inputs.values()] + [
        torch.from_numpy(np.ascontiguousarray(split.target))
    ]
    if weighted:
        weight = split.weight if split.weight is not None else np.ones(len(split))
        out.append(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
    return out


def batch_loader(
    split: Split,
    batch_size: int,
    shuffle: torch.Generator | None = None,
    weighted: bool = False,
):
    """Batches sliced straight from the tensors (one indexing op per batch, not per example).
    Training batches of a spec with `data.weight` end with the sample weights (`weighted`).

    Same sampler as DataLoader(shuffle=True, generator=...) uses internally, so the batches, and
    with them resumed runs, are those of a plain DataLoader.
    """
    data = torch.utils.data
    dataset = data.TensorDataset(*tensors(split, weighted))
    order = (
        data.RandomSampler(dataset, generator=shuffle)
        if shuffle is not None
        else data.SequentialSampler(dataset)
    )
    batches = data.BatchSampler(order, batch_size, drop_last=False)
    return data.DataLoader(dataset, sampler=batches, batch_size=None, generator=shuffle)


def predict_nets(
    gen: Generated, model: torch.nn.Module, split: Split, batch_size: int, device: torch.device
) -> dict[str, np.ndarray]:
    """Logits of each net on its own: the light net is evaluated without running the booster."""
    loader = batch_loader(split, batch_size)
    return {
        "light": gen.train.predict(model.light_net(), loader, device).numpy(),
        "booster": gen.train.predict(model.booster_net(), loader, device).numpy(),
    }


def evaluate_nets(
    task: str,
    gen: Generated,
    model: torch.nn.Module,
    split: Split,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    logits = predict_nets(gen, model, split, batch_size, device)
    return {
        net: evaluate(task, logits[net], split.target, split.group, split.weight) for net in NETS
    }
