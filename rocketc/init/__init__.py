"""`rocketc init`: a first spec for a CSV or Parquet table, with every decision explained.

`init_spec` reads a bounded sample of the table, decides what each column is (`columns.decide`:
categorical, hashed id, list, dense, or ignored, each with its reason), counts vocabularies over
the whole file when the sample does not hold it all, and writes a commented spec: every
categorical field embedded by one bottom-shared `field_embeddings` layer (the field-group
shorthand), the numbers beside them, a light tower and a booster in the proportions of the
paper's Table 5, rocketc's default loss, and a data section that points at the file. The text is
compiled before it is returned, so what `init` writes always passes `rocketc check`.
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rocketc.backends.templating import environment
from rocketc.compiler import compile_text
from rocketc.data.csvread import read_csv
from rocketc.data.stream import STREAM_BYTES
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

SAMPLE_ROWS = 100_000
COUNT_CAP = 1 << 21  # distinct values counted per column in the whole-file pass
# The paper's Table 5 towers on its 576 shared features.
PAPER_WIDTH = 576
LIGHT_UNITS = (200, 80)
BOOSTER_UNITS = (720, 360, 240, 180, 90)
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
) -> InitResult:
    """Decide every column of `data` and write the spec's text (not the file).

    `overrides` maps a role of OVERRIDES to the columns the user forced into it (`--dense
    price`): those columns skip the automatic decision.
    """
    import pandas as pd

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
    text = _render(path, source, frame, total, columns, task, classes, named, name, out, dim, said)
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
def _render(path, source, frame, total, columns, task, classes, named, name, out, dim, said):
    features = [c for c in columns if c.feature]
    ids = [c for c in features if c.role != "dense"]
    dense = [c for c in features if c.role == "dense"]
    taken = {c.name for c in columns}
    layer_id = _Namer(taken)
    inputs: list[tuple[str, str]] = []
    for c in ids:
        if c.role == "hashed":
            size = f"hash_buckets: {_buckets(c.distinct)}"
        else:
            size = f"vocab: {c.distinct + 1}"
        kind = "categorical_list" if c.role == "list" else "categorical"
        extra = f", max_len: {c.max_len}" if c.role == "list" else ""
        inputs.append((f"{{name: {c.name}, kind: {kind}, {size}{extra}}}", _why(c)))
    numbers = layer_id("numbers") if dense else None
    if dense:
        prepared = [
            f"{sum(1 for c in dense if c.transform)} log1p"
            if any(c.transform for c in dense)
            else "",
            f"{sum(1 for c in dense if c.fill)} filled" if any(c.fill for c in dense) else "",
        ]
        steps = f" ({', '.join(p for p in prepared if p)} first)" if any(prepared) else ""
        why = f"{len(dense)} number column(s), standardised on the train split{steps}"
        inputs.append((f"{{name: {numbers}, kind: dense, shape: [{len(dense)}]}}", why))

    width = len(ids) * dim + len(dense)
    scale = width / PAPER_WIDTH
    light_units = [max(4, round(u * scale)) for u in LIGHT_UNITS]
    booster_units = [max(4, round(u * scale)) for u in BOOSTER_UNITS]
    out_features = classes or 1
    layers: list[tuple[str, str]] = []
    reads = []
    if ids:
        fields = layer_id("fields")
        names = _flow([c.name for c in ids], "    in: ")
        layers.append(
            (
                f"shared: each categorical field embedded to {dim} (lists pooled by mean), "
                f"concatenated: (B, {len(ids) * dim})",
                f"id: {fields}\n    op: field_embeddings\n{names}\n    dim: {dim}\n"
                "    role: shared",
            )
        )
        reads.append(fields)
    if dense:
        reads.append(numbers)
    bottom = reads[0]
    if len(reads) > 1:
        bottom = layer_id("features")
        layers.append(
            (
                f"shared: the embeddings and the numbers side by side: (B, {width})",
                f"{{id: {bottom}, op: concat, in: [{', '.join(reads)}], role: shared}}",
            )
        )
    for role, units in (("light", light_units), ("booster", booster_units)):
        tower, logit = layer_id(f"{role}_tower"), layer_id(f"{role}_logit")
        shape = " x ".join(map(str, [width, *units]))
        layers.append(
            (
                f"{role} tower: {shape} -> {out_features}",
                f"{{id: {tower}, op: mlp, in: {bottom}, units: {list(units)}, role: {role}}}",
            )
        )
        layers.append(
            (
                f"{role} logit{'s' if out_features > 1 else ''}",
                f"{{id: {logit}, op: linear, in: {tower}, out_features: {out_features}, "
                f"role: {role}}}",
            )
        )
    ignored = [c for c in columns if c.role == "ignore"]
    pad = max((len(c.name) for c in ignored), default=0)
    rows = len(frame)
    view = {
        "name": name or _identifier(path.stem),
        "file": path.name,
        "command": _command(path, named, name, out, said),
        "rows_read": f"the first {rows:,} rows" if rows != total else f"all {rows:,} rows",
        "sizing": (
            "vocabularies counted over them"
            if rows == total
            else f"vocabularies counted over all {total:,} rows"
        ),
        "summary": _summary(features),
        "width": width,
        "light_text": " x ".join(map(str, [width, *light_units])),
        "booster_text": " x ".join(map(str, [width, *booster_units])),
        "out": str(out),
        "ignored": [f"{c.name.ljust(pad)}  {c.reason}" for c in ignored],
        "description": json.dumps(f"{path.name}: {_summary(features)}; written by rocketc init"),
        "task": task,
        "num_classes": classes,
        "inputs": _aligned(inputs),
        "layers": layers,
        "light_head": layer_id.made["light_logit"],
        "booster_head": layer_id.made["booster_logit"],
        "epochs": 5,
        "batch_size": 512 if total >= 20_000 else 128,
        "source": source,
        "path": json.dumps(str(path)),
        "label": named["label"],
        "group": named["group"],
        "weight": named["weight"],
        "categorical": _flow([c.name for c in ids], "  categorical: "),
        "dense": _dense(numbers, dense, streamed=path.stat().st_size > STREAM_BYTES),
        "delimiter": json.dumps(_delimiter(columns)) if _delimiter(columns) else None,
    }
    return environment().get_template("init_spec.yaml.jinja2").render(**view)


class _Namer:
    """Layer and input ids that no column name takes (inputs and layers share one namespace)."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self.made: dict[str, str] = {}

    def __call__(self, want: str) -> str:
        got = want
        while got in self.taken:
            got += "_"
        self.taken.add(got)
        self.made[want] = got
        return got


def _dense(numbers: str | None, dense: list[Column], streamed: bool) -> str | None:
    """The data section's `dense:` value: a flow list of names, or one line per column when a
    column has a fill or a transform. A streamed table takes a number as its fill (its one pass
    cannot take a median first): the sample's median."""
    if not dense:
        return None
    if not any(c.fill or c.transform for c in dense):
        return f" {{{numbers}: [{', '.join(c.name for c in dense)}]}}"
    lines = [f"\n    {numbers}:"]
    for c in dense:
        settings = [f"column: {c.name}"]
        if c.transform:
            settings.append(f"transform: {c.transform}")
        if c.fill:
            settings.append(f"fill: {c.median:.6g}" if streamed else f"fill: {c.fill}")
        entry = f"{{{', '.join(settings)}}}" if len(settings) > 1 else c.name
        why = (
            "  # the sample's median: a streamed table fills with a number"
            if (c.fill and streamed)
            else ""
        )
        lines.append(f"\n      - {entry}{why}")
    return "".join(lines)


def _buckets(distinct: int) -> int:
    """Twice the distinct values, up to a power of two: about 1 value in 4 shares a bucket."""
    return int(min(max(1 << int(np.ceil(np.log2(max(2 * distinct, 2)))), 1024), 1 << 22))


def _why(c: Column) -> str:
    also = " (also the GAUC group)" if "group" in c.also else ""
    return f"{c.reason}{also}"


def _aligned(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pad = max((len(line) for line, _ in lines), default=0)
    return [(line.ljust(pad), why) for line, why in lines]


def _summary(features: list[Column]) -> str:
    counts = {}
    for c in features:
        counts[c.role] = counts.get(c.role, 0) + 1
    words = {"categorical": "categorical", "hashed": "hashed id", "list": "list", "dense": "number"}
    return ", ".join(
        f"{n} {words[role]}{'s' if n > 1 and role != 'categorical' else ''}"
        for role, n in counts.items()
    )


def _delimiter(columns: list[Column]) -> str | None:
    """The delimiter of the text lists among the features (one for the whole table)."""
    return next((c.delimiter for c in columns if c.role == "list" and c.delimiter), None)


def _command(path: Path, named: dict, name: str | None, out, said: dict[str, str]) -> str:
    flags = " ".join(f"--{k} {v}" for k, v in {**named, "name": name}.items() if v is not None)
    by_role: dict[str, list[str]] = {}
    for column, role in said.items():
        by_role.setdefault(role, []).append(column)
    flags += "".join(
        f" --{role} {','.join(by_role[role])}" for role in OVERRIDES if role in by_role
    )
    words = f"rocketc init --data {path} {flags} -o {out}"
    return " \\\n#     ".join(textwrap.wrap(words, 90, break_on_hyphens=False))


def _flow(names: list[str], lead: str) -> str:
    """`lead` then a YAML flow list of `names`, wrapped under its bracket at 100 columns."""
    lines = textwrap.wrap(
        ", ".join(names),
        100 - len(lead) - 1,
        break_long_words=False,
        break_on_hyphens=False,
    )
    indent = "\n" + " " * (len(lead) + 1)
    return f"{lead}[{indent.join(lines)}]"


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"
