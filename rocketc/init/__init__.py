"""`rocketc init`: a first spec for a CSV or Parquet table, with every decision explained.

`init_spec` reads a bounded sample of the table, decides what each column is (`columns.decide`:
categorical, hashed id, list, dense, or ignored, each with its reason), counts vocabularies over
the whole file when the sample does not hold it all, and writes a commented spec: every
categorical field embedded by one bottom-shared `field_embeddings` layer (the field-group
shorthand), the numbers beside them, a light tower and a booster in the proportions of the
paper's Table 5 (the booster with a feature-interaction layer beside its tower if `booster` says
so: render.BOOSTERS), rocketc's default loss, and a data section that points at the file. The text
is compiled before it is returned, so what `init` writes always passes `rocketc check`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rocketc.compiler import compile_text
from rocketc.data.csvread import read_csv
from rocketc.errors import DataError, Diagnostic, RocketcError
from rocketc.init.columns import (
    CATEGORICAL_MAX,
    OVERRIDES,
    Column,
    decide,
    forced,
    split_text,
    token_text,
    usable_name,
)
from rocketc.init.render import BOOSTERS, STACKED, render

SAMPLE_ROWS = 100_000
COUNT_CAP = 1 << 21  # distinct values counted per column in the whole-file pass
# The paper's Table 5 towers on its 576 shared features.
SOURCES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class InitResult:
    text: str  # the spec's YAML
    columns: list[Column]  # every column's decision, in file order
    rows_read: int
    total_rows: int | None  # None: a CSV longer than the sample (not counted)


def init_spec(
    data: str | Path,
    label: str,
    *,
    group: str | None = None,
    weight: str | None = None,
    name: str | None = None,
    out: str | Path = "spec.yaml",
    sample_rows: int = SAMPLE_ROWS,
    dim: int = 16,
    delimiter: str = "|",
    overrides: Mapping[str, Sequence[str]] | None = None,
    booster: str = "mlp",
) -> InitResult:
    """Decide every column of `data` and write the spec's text (not the file).

    `overrides` maps a role of OVERRIDES to the columns the user forced into it (`--dense
    price`): those columns skip the automatic decision. `booster`: a key of BOOSTERS.
    """
    import pandas as pd

    if booster not in BOOSTERS:
        raise ValueError(f"no booster {booster!r}; one of {list(BOOSTERS)}")  # a caller's bug
    path = Path(data)
    source = _source(path)
    frame, total = _sample(path, source, sample_rows)
    named = {"label": label, "group": group, "weight": weight}
    absent = [f"--{k} {v}" for k, v in named.items() if v is not None and v not in frame.columns]
    if absent:
        raise DataError(
            f"{path}: no column for {', '.join(absent)}; its columns: {list(frame.columns)}"
        )
    said = _overrides(path, overrides or {}, list(map(str, frame.columns)), label, weight)
    task, classes = _label_task(frame[label], path)
    if weight is not None:
        _check_weight(frame[weight], path)
    if group is not None and frame[group].isna().any():
        raise DataError(f"{path}: the group column '{group}' has missing values")

    columns = []
    for column in frame.columns:
        if column in (label, weight):
            role = "label" if column == label else "weight"
            columns.append(Column(str(column), role, f"--{role}"))
            continue
        if column in said:
            decided = _forced(path, frame[column], said[column], delimiter)
        else:
            decided = decide(frame[column], delimiter)
        if decided.feature and (why := usable_name(str(column))):
            decided = Column(str(column), "ignore", why)
        if column == group:
            decided.also.append("group")
        decided.text = not pd.api.types.is_numeric_dtype(frame[column])
        columns.append(decided)
    if total is None or total > len(frame):
        total = _count_whole_file(path, source, columns, delimiter)
    if not any(c.feature for c in columns):
        raise DataError(f"{path}: no column can feed the model; see the reasons above")
    if booster in STACKED and not any(c.feature and c.role != "dense" for c in columns):
        raise DataError(
            f"{path}: --booster {booster} works across embedded fields, and no column is "
            "categorical, hashed or a list; use --booster mlp or dcn, or --categorical COL"
        )
    text = render(
        path, source, frame, total, columns, task, classes, named, name, out, dim, said, booster
    )
    try:
        compile_text(text, str(out))
    except RocketcError as exc:  # a bug in init, never the user's table
        raise RocketcError(f"internal error: rocketc init wrote a spec that fails: {exc}") from exc
    return InitResult(text, columns, len(frame), total)


def _overrides(
    path: Path, overrides: Mapping[str, Sequence[str]], have: list[str], label: str, weight
) -> dict[str, str]:
    """column -> the role the user forced, in the order given; every mistake in one error."""
    said: dict[str, str] = {}
    problems = []
    for role, names in overrides.items():
        if role not in OVERRIDES:
            raise ValueError(f"no override --{role}")  # a caller's bug, not the user's
        for column in names:
            if column not in have:
                close = difflib.get_close_matches(column, have, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; its columns: {have}"
                problems.append(f"--{role} {column}: no such column{hint}")
            elif column in (label, weight):
                what = "label" if column == label else "weight"
                problems.append(f"--{role} {column}: that is the --{what} column")
            elif said.get(column, role) != role:
                problems.append(f"--{role} {column}: also given as --{said[column]}; pick one")
            else:
                said[column] = role
    if problems:
        raise DataError([Diagnostic(p, str(path)) for p in problems])
    return said


def _forced(path: Path, series, role: str, delimiter: str) -> Column:
    try:
        return forced(series, role, delimiter)
    except DataError as exc:
        raise DataError([Diagnostic(exc.diagnostics[0].message, str(path))]) from None


# --- reading ---------------------------------------------------------------------------------
def _source(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    source = SOURCES.get(path.suffix.lower())
    if source is None:
        raise DataError(f"{path}: cannot tell the format; name it .csv or .parquet")
    return source


def _sample(path: Path, source: str, rows: int):
    """The first `rows` rows, and the file's row count (None when a CSV goes on past them)."""
    try:
        if source == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(path)
            batches = []
            for batch in handle.iter_batches(batch_size=min(rows, 65_536)):
                batches.append(batch)
                if sum(b.num_rows for b in batches) >= rows:
                    break
            table = pa.Table.from_batches(batches, schema=handle.schema_arrow)
            return table.slice(0, rows).to_pandas(), handle.metadata.num_rows
        frame = read_csv(path, nrows=rows + 1)
    except Exception as exc:  # pandas and pyarrow raise many types for a malformed file
        raise DataError(f"{path}: cannot read as {source}: {exc}") from None
    if len(frame) > rows:
        return frame.iloc[:rows], None
    return frame, len(frame)


def _count_whole_file(path: Path, source: str, columns: list[Column], delimiter: str) -> int:
    """Distinct values of the vocabulary columns over every row (the sample may miss some);
    a categorical column found to hold more than CATEGORICAL_MAX becomes hashed. Returns the
    file's row count."""
    wanted = {c.name: c for c in columns if c.role in ("categorical", "hashed", "list")}
    seen: dict[str, set] = {name: set() for name in wanted}
    total = 0
    if source == "parquet":
        import pyarrow.parquet as pq

        names = list(wanted) or None
        chunks = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(65_536, columns=names))
    else:  # the text columns of the sample read as text: its decisions hold for every row
        text = [c.name for c in wanted.values() if c.text]
        chunks = read_csv(path, text=text, usecols=list(wanted) or None, chunksize=100_000)
    for chunk in chunks:
        total += len(chunk)
        for name, column in wanted.items():
            values, bucket = chunk[name].dropna(), seen[name]
            if len(bucket) > COUNT_CAP:
                continue
            if column.role == "list":
                for value in values:
                    items = split_text(value, delimiter) if isinstance(value, str) else value
                    bucket.update(token_text(v) for v in items)
            else:
                bucket.update(values.unique().tolist())
    for name, column in wanted.items():
        column.distinct = len(seen[name])
        if column.role == "categorical" and column.distinct > CATEGORICAL_MAX:
            column.role = "hashed"
            column.reason += f"; {column.distinct:,} distinct in all {total:,} rows: too many"
    return total


def _label_task(series, path: Path) -> tuple[str, int | None]:
    """binary for 0/1 labels, multiclass for class ids 0..K-1; anything else is an error."""
    import pandas as pd

    where = f"{path}: label column '{series.name}'"
    if series.isna().any():
        raise DataError(f"{where} has {int(series.isna().sum()):,} missing values")
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        if pd.api.types.is_bool_dtype(series):
            return "binary", None
        raise DataError(f"{where} holds {series.dtype} values; labels are 0/1 or class ids 0..K-1")
    values = np.unique(series.to_numpy(dtype=np.float64))
    if set(values.tolist()) <= {0.0, 1.0}:
        return "binary", None
    if np.all(values == np.round(values)) and values.min() >= 0 and values.max() < 1000:
        return "multiclass", int(values.max()) + 1
    raise DataError(
        f"{where} holds values like {values[-1]:g}; labels are 0/1 (binary) or class ids "
        "0..K-1 (multiclass)"
    )


def _check_weight(series, path: Path) -> None:
    import pandas as pd

    from rocketc.data.encode import check_weights

    if not pd.api.types.is_numeric_dtype(series) or series.isna().any():
        raise DataError(f"{path}: weight column '{series.name}' must be numbers, none missing")
    check_weights(series.to_numpy(dtype=np.float64), f"{path}: column '{series.name}'")


# --- writing ---------------------------------------------------------------------------------
