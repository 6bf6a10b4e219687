"""Checks of a table's columns that both table loaders make: the in-memory one (tabular.py) and
the streamed one (stream.py), so each names the same problem in the same words."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rocketc.compiler.spec import Spec, TabularData
from rocketc.data.dense import Dense
from rocketc.data.encode import check_weights
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


def check_columns(spec: Spec, data: TabularData, available: list[str]) -> None:
    """Every named column exists, and the feeds cover exactly the spec's inputs."""
    wanted = [data.label, *data.categorical, *data.dense_columns()]
    wanted += [c for c in (data.group, data.split_by, data.weight) if c]
    problems = [
        f"{data.path}: no column '{c}'; available: {available}"
        for c in dict.fromkeys(wanted)
        if c not in available
    ]
    fed = [*data.categorical, *data.dense]
    problems += [
        f"spec input '{i.name}' is not fed by the table; list it under data.categorical "
        f"or data.dense (fed: {fed})"
        for i in spec.inputs
        if i.name not in fed
    ]
    if problems:
        raise DataError([Diagnostic(p) for p in problems])


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
