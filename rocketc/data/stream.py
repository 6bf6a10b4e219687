"""Streamed tables: a CSV or Parquet file read in record batches, so memory stays bounded.

Chosen by `data.stream: true`, or automatically for a file over `STREAM_BYTES`. One pass over
the file (pyarrow's dataset API, `READ_ROWS` rows at a time) fits the run's `Preprocessor` on the
train rows (streamfit.py: vocabularies bounded by the spec's vocab, hashed ids by their buckets,
dense columns by their moments) and keeps, for the val and test rows only, what their metrics
need: target, weight and group id (64-bit hashes of the group values, numbered at the end).

Every split is then a `StreamedSplit`, read from the file whenever it is iterated; a bad row is
named by its row in the file. The split is the in-memory path's seeded `random_split` over the
row count, kept as one byte per row (10 MB for 10M rows). The train split's rows, in file order,
fill a shuffle buffer of `buffer_rows` every epoch; each full buffer is permuted with the run's
generator and cut into batches (a partial batch is carried into the next buffer). Val and test
are scored in file order, both nets in one pass, and a few of their rows are read into memory
(`head`) for export and latency. Equivalence (without loader workers): when the buffer holds
the whole train split, the batches are exactly the in-memory `batch_loader`'s for the same
generator, and the metrics the in-memory path's (dense values equal up to the last bits of the
mean/std, merged per block).

Under DDP each rank streams its own share of the train split, and with `data.workers` each loader
worker its share of its rank's (rocketc/train/streamload.py batches it for training): one
scheme serves both, shard k of n. A Parquet
file with at least n row groups: shard k reads only row groups k, k + n, ... (their file offsets
come from the footer's row counts), so the shards share the reading. Otherwise (a CSV file, or
fewer row groups than shards) every shard reads the whole file and keeps every n-th train row
from the k-th. Either way every rank takes the same number of steps: without workers a shorter
shard is padded with repeats of its first rows to the longest one's length (with workers, see
streamload.py).

Held in memory, whatever the file size: the split byte per row, per val/test row a target, a
weight and a group id, the fitted features, and the shuffle buffer (shared out among the loader
workers, if any). Not bounded by this module: the vocabularies' size (the spec's vocab), and
pyarrow's read-ahead of two record batches (per worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rocketc.compiler.spec import Spec, TabularData
from rocketc.data.base import Dataset, Split, bad_labels, make_target, with_notes
from rocketc.data.encode import data_seed, split_sizes
from rocketc.data.fields import raw_columns
from rocketc.data.preprocess import Preprocessor, label_info
from rocketc.data.streamfit import Fit, file_rows_error
from rocketc.data.tablecheck import (
    bucketized,
    check_columns,
    check_weight_column,
    columns_text,
    existing_file,
    no_missing,
    numeric,
)
from rocketc.errors import DataError

STREAM_BYTES = 256 * 2**20  # a larger file is streamed unless data.stream says otherwise
READ_ROWS = 65_536  # rows per record batch read
BUFFER_ROWS = 262_144  # rows per shuffle buffer

TRAIN, VAL, TEST = 0, 1, 2


def wanted(data: TabularData) -> bool:
    """Stream this table? `data.stream` when set; otherwise for a large file (not with split_by,
    which sorts the whole table)."""
    if data.stream is not None:
        return data.stream
    path = Path(data.path)
    return not data.split_by and path.is_file() and path.stat().st_size > STREAM_BYTES


class StreamedSplit:
    """One split of a streamed table, read from the file whenever it is iterated: the train
    split every epoch, val and test whenever they are scored. An evaluation split holds only
    what its metrics need per row (target, weight, group id); the train split nothing."""

    def __init__(self, table: Table, split: int, rows: int, **held):
        self.table, self.split, self.rows = table, split, rows
        self.start, self.stop = 0, rows  # a window of the split's rows: see `slice`
        self.target: np.ndarray | None = held.get("target")
        self.weight: np.ndarray | None = held.get("weight")
        self.group: np.ndarray | None = held.get("group")
        self.positive_rate: float = held.get("positive_rate", 0.0)

    def __len__(self) -> int:
        return self.stop - self.start

    def identity(self) -> str:
        """What the run fingerprint hashes for it: the file, its size and change time, the
        split and the fitted preprocessing (the rows themselves are never held at once)."""
        path = Path(self.table.data.path)
        stat = path.stat()
        member = np.packbits(self.table.member == self.split).tobytes()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:" + (
            f"{hash_bytes(member)}:{self.table.preprocess.dumps()}"
        )

    def slice(self, start: int, stop: int) -> StreamedSplit:
        """Rows [start, stop) of the split (in file order), still read from the file: each
        rank's share of an evaluation split."""
        part = StreamedSplit(self.table, self.split, self.rows)
        part.start, part.stop = self.start + start, self.start + stop
        for name in ("target", "weight", "group"):
            value = getattr(self, name)
            setattr(part, name, None if value is None else value[start:stop])
        return part

    def head(self, n: int) -> Split:
        """The first `n` rows, in memory: real rows to export, time and count MACs on."""
        part = self.slice(0, min(n, len(self)))
        blocks = list(part.blocks())
        inputs = {k: np.concatenate([b[0][k] for b in blocks]) for k in blocks[0][0]}
        return Split(inputs, part.target, part.group, None, part.weight)

    @property
    def workers(self) -> int:
        """The spec's `data.workers`: background processes reading its training batches."""
        return self.table.data.workers

    def shard_rows(self, shard: int, shards: int) -> int:
        """Rows of the split that shard `shard` of `shards` reads (`blocks(shard, shards)`)."""
        return int(self.shard_sizes(shards)[shard])

    def shard_sizes(self, shards: int) -> np.ndarray:
        """Rows of the split that each of `shards` shards reads, in one pass over the row
        groups' counts."""
        groups = self.table.shard_groups(0, shards)
        if groups is None:
            n = len(self)
            return n // shards + (np.arange(shards) < n % shards)
        rows = self.table.group_rows(self.split)
        return np.bincount(np.arange(len(rows)) % shards, weights=rows).astype(np.int64)

    def blocks(self, shard: int = 0, shards: int = 1):
        """(inputs, target, weight) of the split's rows in each record batch, in file order
        (with `shards` > 1: of shard `shard`'s rows only); it stops reading past its window."""
        table = self.table
        name = Path(table.data.path).name
        groups = table.shard_groups(shard, shards)
        if groups is None:
            frames = _frames(table.data, table.columns)
        else:
            frames = _group_frames(table.data, table.columns, groups, table.group_starts)
        seen = 0  # rows of the split in earlier record batches
        for offset, frame in frames:
            keep = np.flatnonzero(table.member[offset : offset + len(frame)] == self.split)
            position = seen + np.arange(len(keep))
            seen += len(keep)
            chosen = (position >= self.start) & (position < self.stop)
            if shards > 1 and groups is None:
                chosen &= position % shards == shard
            keep = keep[chosen]
            if len(keep):
                frame = frame.iloc[keep]
                raw = raw_columns(frame, list(table.preprocess.fields().values()))
                encoded = table.preprocess.encode(raw)
                if encoded.problems:
                    raise file_rows_error(encoded.problems, offset + keep, name)
                target = make_target(table.spec, frame[table.data.label].to_numpy())
                weight = table.data.weight
                weight = frame[weight].to_numpy(np.float64) if weight else None
                yield encoded.inputs, target, weight
            if seen >= self.stop:
                return


@dataclass
class Table:
    """What every split of a streamed table reads: its file, its rows' splits, the fitted
    preprocessing and the columns to read."""

    spec: Spec
    data: TabularData
    preprocess: Preprocessor
    member: np.ndarray  # uint8 per file row: TRAIN, VAL or TEST

    @property
    def columns(self) -> list[str]:
        data = self.data
        return list(dict.fromkeys([*self.preprocess.fields(), data.label, *_extra(data)]))

    @cached_property
    def group_starts(self) -> np.ndarray | None:
        """The first file row of each Parquet row group, then the row count (from the file's
        footer; nothing is read); None for a CSV file."""
        if self.data.source != "parquet":
            return None
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(self.data.path).metadata
        counts = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def group_rows(self, split: int) -> np.ndarray:
        """Rows of `split` in each Parquet row group."""
        starts = self.group_starts
        counts = np.add.reduceat((self.member == split).astype(np.int64), starts[:-1])
        return np.where(np.diff(starts) > 0, counts, 0)  # reduceat misreads empty groups

    def shard_groups(self, shard: int, shards: int) -> np.ndarray | None:
        """The Parquet row groups shard `shard` of `shards` (a rank, or a rank's loader worker)
        reads: shard, shard + shards, ...; None (every shards-th row instead) for one shard, a
        CSV file, or fewer row groups than shards."""
        starts = self.group_starts if shards > 1 else None
        if starts is None or len(starts) - 1 < shards:
            return None
        return np.arange(shard, len(starts) - 1, shards)


def hash_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


def _extra(data: TabularData) -> list[str]:
    return [c for c in (data.weight,) if c]


def _open(data: TabularData):
    import pyarrow.dataset as ds

    path = existing_file(data)
    # Parquet: no pre-buffering (pyarrow would fetch the file's column chunks ahead, and hold
    # them: memory growing with the file instead of one row group)
    file_format: Any = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
    )
    if data.source == "csv":  # csvread's rule: "NA" is missing in numbers, a value in text
        from rocketc.data.csvread import arrow_convert_options

        file_format = ds.CsvFileFormat(convert_options=arrow_convert_options())
    try:
        return ds.dataset(str(path), format=file_format)
    except Exception as exc:  # pyarrow raises many types for a malformed file
        raise DataError(f"{path}: cannot read as {data.source}: {exc}") from None


def _frames(data: TabularData, columns: list[str]):
    """(row offset, pandas frame) of each record batch of `columns`, in file order."""
    dataset = _open(data)
    offset = 0
    try:
        batches = dataset.to_batches(
            columns=columns, batch_size=READ_ROWS, batch_readahead=2, fragment_readahead=1
        )  # pyarrow's defaults read up to 16 batches of 4 files ahead: memory, not speed, here
        for batch in batches:
            if batch.num_rows:
                yield offset, batch.to_pandas()
                offset += batch.num_rows
    except DataError:
        raise
    except Exception as exc:  # a malformed block past the first
        raise DataError(f"{data.path}: cannot read as {data.source}: {exc}") from None


def _group_frames(data: TabularData, columns: list[str], groups: np.ndarray, starts):
    """(row offset, pandas frame) of each record batch of the Parquet row groups `groups`."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(data.path, pre_buffer=False)
        for g in groups.tolist():
            offset = int(starts[g])
            for batch in handle.iter_batches(READ_ROWS, row_groups=[g], columns=columns):
                if batch.num_rows:
                    yield offset, batch.to_pandas()
                    offset += batch.num_rows
    except DataError:
        raise
    except Exception as exc:  # a malformed row group
        raise DataError(f"{data.path}: cannot read as {data.source}: {exc}") from None


# --- the fit pass -------------------------------------------------------------------------
def load(spec: Spec, data: TabularData) -> Dataset:
    """Fit the preprocessing on the train rows, and keep what val/test metrics need, in one
    pass over the file."""
    dataset = _open(data)
    feeds = check_columns(spec, data, dataset.schema.names)
    member = split_members(dataset.count_rows(), data, data_seed(spec))
    dense = [f.columns for f in feeds if f.item.kind == "dense"]
    dense_columns = [c.column for columns in dense for c in columns]
    filled = {c.column for columns in dense for c in columns if c.fill is not None}
    fed = [c.column for f in feeds for c in f.columns]
    read = [data.label, *fed, data.group, data.weight]
    fit = Fit(spec, data, feeds)
    held = {VAL: _Held(spec, data), TEST: _Held(spec, data)}
    positives = 0.0
    for offset, frame in _frames(data, list(dict.fromkeys(c for c in read if c))):
        numeric(frame, [data.label, *dense_columns, *bucketized(feeds)], data.path)
        group = [data.group] if data.group else []
        unfilled = [c for c in dense_columns if c not in filled]
        no_missing(frame, [data.label, *unfilled, *group], data.path)
        _finite(frame, dense_columns, offset, Path(data.path).name, filled)
        _labels(spec, frame[data.label].to_numpy(), offset, Path(data.path).name, data.label)
        if data.weight:
            check_weight_column(frame, data.weight, data.path)
        where = member[offset : offset + len(frame)]
        kept = np.flatnonzero(where == TRAIN)
        train = frame.iloc[kept]
        fit.update(train, offset + kept)
        positives += float(train[data.label].sum()) if spec.task == "binary" else 0.0
        for split, part in held.items():
            part.add(frame.iloc[np.flatnonzero(where == split)])
    features = fit.finish()
    meaning = f"'{data.label}' is 1" if spec.task == "binary" else f"the class in '{data.label}'"
    preprocess = Preprocessor(
        data.source,
        f"one table row: {columns_text(features)}",
        features,
        label_info(spec, meaning),
    )
    table = Table(spec, data, preprocess, member)
    rows = int((member == TRAIN).sum())
    train = StreamedSplit(table, TRAIN, rows, positive_rate=positives / max(rows, 1))
    val, test = (held[s].split(table, s) for s in (VAL, TEST))
    name = Path(data.path).name
    workers = f", {data.workers} loader workers" if data.workers else ""
    sizes = f"{rows:,} train / {len(val):,} val / {len(test):,} test (streamed{workers})"
    rate = f"{train.positive_rate:.1%} positive in train"
    described = f"{name}: {sizes}, " + (
        rate if spec.task == "binary" else f"{spec.num_classes} classes"
    )
    return Dataset(train, val, test, with_notes(described, features), preprocess)


class _Held:
    """What an evaluation split keeps of its rows, record batch by record batch: targets,
    weights, and group values as 64-bit hashes (numbered once all are seen)."""

    def __init__(self, spec: Spec, data: TabularData):
        self.spec, self.data = spec, data
        self.parts: dict[str, list[np.ndarray]] = {"target": [], "weight": [], "group": []}

    def add(self, frame) -> None:
        import pandas as pd

        data = self.data
        self.parts["target"].append(make_target(self.spec, frame[data.label].to_numpy()))
        if data.weight:
            self.parts["weight"].append(frame[data.weight].to_numpy(np.float64))
        if data.group:
            self.parts["group"].append(pd.util.hash_array(frame[data.group].to_numpy()))

    def split(self, table: Table, split: int) -> StreamedSplit:
        import pandas as pd

        held = {k: np.concatenate(v) for k, v in self.parts.items() if v}
        if "group" in held:
            held["group"] = pd.factorize(held["group"], sort=True)[0].astype(np.int64)
        return StreamedSplit(table, split, len(held["target"]), **held)


def _finite(frame, columns: list[str], offset: int, name: str, filled=frozenset()) -> None:
    """Every dense value is finite (or missing in a column with a fill): checked on every row
    as it is read, so a bad val or test row is refused before training, not at the first
    validation."""
    if not columns:
        return
    values = frame[columns].to_numpy(np.float64)
    fine = np.isfinite(values) | (np.isnan(values) & np.isin(columns, list(filled)))
    bad = np.flatnonzero(~fine.all(axis=1))
    if len(bad):
        row = int(bad[0])
        column = columns[int(np.flatnonzero(~fine[row])[0])]
        raise DataError(
            f"{name}, row {offset + row + 1}: {column}: is not a finite number "
            f"({len(bad):,} such rows in this record batch)"
        )


def _labels(spec: Spec, labels: np.ndarray, offset: int, name: str, column: str) -> None:
    """Every label is one the loss can take (0/1; a class in [0, num_classes)): checked on every
    row as it is read, as the in-memory path checks its whole splits before training."""
    bad = bad_labels(spec, make_target(spec, labels))
    if len(bad):
        rule = (
            "binary labels must be 0 or 1"
            if spec.task == "binary"
            else f"multiclass labels are in [0, {spec.num_classes}); check num_classes"
        )
        row = int(bad[0])
        raise DataError(
            f"{name}, row {offset + row + 1}: {column}: {rule}; got {labels[row]!r} "
            f"({len(bad):,} such rows in this record batch)"
        )


def split_members(n: int, data: TabularData, seed: int) -> np.ndarray:
    """Each row's split (uint8: TRAIN, VAL, TEST): `encode.random_split`'s seeded split, drawn
    as the same shuffle of an int32 (not int64) range when it fits, at 5 bytes a row."""
    n_train, n_val, _ = split_sizes(n, data.val_fraction, data.test_fraction)
    rows = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    np.random.default_rng(seed).shuffle(rows)  # = Generator.permutation(n), element for element
    member = np.full(n, TRAIN, dtype=np.uint8)
    member[rows[n_train : n_train + n_val]] = VAL
    member[rows[n_train + n_val :]] = TEST
    return member
