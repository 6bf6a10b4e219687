"""Training batches of a streamed split: read in the training process, or by loader workers.

With `data.workers: 0` (`StreamLoader` alone) the training process reads, decodes (pyarrow ->
pandas -> `Preprocessor.encode`) and batches each record batch itself, so reading and training
take turns. With W workers a torch `DataLoader` runs W background processes: worker w of rank r
of R reads shard r + R * w of R * W (`StreamedSplit.blocks`; a rank's workers together read
what the rank alone would when the file has enough row groups for both) and shuffles it in its
own buffer with a generator seeded from the run's (DataLoader's base seed + w; under DDP the
run's generator is seeded by seed, rank and epoch), while the training process steps on the
rows they have ready. A worker sends `CHUNK_ROWS` rows at a time, one tensor per column, which
the training process cuts into batches: sent batch by batch, the tensors cost more than the
reading saved (14x slower than no workers at 128 rows a batch, measured). Chunks interleave
worker by worker, in an order fixed by the seed. Memory: the shuffle buffers together hold
`buffer_rows` (each worker a W-th), plus W x `PREFETCH` chunks waiting, plus each worker's
pyarrow read-ahead.

Each worker ends on its own partial batch, so an epoch can take up to W - 1 more steps than
without workers. One process pads nothing: each train row once per epoch. Under DDP every
rank must take the same number of steps, so a rank whose workers' batches are fewer than the
busiest rank's adds whole batches of its workers' own first rows, one worker after another
(`extra_batches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from rocketc.data.stream import BUFFER_ROWS
from rocketc.errors import Diagnostic, RocketcError

if TYPE_CHECKING:
    from rocketc.data.stream import StreamedSplit

PREFETCH = 2  # chunks each worker prepares ahead of the training step
CHUNK_ROWS = 16_384  # rows a worker sends at once: a tensor per column, not one per batch


def stream_loader(
    split: StreamedSplit,
    batch_size: int,
    shuffle: torch.Generator | None = None,
    weighted: bool = False,
    buffer_rows: int = 0,
    workers: int = 0,
) -> StreamLoader:
    """One process: batches shuffled with the run's generator `shuffle` (None: file order),
    read by `workers` background processes (0: by this one)."""
    rows = buffer_rows or BUFFER_ROWS
    return StreamLoader(split, batch_size, shuffle, weighted, rows, workers=workers)


def shard_loader(
    split: StreamedSplit,
    batch_size: int,
    rank: int,
    world: int,
    seed: int,
    weighted: bool = False,
    workers: int = 0,
) -> StreamLoader:
    """Rank `rank` of `world`: its share of the train rows, in batches of batch_size // world,
    shuffled by a generator seeded per epoch (call `set_epoch`, as on a DistributedSampler),
    read by `workers` background processes (0: by this one). Shards are padded, as
    DistributedSampler pads, with repeats of the shard's first rows so every rank takes the
    same number of steps."""
    options = {"workers": workers, "rank": rank, "world": world, "seed": seed}
    return StreamLoader(split, batch_size // world, None, weighted, BUFFER_ROWS, **options)


class StreamLoader:
    """Batches of a streamed split: shuffled within a buffer (see stream.py's docstring), or in
    file order with `shuffle` None; with `workers`, read by that many background processes."""

    def __init__(
        self,
        split: StreamedSplit,
        batch_size: int,
        shuffle: torch.Generator | None,
        weighted: bool,
        buffer_rows: int,
        *,
        workers: int = 0,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
    ):
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.weighted, self.buffer_rows = weighted, max(buffer_rows, batch_size)
        self.workers, self.rank, self.world, self.seed = workers, rank, world, seed
        if workers:
            self.extra = extra_batches(split, batch_size, rank, world, workers)

    def rows(self) -> int:
        """Rows per epoch without workers: the split, or a shard padded to the largest shard."""
        return int(self.split.shard_sizes(self.world).max())

    def __len__(self) -> int:
        if self.workers:
            sizes = self.split.shard_sizes(self.world * self.workers)
            mine = sizes[self.rank :: self.world]  # shard rank + world * w is worker w's
            return sum(math.ceil(n / self.batch_size) for n in mine) + sum(self.extra)
        return math.ceil(self.rows() / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """A shard's shuffle for epoch `epoch` (0-based): seeded by seed, rank and epoch."""
        state = np.random.SeedSequence([self.seed, self.rank, epoch]).generate_state(1)[0]
        self.shuffle = torch.Generator().manual_seed(int(state))

    def __iter__(self):
        if self.workers:
            yield from self._from_workers()
            return
        if self.shuffle is not None:  # as DataLoader does: its base seed comes first
            torch.empty((), dtype=torch.int64).random_(generator=self.shuffle)
        short = self.rows() - self.split.shard_rows(self.rank, self.world)
        blocks = self.split.blocks(self.rank, self.world)
        size, rows = self.batch_size, self.buffer_rows
        for buffer, upto, last in _buffers(blocks, size, self.shuffle, self.weighted, rows, short):
            yield from _cut(buffer, upto, size)
            if last and self.shuffle is not None:  # RandomSampler draws one more permutation
                torch.randperm(upto, generator=self.shuffle)  # at its end: the next epoch alike

    def _from_workers(self):
        """The workers' batches, cut from the chunks they send. The DataLoader draws its base
        seed from the run's generator (a fresh one for file order, so the global RNG, which
        dropout draws from, is left as it is); the workers start anew every epoch, with the
        epoch's seeds."""
        loader = torch.utils.data.DataLoader(
            _WorkerShards(self),
            batch_size=None,
            num_workers=self.workers,
            generator=self.shuffle if self.shuffle is not None else torch.Generator(),
            worker_init_fn=_one_thread,
            prefetch_factor=PREFETCH,
        )
        for chunk in loader:
            if isinstance(chunk, _Failed):
                raise chunk.error
            yield from _cut(chunk, len(chunk[0]), self.batch_size)


def extra_batches(split: StreamedSplit, batch_size: int, rank: int, world: int, workers: int):
    """Whole batches of padding each of rank `rank`'s workers adds so that every rank takes as
    many steps as the busiest: the rank's shortfall, dealt one batch at a time to its workers
    that have rows (a worker without rows has none to repeat). One process: none."""
    sizes = split.shard_sizes(world * workers).reshape(workers, world)  # [w, r]: shard r + world*w
    steps = np.ceil(sizes / batch_size).astype(np.int64).sum(axis=0)  # per rank
    extra = [0] * workers
    able = [w for w in range(workers) if sizes[w, rank]] or list(range(workers))
    for k in range(int(steps.max() - steps[rank])):
        extra[able[k % len(able)]] += 1
    return extra


class _WorkerShards(torch.utils.data.IterableDataset):
    """What each loader worker iterates: its shard's rows in chunks of whole batches (but for
    its last), cut into batches by the training process (see the module docstring). A user's
    mistake found while reading (a bad value in some row) comes back as a `_Failed`,
    since the DataLoader would re-raise it wrapped in the worker's traceback."""

    def __init__(self, loader: StreamLoader):
        super().__init__()
        self.loader = loader

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        at, size = self.loader, self.loader.batch_size
        shard, shards = at.rank + at.world * info.id, at.world * info.num_workers
        shuffle = None if at.shuffle is None else torch.Generator().manual_seed(info.seed)
        rows = max(at.buffer_rows // info.num_workers, size)
        pad = at.extra[info.id] * size
        chunk = max(CHUNK_ROWS // size, 1) * size
        buffers = _buffers(at.split.blocks(shard, shards), size, shuffle, at.weighted, rows, pad)
        try:
            for buffer, upto, _ in buffers:
                for a in range(0, upto, chunk):
                    yield [c[a : min(a + chunk, upto)] for c in buffer]
        except RocketcError as exc:
            yield _Failed(type(exc), exc.diagnostics)


@dataclass
class _Failed:
    """A worker's `RocketcError`, re-raised in the training process as it was raised."""

    kind: type[RocketcError]
    diagnostics: list[Diagnostic]

    @property
    def error(self) -> RocketcError:
        return self.kind(self.diagnostics)


def _one_thread(worker_id: int) -> None:
    """A worker's torch and pyarrow use one thread each: W workers want W cores, and the
    training process keeps its own."""
    import pyarrow

    torch.set_num_threads(1)
    pyarrow.set_cpu_count(1)


def _buffers(blocks, batch_size: int, shuffle, weighted: bool, buffer_rows: int, short: int):
    """Buffers of `blocks`' rows (padded with `short` repeats of their first rows), each
    permuted with `shuffle`, with the rows to cut from it and whether it is the last: a full
    buffer gives its whole batches (a partial batch is carried into the next), the last one
    whatever is left."""
    pending: list[list[torch.Tensor]] = []
    held = 0
    for inputs, target, weight in blocks:
        columns = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()]
        columns.append(torch.from_numpy(np.ascontiguousarray(target)))
        if weighted:
            w = weight if weight is not None else np.ones(len(target))
            columns.append(torch.from_numpy(np.asarray(w, dtype=np.float32)))
        if short:  # pad the shard with repeats of its first rows
            again = torch.arange(short) % len(columns[0])
            columns = [torch.cat([c, c[again]]) for c in columns]
            short = 0
        pending.append(columns)
        held += len(columns[0])
        if held >= buffer_rows:
            buffer = _permute(pending, shuffle)
            full = held // batch_size * batch_size
            yield buffer, full, False
            pending, held = [[c[full:] for c in buffer]], held - full
    if held:
        yield _permute(pending, shuffle), held, True


def _permute(pending, shuffle):
    """The held rows as one tensor per column, permuted with `shuffle` (None: as they came)."""
    buffer = [torch.cat(parts) for parts in zip(*pending, strict=True)]
    if shuffle is None:
        return buffer
    order = torch.randperm(len(buffer[0]), generator=shuffle)
    return [c[order] for c in buffer]


def _cut(buffer, upto: int, batch_size: int):
    for a in range(0, upto, batch_size):
        yield tuple(c[a : min(a + batch_size, upto)] for c in buffer)
