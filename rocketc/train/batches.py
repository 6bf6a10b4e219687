"""Batches and evaluation: split arrays -> tensors -> batches -> each net's logits -> metrics.

`rocketc train` uses them, and so do ablate, tune and the benchmarks (through `train`, which
re-exports them).
"""

from __future__ import annotations

import numpy as np
import torch

from rocketc.data import Split
from rocketc.data.metrics import evaluate
from rocketc.train.generated import Generated
from rocketc.train.streamload import stream_loader

__all__ = [
    "batch_loader",
    "eval_loader",
    "train_loader",
    "evaluate_nets",
    "predict_each",
    "predict_nets",
    "score_nets",
    "tensors",
]


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


def train_loader(
    split, batch_size: int, shuffle: torch.Generator | None = None, weighted: bool = False
):
    """One process's training batches of a split: `batch_loader` over an in-memory `Split`'s
    arrays, or a streamed split's file read again every epoch (data/stream.py), by the spec's
    `data.workers` loader workers."""
    if isinstance(split, Split):
        return batch_loader(split, batch_size, shuffle, weighted)
    return stream_loader(split, batch_size, shuffle, weighted, workers=split.workers)


def eval_loader(split, batch_size: int):
    """A split's (inputs..., target) batches in row order, to score: sliced from an in-memory
    `Split`'s arrays, or read from a streamed split's file (data/stream.py)."""
    if isinstance(split, Split):
        return batch_loader(split, batch_size)
    return stream_loader(split, batch_size)


class _SideBySide(torch.nn.Module):
    """Several nets, each on its own: one pass over a split scores them all (a streamed split is
    read once, not once per net)."""

    def __init__(self, nets: dict[str, torch.nn.Module]):
        super().__init__()
        self.names = list(nets)
        self.nets = torch.nn.ModuleList(nets.values())

    def forward(self, *inputs):
        return tuple(net(*inputs) for net in self.nets)


def predict_each(
    gen: Generated, nets: dict[str, torch.nn.Module], split, batch_size: int, device: torch.device
) -> dict[str, np.ndarray]:
    """Logits of each net on its own (the light net is evaluated without running the booster)."""
    both = _SideBySide(nets)
    logits = gen.train.predict(both, eval_loader(split, batch_size), device)
    return {name: out.numpy() for name, out in zip(both.names, logits, strict=True)}


def predict_nets(
    gen: Generated, model: torch.nn.Module, split, batch_size: int, device: torch.device
) -> dict[str, np.ndarray]:
    """Logits of the twin's light and booster net, each on its own."""
    nets = {"light": model.light_net(), "booster": model.booster_net()}
    return predict_each(gen, nets, split, batch_size, device)


def score_nets(
    task: str,
    gen: Generated,
    nets: dict[str, torch.nn.Module],
    split,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Each net's metrics on a split, in memory or streamed."""
    logits = predict_each(gen, nets, split, batch_size, device)
    return {
        net: evaluate(task, out, split.target, split.group, split.weight)
        for net, out in logits.items()
    }


def evaluate_nets(
    task: str,
    gen: Generated,
    model: torch.nn.Module,
    split,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Both nets' metrics on a split, in memory or streamed."""
    nets = {"light": model.light_net(), "booster": model.booster_net()}
    return score_nets(task, gen, nets, split, batch_size, device)
