"""The fit pass of a streamed table: each input's feature fitted record batch by record batch.

What is held between batches is bounded by the spec, never by the file:

- a vocabulary (categorical, or the values of categorical_list) holds at most `vocab - 1`
  distinct values: one more and the pass stops with the error the in-memory fit gives, before
  the rest of the file is read;
- hashed ids (`hash_buckets`) keep one flag per bucket and a sketch of 4,096 digests
  (`hashing.BucketUse`), nothing per value;
- a dense column keeps its count, mean, squared deviations (merged as Chan et al.) and largest
  magnitude; a list its length counts;
- a bucketized column (`{column: NAME, buckets: N}`) a uniform reservoir sample of at most
  SAMPLE_VALUES of its numbers, whose quantiles are its edges: exactly the in-memory path's
  edges up to that many train rows, beyond it an estimate (a quantile's rank off by about
  1/sqrt(SAMPLE_VALUES), 0.1%).

Fed the same rows, the fitted features equal the in-memory path's (dense statistics up to the
last bits, merged per block instead of numpy's pairwise sum; a hashed input's count of distinct
values is an estimate past 4,096 of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rocketc.compiler.spec import DenseInput, Spec, TabularData
from rocketc.data.dense import Dense
from rocketc.data.encode import Feed, data_seed, list_vocab_sources, table_feature
from rocketc.data.features import Categorical, RowProblem, rows_error
from rocketc.data.fields import column_type, raw_columns
from rocketc.data.hashing import BucketUse, Hashed, canonical_text
from rocketc.data.lists import CategoricalList, ListLengths, share_vocabularies
from rocketc.errors import DataError

SAMPLE_VALUES = 1 << 20  # numbers kept per bucketized column (8 MiB) to fit its quantile edges


class Fit:
    """Every input's feature of a table, fitted on the train rows given to `update`."""

    def __init__(self, spec: Spec, data: TabularData, feeds: list[Feed]):
        self.spec, self.data, self.feeds = spec, data, feeds
        self.parts: dict[str, Any] | None = None  # input -> its fitting part, from the 1st block
        self.rows = 0  # train rows seen

    def update(self, frame, rows: np.ndarray) -> None:
        """Fold in the train rows `frame`, which are the file's rows `rows` (0-based)."""
        if self.parts is None:
            name = Path(self.data.path).name
            seed = data_seed(self.spec)
            self.parts = {k: _part(f, name, seed) for k, f in self._features(frame).items()}
        if not len(frame):
            return
        self.rows += len(frame)
        seen = f"the train split's first {self.rows:,} rows"
        for part in self.parts.values():
            part.update(raw_columns(frame, part.feature.fields()), rows, seen)

    def finish(self) -> list:
        """The fitted features, in spec input order."""
        if self.parts is None or not self.rows:
            raise DataError(f"{self.data.path}: the train split has no rows")
        features = {name: part.finish() for name, part in self.parts.items()}
        share_vocabularies(features, list_vocab_sources(self.spec))
        return list(features.values())

    def _features(self, frame) -> dict[str, Any]:
        data, out = self.data, {}
        for feed in self.feeds:
            if isinstance(feed.item, DenseInput):
                rules = [
                    f"{c.column}: fill: {c.fill}"
                    for c in feed.columns
                    if c.fill in ("mean", "median")
                ]
                if rules:  # one pass, bounded memory: a statistic would need the column first
                    raise DataError(
                        f"{data.path} is streamed (data.stream, or larger than 256 MiB), and a "
                        f"streamed table fills missing values with a number, not a statistic of "
                        f"the train split: {'; '.join(rules)}; give the number (rocketc init "
                        "writes its sample's median for a streamed file), or set stream: false"
                    )
            kind = column_type(frame[feed.columns[0].column].to_numpy().dtype.kind)
            out[feed.item.name] = table_feature(feed, kind, data.list_delimiter)
        return out


def file_rows_error(problems: list[RowProblem], rows: np.ndarray, what: str) -> DataError:
    """`rows_error` naming each row by its place in the file (1-based, header not counted):
    `rows[k]` is the 0-based file row of the k-th row that was encoded."""
    from dataclasses import replace

    return rows_error([replace(p, row=int(rows[p.row])) for p in problems], what)


def _part(feature, file_name: str, seed: int):
    if isinstance(feature, Categorical) and feature.quantiles:
        return _Sample(feature, seed)
    if isinstance(feature, Categorical):
        return _Vocabulary(feature)
    if isinstance(feature, Hashed):
        return _Buckets(feature)
    if isinstance(feature, CategoricalList):
        return _Lists(feature)
    return _Moments(feature, file_name)


class _Vocabulary:
    """A categorical input's distinct (derived) train values, never more than vocab - 1."""

    def __init__(self, feature: Categorical):
        self.feature, self.distinct = feature, None

    def update(self, raw, rows: np.ndarray, seen: str) -> None:
        import pandas as pd

        values, missing, _ = self.feature.values(raw)
        new = pd.unique(values[~missing])
        merged = new if self.distinct is None else pd.unique(np.concatenate([self.distinct, new]))
        if len(merged) >= self.feature.vocab:  # refused as the in-memory fit refuses it
            self.feature.fit_values(merged, seen)
        self.distinct = merged

    def finish(self) -> Categorical:
        return self.feature.fit_values(self.distinct)


class _Sample:
    """A bucketized column's train numbers: a uniform sample of at most SAMPLE_VALUES of them
    (reservoir sampling, seeded by the run), whose quantiles are the edges. Fed no more values
    than that, it holds them all, and the edges are the in-memory path's."""

    def __init__(self, feature: Categorical, seed: int):
        self.feature, self.rng = feature, np.random.default_rng(seed)
        self.sample = np.empty(0, dtype=np.float64)
        self.seen = 0  # non-missing values offered

    def update(self, raw, rows: np.ndarray, seen: str) -> None:
        values, missing, _ = self.feature.values(raw, derive=False)
        values = values[~missing].astype(np.float64)
        room = max(SAMPLE_VALUES - len(self.sample), 0)
        self.sample = np.concatenate([self.sample, values[:room]])
        rest = values[room:]
        if len(rest):  # the (seen + j)-th value replaces a random slot with p = K / (seen + j)
            index = self.seen + room + np.arange(1, len(rest) + 1)
            slot = (self.rng.random(len(rest)) * index).astype(np.int64)
            taken = slot < SAMPLE_VALUES
            self.sample[slot[taken]] = rest[taken]  # a repeated slot keeps its last value
        self.seen += len(values)

    def finish(self) -> Categorical:
        return self.feature.fit_bands(self.sample)


class _Buckets:
    """A hashed input: which buckets its train values fill (nothing kept per value)."""

    def __init__(self, feature: Hashed):
        self.feature, self.use = feature, BucketUse(feature.buckets)

    def update(self, raw, rows: np.ndarray, seen: str) -> None:
        import pandas as pd

        values, missing, _ = self.feature.values(raw)
        self.use.add(canonical_text(v) for v in pd.unique(values[~missing]).tolist())

    def finish(self) -> Hashed:
        self.feature.stats = self.use.stats()
        return self.feature


class _Lists:
    """A categorical_list input: its lengths, and its values' vocabulary (never more than
    vocab - 1) or, hashed, their bucket use."""

    def __init__(self, feature: CategoricalList):
        self.feature, self.lengths = feature, ListLengths(feature.max_len)
        self.texts: set[str] = set()
        self.use = BucketUse(feature.buckets) if feature.mode == "hashed" else None

    def update(self, raw, rows: np.ndarray, seen: str) -> None:
        self.lengths.add(self.feature.lengths(raw))
        if self.use is not None:
            self.use.add(self.feature.texts(raw))
            return
        if self.feature.shared_from is not None:  # its input's vocabulary, given at the end
            return
        self.texts.update(self.feature.texts(raw))
        if len(self.texts) >= self.feature.vocab:  # refused as the in-memory fit refuses it
            self.feature.fit_vocabulary(sorted(self.texts), f"{seen}' lists")

    def finish(self) -> CategoricalList:
        if self.use is None and self.feature.shared_from is None:
            self.feature.fit_vocabulary(sorted(self.texts))
        self.feature.stats = self.lengths.stats()
        if self.use is not None:
            self.feature.stats["hashing"] = self.use.stats()
        return self.feature


class _Moments:
    """A dense input's count, mean, squared deviations and largest magnitude per column."""

    def __init__(self, feature: Dense, file_name: str):
        self.feature, self.file_name, self.moments = feature, file_name, None

    def update(self, raw, rows: np.ndarray, seen: str) -> None:
        x, problems = self.feature.raw(raw)
        if problems:
            raise file_rows_error(problems, rows, self.file_name)
        m, mean = len(x), x.mean(axis=0)
        squares, top = ((x - mean) ** 2).sum(axis=0), np.abs(x).max(axis=0)
        if self.moments is not None:
            n, mean_a, squares_a, top_a = self.moments
            delta, total = mean - mean_a, n + m
            mean = mean_a + delta * (m / total)
            squares = squares_a + squares + delta**2 * (n * m / total)
            m, top = total, np.maximum(top, top_a)
        self.moments = (m, mean, squares, top)

    def finish(self) -> Dense:
        n, mean, squares, top = self.moments
        self.feature._scale(top)  # refuses values too large to standardise, by column
        std = np.sqrt(squares / n)
        self.feature.mean, self.feature.std = np.atleast_1d(mean), np.where(std > 0, std, 1.0)
        return self.feature
