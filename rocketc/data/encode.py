"""Shared steps of the loaders: deterministic splits and the checks before preprocessing.

Splits are seeded with `spec.train.seed`: the same spec always sees the same rows in each split,
and `--set train.seed=...` reshuffles data and weights together. Everything fitted on data
(vocabularies, means, standard deviations) is fitted on the train split only, by the run's
`Preprocessor` (preprocess.py), so val/test numbers are what serving on unseen rows would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rocketc.compiler.spec import (
    CategoricalColumn,
    CategoricalInput,
    CategoricalListInput,
    DenseColumn,
    DenseInput,
    Spec,
    TabularData,
)
from rocketc.data.dense import Dense
from rocketc.data.features import Categorical, Quantiles
from rocketc.data.hashing import Hashed
from rocketc.data.lists import CategoricalList
from rocketc.errors import DataError, Diagnostic


def data_seed(spec: Spec) -> int:
    """The split seed: train.seed folded into numpy's non-negative 32-bit range."""
    return spec.train.seed % 2**32


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) row counts; val and test are rounded, train takes the rest."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    if n_train <= 0 or n_val <= 0 or n_test <= 0:
        raise DataError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} of "
            f"{n:,} rows give {n_train:,} train / {n_val:,} val / {n_test:,} test; "
            f"every split needs rows"
        )
    return n_train, n_val, n_test


def ordered_split(n: int, val_fraction: float, test_fraction: float) -> list[np.ndarray]:
    """Row indices [train, val, test] of already-sorted rows: oldest train, newest test."""
    n_train, n_val, _ = split_sizes(n, val_fraction, test_fraction)
    rows = np.arange(n)
    return [rows[:n_train], rows[n_train : n_train + n_val], rows[n_train + n_val :]]


def group_ordered_split(
    group: np.ndarray, val_fraction: float, test_fraction: float
) -> list[np.ndarray]:
    """Row indices [train, val, test] of time-sorted rows, split within each group.

    Each group (user) keeps its oldest rows for training and its newest `test_fraction` (then
    `val_fraction`) for testing (validation), rounded down, so every group is seen in training.
    """
    order = np.argsort(group, kind="stable")  # time order survives within each group
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    position = np.arange(len(group)) - np.repeat(starts, sizes)  # rank within the group
    size = np.repeat(sizes, sizes)
    n_test = np.floor(size * test_fraction).astype(np.int64)
    n_val = np.floor(size * val_fraction).astype(np.int64)
    part = np.zeros(len(group), dtype=np.int64)
    part[position >= size - n_test - n_val] = 1
    part[position >= size - n_test] = 2
    where = np.empty(len(group), dtype=np.int64)
    where[order] = part
    rows = np.arange(len(group))
    return [rows[where == k] for k in range(3)]


def random_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> list[np.ndarray]:
    """Row indices [train, val, test] of a seeded shuffle, each kept in file order."""
    n_train, n_val, _ = split_sizes(n, val_fraction, test_fraction)
    rows = np.random.default_rng(seed).permutation(n)
    parts = rows[:n_train], rows[n_train : n_train + n_val], rows[n_train + n_val :]
    return [np.sort(p) for p in parts]


def spec_input(spec: Spec, name: str, kind: type | tuple[type, ...], source: str) -> Any:
    """The spec input `name`, which must exist and be of `kind` (an input class, or several)."""
    by_name = {i.name: i for i in spec.inputs}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    wanted = " or ".join(k.model_fields["kind"].annotation.__args__[0] for k in kinds)
    if name not in by_name:
        raise DataError(
            f"{source} feeds input '{name}', which the spec does not declare "
            f"(spec inputs: {sorted(by_name)})"
        )
    if not isinstance(by_name[name], kind):
        raise DataError(f"{source} gives '{name}' {wanted} values; declare it kind: {wanted}")
    return by_name[name]


@dataclass(frozen=True)
class Feed:
    """What one spec input of a table reads: its entry in `data:` (or the column of its name),
    and the spec path that names the column(s), where a problem with them is reported."""

    item: Any  # the spec input
    columns: list  # [CategoricalColumn] for an id input, the DenseColumns of a dense one
    at: tuple  # ("data", "categorical", k), ("data", "dense", name) or ("inputs", k)

    @property
    def said(self) -> str:
        """Where the column names come from, in words."""
        if self.at[0] == "inputs":
            return f"input '{self.item.name}' reads the column of its name"
        where = "data.categorical" if self.at[1] == "categorical" else f"data.dense.{self.at[2]}"
        return f"{where} names it"


def table_feeds(spec: Spec, data: TabularData) -> list[Feed]:
    """Each spec input's feed, in spec input order: a `data.categorical` entry feeds the input
    of its column's name, a `data.dense` list the input it names; any other input reads the
    column of its name. An entry naming no input (or one of another kind) is an error."""
    named: dict[str, Feed] = {}
    ids = (CategoricalInput, CategoricalListInput)
    for k, entry in enumerate(data.categorical):
        item = _spec_input(spec, entry.column, ids, data.source, ("data", "categorical", k))
        named[entry.column] = Feed(item, [entry], ("data", "categorical", k))
    for name, columns in data.dense.items():
        item = _spec_input(spec, name, DenseInput, data.source, ("data", "dense", name))
        named[name] = Feed(item, list(columns), ("data", "dense", name))
    feeds = []
    for k, item in enumerate(spec.inputs):
        if item.name in named:
            feeds.append(named[item.name])
        elif isinstance(item, DenseInput):
            feeds.append(Feed(item, [DenseColumn(column=item.name)], ("inputs", k)))
        else:
            feeds.append(Feed(item, [CategoricalColumn(column=item.name)], ("inputs", k)))
    return feeds


def _spec_input(spec: Spec, name: str, kind, source: str, at: tuple):
    try:
        return spec_input(spec, name, kind, source)
    except DataError as exc:
        raise DataError([Diagnostic(d.message, at=at) for d in exc.diagnostics]) from None


def missing_columns(feeds: list[Feed], available: list[str], path: str) -> list[Diagnostic]:
    """A diagnostic at each feed's spec entry for each column it names and the table lacks."""
    out = []
    for feed in feeds:
        for c in feed.columns:
            if c.column not in available:
                out.append(
                    Diagnostic(
                        f"{path}: no column '{c.column}'; available: {available} ({feed.said})",
                        at=feed.at,
                    )
                )
    return out


def table_feature(feed: Feed, kind: str, delimiter: str):
    """The (unfitted) feature of a table input's feed; `kind`: its first column's field type."""
    if isinstance(feed.item, DenseInput):
        return dense_feature(feed.item, feed.columns)
    (entry,) = feed.columns
    feature = id_feature(feed.item, entry.column, kind, delimiter)
    if entry.buckets is not None:  # the spec holds it to a plain categorical input
        feature.derive = Quantiles(buckets=entry.buckets)
    return feature


def id_feature(
    item: CategoricalInput | CategoricalListInput, column: str, kind: str, delimiter: str = "|"
):
    """The feature making a categorical input's ids from raw field `column` (of type `kind`):
    a train vocabulary, or a stable hash with `hash_buckets`; lists of values for
    categorical_list inputs (text split at `delimiter`)."""
    if isinstance(item, CategoricalListInput):
        mode = "hashed" if item.hash_buckets else "vocabulary"
        return CategoricalList(
            item.name,
            item.vocab,
            item.max_len,
            column,
            delimiter,
            mode,
            item.hash_buckets,
            shared_from=item.vocab_from,
        )
    if item.hash_buckets:
        return Hashed(item.name, item.hash_buckets, column, kind)
    return Categorical(item.name, item.vocab, column, kind)


def list_vocab_sources(spec: Spec) -> dict[str, str]:
    """List input -> the categorical input whose ids it takes (`vocab_from`): the loaders give
    the list that input's fitted vocabulary, so a value is one id in both (and one table row)."""
    return {
        i.name: i.vocab_from
        for i in spec.inputs
        if isinstance(i, CategoricalListInput) and i.vocab_from is not None
    }


def dense_feature(item: DenseInput, columns: Sequence[DenseColumn]) -> Dense:
    """The (unfitted) feature of a dense input fed by a table's `columns`: each column's
    transform, and its fill (a number, or "mean"/"median" until the fit)."""
    names = [c.column for c in columns]
    check_size(item, len(names), f"columns {names}", [len(names)])
    fill = {c.column: 0.0 if c.fill == "zero" else c.fill for c in columns if c.fill is not None}
    transform = {c.column: c.transform for c in columns if c.transform is not None}
    return Dense(
        item.name, tuple(item.shape), columns=names, transform=transform or None, fill=fill or None
    )


def check_size(item: DenseInput, per_row: int, source: str, got: Sequence[int]) -> None:
    """The source gives `per_row` values per example (shaped `got`); the input needs as many."""
    if per_row != int(np.prod(item.shape)):
        have = ", ".join(["N", *map(str, got)])
        want = ", ".join(["N", *map(str, item.shape)])
        raise DataError(
            f"input '{item.name}': dense shape mismatch: expected ({want}), "
            f"{source} gives ({have}) = {per_row} values per example"
        )


def check_weights(weight: np.ndarray, what: str) -> np.ndarray:
    """Sample weights as float64, which must be finite and >= 0 (bad rows named from 1)."""
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(weight) | (weight < 0))
    if bad.size:
        rows = ", ".join(f"row {r + 1} ({weight[r]:g})" for r in bad[:5])
        raise DataError(
            f"{what}: sample weights are finite and >= 0; {bad.size:,} row(s) are not: "
            f"{rows}{' ...' if bad.size > 5 else ''}"
        )
    return weight
