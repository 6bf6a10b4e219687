"""CSV and Parquet tables: a label column, categorical columns and groups of dense columns.

A raw row is a table row: each input reads the column of its name, a dense input the numeric
columns `data.dense` lists for it, if any (`encode.table_feeds`). Fitted on the train split
only: categorical vocabularies (sorted values get ids 1..K; id 0 is a value unseen in train, or
a missing one), the quantile edges of a bucketized number (`{column: NAME, buckets: N}`) and the
mean/std used to standardise dense columns. A categorical input with `hash_buckets` hashes its
values instead (hashing.py); a categorical_list input reads a Parquet list column or text split
at `list_delimiter` (lists.py). `weight` names a column of sample weights. Missing values in
label, group, split_by or weight columns, and in dense columns without a `fill`, are an error
rather than silently filled: a fill value is a modelling choice, which a dense column states as
`{column: NAME, fill: median}` (with `transform: log1p` for long-tailed amounts).

`fields.raw_columns` turns the pandas frame into raw fields; `rocketc predict` reads its files
through the same function, chunk by chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rocketc.compiler.spec import Spec, TabularData
from rocketc.data.base import Dataset, Split, describe, make_target, with_notes
from rocketc.data.dense import Dense
from rocketc.data.encode import (
    data_seed,
    list_vocab_sources,
    ordered_split,
    random_split,
    table_feature,
)
from rocketc.data.fields import column_type, raw_columns
from rocketc.data.lists import share_vocabularies
from rocketc.data.preprocess import Preprocessor, label_info, take
from rocketc.data.tablecheck import (
    bucketized,
    check_columns,
    check_weight_column,
    columns_text,
    existing_file,
    no_missing,
    numeric,
)
from rocketc.errors import DataError, Diagnostic


def load(spec: Spec, data: TabularData) -> Dataset:
    import pandas as pd  # only when a table is asked for

    frame = _read(data)
    feeds = check_columns(spec, data, list(frame.columns))
    numeric(frame, bucketized(feeds), data.path)
    if data.weight:
        check_weight_column(frame, data.weight, data.path)
    if data.split_by:
        no_missing(frame, [data.split_by], data.path)
        frame = frame.sort_values(data.split_by, kind="stable", ignore_index=True)
        parts = ordered_split(len(frame), data.val_fraction, data.test_fraction)
    else:
        parts = random_split(len(frame), data.val_fraction, data.test_fraction, data_seed(spec))

    features: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for feed in feeds:
        first = feed.columns[0].column
        feature = table_feature(
            feed, column_type(frame[first].to_numpy().dtype.kind), data.list_delimiter
        )
        if isinstance(feature, Dense):
            numeric(frame, feature.columns, data.path)
            no_missing(frame, [c.column for c in feed.columns if c.fill is None], data.path)
        try:
            features[feed.item.name] = feature.fit(
                raw_columns(frame.iloc[parts[0]], feature.fields())
            )
        except DataError as exc:
            problems += exc.diagnostics
    if problems:
        raise DataError(problems)
    share_vocabularies(features, list_vocab_sources(spec))
    ordered = list(features.values())  # spec input order
    meaning = f"'{data.label}' is 1" if spec.task == "binary" else f"the class in '{data.label}'"
    preprocess = Preprocessor(
        data.source,
        f"one table row: {columns_text(ordered)}",
        ordered,
        label_info(spec, meaning),
    )
    raw = raw_columns(frame, [f for feature in ordered for f in feature.fields()])

    numeric(frame, [data.label], data.path)
    no_missing(frame, [data.label], data.path)
    labels = frame[data.label].to_numpy()
    group = None
    if data.group:
        no_missing(frame, [data.group], data.path)
        group = pd.factorize(frame[data.group], sort=True)[0].astype(np.int64)
    weight = frame[data.weight].to_numpy(dtype=np.float64) if data.weight else None
    splits = []
    for name, p in zip(("train", "val", "test"), parts, strict=True):
        rows = take(raw, p)
        inputs = preprocess.encode_split(rows, f"{Path(data.path).name} {name} split")
        splits.append(
            Split(
                inputs,
                make_target(spec, labels[p]),
                None if group is None else group[p],
                rows,
                None if weight is None else weight[p],
            )
        )
    description = describe(Path(data.path).name, spec, *splits)
    return Dataset(*splits, with_notes(description, ordered), preprocess)


def _read(data: TabularData):
    import pandas as pd

    from rocketc.data.csvread import read_csv

    path = existing_file(data)
    try:
        return read_csv(path) if data.source == "csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise DataError(f"{path}: cannot read as {data.source}: {exc}") from None
