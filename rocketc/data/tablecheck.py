"""Checks of a table's columns that both table loaders make: the in-memory one (tabular.py) and
the streamed one (stream.py), so each names the same problem in the same words."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rocketc.compiler.spec import Spec, TabularData
from rocketc.data.dense import Dense
from rocketc.data.encode import Feed, check_weights, missing_columns, table_feeds
from rocketc.errors import DataError, Diagnostic


def columns_text(features: list) -> str:
    parts = []
    for f in features:
        if isinstance(f, Dense):
            parts.append(f"{', '.join(f.columns)} (numbers)")
        else:
            (field,) = f.fields()
            parts.append(f"{field.name} ({field.describe()})")
    return "; ".join(parts)


def existing_file(data: TabularData) -> Path:
    """The table's path, or a DataError saying where a relative path was looked for."""
    path = Path(data.path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such {data.source} file (relative paths start from the "
            f"current directory: {path.resolve()})"
        )
    return path


def check_columns(spec: Spec, data: TabularData, available: list[str]) -> list[Feed]:
    """Every spec input's feed (`encode.table_feeds`), once every column named exists: a
    column an input or a data entry names is missing at that entry; a bucketized one holds
    numbers (checked by the loader, which reads it)."""
    feeds = table_feeds(spec, data)
    problems = missing_columns(feeds, available, data.path)
    for key in ("label", "group", "split_by", "weight"):
        column = getattr(data, key)
        if column and column not in available:
            message = f"{data.path}: no column '{column}'; available: {available}"
            problems.append(Diagnostic(message, at=("data", key)))
    if problems:
        raise DataError(problems)
    return feeds


def bucketized(feeds: list[Feed]) -> list[str]:
    """The columns cut into quantile buckets: they must hold numbers."""
    return [c.column for f in feeds for c in f.columns if getattr(c, "buckets", None)]


def numeric(frame, columns: list[str], path: str) -> None:
    import pandas as pd

    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise DataError(
                f"{path}: column '{column}' must be numeric; it holds "
                f"{frame[column].dtype} values like {frame[column].iloc[0]!r}"
            )


def check_weight_column(frame, column: str, path: str) -> None:
    """Sample weights are numbers, none missing, finite and >= 0 (rows named from 1)."""
    numeric(frame, [column], path)
    no_missing(frame, [column], path)
    check_weights(frame[column].to_numpy(dtype=np.float64), f"{path}: column '{column}'")


def no_missing(frame, columns: list[str], path: str) -> None:
    for column in columns:
        count = int(frame[column].isna().sum())
        if count:
            raise DataError(
                f"{path}: column '{column}' has {count:,} missing values; "
                "fill or drop them before training"
            )
