"""Data-parallel training on PyTorch's own machinery: torchrun, process groups, DDP.

rocketc invents no distribution layer. `torchrun --nnodes ... --nproc-per-node ... -m rocketc
train SPEC` starts one `rocketc train` per GPU (or per CPU share) on many machines, and `rocketc
train SPEC --nproc N` starts the very same processes on this one (`launcher`). Each process:

- joins the process group torchrun describes in its environment (`joined`: gloo on CPU, nccl on
  CUDA, one GPU per local rank), with a timeout so a hung peer ends the job, never stalls it;
- trains a DistributedDataParallel copy of the twins on its own shard of the training split
  (`shard_loader`: torch's DistributedSampler, reseeded every epoch), `train.batch_size` being the
  global batch (each of N ranks takes batch_size / N), gradients averaged by all-reduce;
- validates on its shard and all-gathers the logits (`World.shard`, `World.gather`), so every
  rank computes the metrics of the whole validation set and takes the same selection and
  early-stopping decision; only rank 0 writes (metrics, checkpoints, best.pt, export);
- checks at the end that every rank holds the same weights (`in_sync`).

DDP looks for unused parameters only where some parameter gets no gradient from the loss
(`unused_parameters`: a spec with `loss.booster: 0`, say); those keep `grad = None` under DDP as
in one process, so the optimizer leaves them alone in both. Before training, the gradient-flow
audit runs through DDP itself (`audit.run_ddp_audit`): the all-reduce carries no hint gradient
into booster-only weights.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from rocketc.errors import Diagnostic, RocketcError, TrainError
from rocketc.files import write_atomic

__all__ = [
    "SINGLE",
    "World",
    "begin_epoch",
    "check_batch_split",
    "digest",
    "in_sync",
    "joined",
    "launched",
    "on_rank",
    "quiet_console",
    "shard_loader",
    "unused_parameters",
    "wrap",
    "write_summary",
]

TIMEOUT_ENV = "ROCKETC_DIST_TIMEOUT"  # seconds a collective may wait for a peer
DEFAULT_TIMEOUT_S = 300.0
SUMMARY = "distributed.json"
_TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# What gloo and nccl say when a peer is gone; such a RuntimeError becomes a TrainError.
_PEER_LOST = ("gloo", "NCCL", "Connection reset by peer", "Connection closed by peer")


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among `size` processes, and its GPU (local rank)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # gloo | nccl; None: one process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, writes metrics and checkpoints, and exports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self) -> torch.device:
        # nccl moves only CUDA tensors; gloo only CPU ones.
        return (
            torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        )

    def shard(self, split):
        """This rank's contiguous slice of an evaluation split, in memory or streamed
        (`gather` puts them back).

        Rank r takes rows [r*k, (r+1)*k) with k = ceil(n / size); a rank past the end takes the
        last row again, which `gather` drops, so no rank ever predicts on nothing.
        """
        if not self.distributed:
            return split
        n = len(split)
        k = -(-n // self.size)
        start = min(self.rank * k, n - 1)
        stop = max(min(start + k, n), start + 1)
        return split.slice(start, stop)

    def gather(self, local: torch.Tensor, total: int) -> torch.Tensor:
        """Every rank's `shard` rows of a result, in row order, on every rank (on the CPU)."""
        if not self.distributed:
            return local
        k = -(-total // self.size)
        padded = torch.zeros((k, *local.shape[1:]), dtype=local.dtype, device=self.device())
        padded[: min(len(local), k)] = local[:k].to(padded.device)
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded)
        return torch.cat(parts)[:total].cpu()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks of per-rank numbers (each rank's mean training loss per term)."""
        if not self.distributed:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device())
        dist.all_reduce(t)
        return {k: float(v) / self.size for k, v in zip(keys, t.tolist(), strict=True)}

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (what rank 0 read from the run directory)."""
        if not self.distributed:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device())
        return box[0]


SINGLE = World()


# --- joining the process group ----------------------------------------------------------------
def launched() -> bool:
    """Whether torchrun (or `rocketc train --nproc`) started this process as one of several."""
    env = os.environ
    return all(k in env for k in _TORCHRUN_ENV) and int(env["WORLD_SIZE"]) > 1


def timeout() -> datetime.timedelta:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise TrainError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return datetime.timedelta(seconds=seconds)


@contextlib.contextmanager
def joined(device: str) -> Iterator[World]:
    """Join torchrun's process group for the block, then leave it; one process: `SINGLE`.

    `device` is `train.device` (cpu | cuda | auto): CUDA means nccl and the GPU of this local
    rank, made current so the generated code's plain "cuda" lands on it. Inside the block, a
    collective that fails because a peer died or hung becomes a TrainError naming this rank, and
    the errors of ranks other than 0 say which rank they come from.
    """
    if not launched():
        yield SINGLE
        return
    env = os.environ
    world = World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        count = torch.cuda.device_count()
        if world.local_rank >= count:
            raise TrainError(
                f"rank {world.rank} is local rank {world.local_rank} but this machine has "
                f"{count} CUDA device(s); start at most {count} processes per machine"
            )
        torch.cuda.set_device(world.local_rank)
    world = replace(world, backend="nccl" if cuda else "gloo")
    try:
        dist.init_process_group(world.backend, timeout=timeout())
    except (RuntimeError, ValueError) as exc:
        raise TrainError(
            f"rank {world.rank} could not join the other {world.size - 1} process(es) at "
            f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}: {first_line(exc)}"
        ) from None
    try:
        yield world
        # Every rank done with its last collective before any tears its connections down: a
        # rank destroying the group while a peer's gloo threads still finish async work could
        # abort that peer at exit ("terminate called without an active exception", seen once).
        dist.barrier()
    except RocketcError as exc:
        raise on_rank(exc, world) from None
    except RuntimeError as exc:
        if not _peer_lost(exc):
            raise
        raise TrainError(
            f"rank {world.rank} lost contact with the other processes ({first_line(exc)}): "
            f"one of them died or hung (the wait is {TIMEOUT_ENV}, {timeout().seconds} s); "
            "look for its error above, then --resume"
        ) from None
    finally:
        with contextlib.suppress(RuntimeError, ValueError):
            dist.destroy_process_group()


def _peer_lost(exc: BaseException) -> bool:
    return isinstance(exc, dist.DistError) or any(m in str(exc) for m in _PEER_LOST)


def first_line(exc: BaseException) -> str:
    """The gist of a torch.distributed error: its first sentence, without the C++ source."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*", "", lines[0] if lines else "")
    return text.split(". ")[0].rstrip(".") or type(exc).__name__


def on_rank(exc: RocketcError, world: World) -> RocketcError:
    """`exc` with every message prefixed by this rank, for ranks other than 0 (whose errors
    would otherwise print as if they were rank 0's)."""
    if world.is_main:
        return exc
    diagnostics = [
        Diagnostic(f"(rank {world.rank}) {d.message}", d.file, d.pos) for d in exc.diagnostics
    ]
    return type(exc)(diagnostics)


# --- training ---------------------------------------------------------------------------------
def shard_loader(tensors: Sequence[torch.Tensor], batch_size: int, world: World, seed: int):
    """This rank's batches of rows of `tensors`: `batch_size` is the global batch, each rank
    takes its share, sliced straight from the tensors like `train.batch_loader`.

    Returns the loader and its DistributedSampler, whose `set_epoch` must be called before each
    epoch (the shuffle is seeded by seed + epoch, so a resumed run replays the same shards).
    """
    data = torch.utils.data
    check_batch_split(batch_size, world.size)
    dataset = data.TensorDataset(*tensors)
    sampler = data.DistributedSampler(
        dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed
    )
    batches = data.BatchSampler(sampler, batch_size // world.size, drop_last=False)
    return data.DataLoader(dataset, sampler=batches, batch_size=None), sampler


def check_batch_split(batch_size: int, processes: int) -> None:
    """`train.batch_size` is the global batch: it must split evenly over the processes."""
    if batch_size % processes:
        fits = batch_size // processes * processes or processes
        raise TrainError(
            f"train.batch_size {batch_size} (the global batch) does not split evenly over "
            f"{processes} processes; use a multiple of {processes}, e.g. "
            f"--set train.batch_size={fits}"
        )


def begin_epoch(world: World, sampler, seed: int, epoch: int) -> None:
    """Before epoch `epoch` (0-based): this rank's shard order, and its own dropout stream
    (seeded by seed, rank and epoch, so a resumed run draws what an unbroken one would)."""
    sampler.set_epoch(epoch)
    torch.manual_seed(int(np.random.SeedSequence([seed, world.rank, epoch]).generate_state(1)[0]))


def unused_parameters(gen, epochs: int) -> list[str]:
    """Parameters the training loss of some epoch never reaches (gradient None).

    Such a parameter (every booster weight under `loss.booster: 0` and no hint) makes DDP wait
    for a gradient that never comes unless it is told to look for unused parameters, which costs
    a graph traversal per step; so it is told only when this list is not empty. One forward on
    example inputs per distinct set of epoch loss weights (warm-ups change them).
    """
    model = gen.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = model.RocketNet().train()
        inputs, target = model.example_inputs(4), model.example_targets(4)
        params = dict(net.named_parameters())
        unused: set[str] = set()
        seen: list[dict[str, float]] = []
        for epoch in range(epochs):
            weights = model.loss_weights(epoch)
            if weights in seen:
                continue
            seen.append(weights)
            total = model.compute_loss(*net(*inputs), target, weights)["total"]
            grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
            unused |= {n for n, g in zip(params, grads, strict=True) if g is None}
    return sorted(unused)


def wrap(model: torch.nn.Module, world: World, find_unused: bool) -> torch.nn.Module:
    """`model` under DistributedDataParallel (its weights broadcast from rank 0 on the way)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.local_rank] if world.backend == "nccl" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def digest(model: torch.nn.Module) -> str:
    """sha256 of a state dict (names, dtypes, shapes and bytes, in order)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def in_sync(model: torch.nn.Module, world: World) -> list[str]:
    """Every rank's weight digest; a TrainError if they differ (the ranks trained apart)."""
    digests = [digest(model)] * world.size
    if world.distributed:
        dist.all_gather_object(digests, digests[0])
    if len(set(digests)) > 1:
        apart = [r for r, d in enumerate(digests) if d != digests[0]]
        raise TrainError(f"rank(s) {apart} ended with weights different from rank 0's")
    return digests


def write_summary(out_dir: Path, world: World, batch_size: int, extra: dict[str, Any]) -> None:
    """distributed.json: how the run was spread, and `extra` (rank 0 writes it)."""
    summary = {
        "world_size": world.size,
        "backend": world.backend,
        "global_batch_size": batch_size,
        "batch_size_per_rank": batch_size // world.size,
        **extra,
    }
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    write_atomic(out_dir / SUMMARY, text)


def quiet_console():
    """The console of ranks other than 0: prints nowhere, draws no progress bar."""
    from rich.console import Console

    return Console(file=io.StringIO(), quiet=True)
