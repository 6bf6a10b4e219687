"""`rocketc predict`: score a CSV or Parquet file with a run's bundle, chunk by chunk.

Memory stays bounded by the chunk: `chunk_rows` rows, or by default as many as fit in
MEMORY_BUDGET by `chunk_rows_for`'s estimate of a row's cost. Each chunk is read (pandas for CSV,
pyarrow for Parquet),
turned into raw fields by the same `raw_columns` the tabular loader trains with, encoded by the
run's preprocessing, scored by light.onnx and appended to the output, which is written under a
temporary name and renamed at the end (`rocketc.files.AtomicFile`, as every file rocketc writes),
so a failed run, a full disk included, never leaves a partial file or a temp file behind.

Rows are numbered from 1, the header not counted; the output's `row` column says which input
row each score belongs to. A bad row (a missing column value, a mistyped one, text that is not
valid in the file's `encoding`, or one the model scores NaN) is an error
listing its problems as `FILE:LINE:COLUMN: ...` (CSV line numbers count the header; Parquet
gives row:column; the first SHOW_PROBLEMS, then one line counting them all), or with
`on_error="skip"` the row is left out of the scores and each of its problems is written to
`<output>.rejects.csv`. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from rocketc.data.features import RowProblem
from rocketc.data.fields import Field, raw_columns
from rocketc.errors import DataError, Diagnostic
from rocketc.files import AtomicFile
from rocketc.serve.bundle import Bundle, Output, load_bundle
from rocketc.serve.reader import Reader

SHOW_PROBLEMS = 20  # listed in a failing run's error; the rest are counted
MEMORY_BUDGET = 256 << 20  # bytes one chunk may take, by `chunk_rows_for`'s estimate
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 1024, 65_536
# What one row of a field costs while its chunk is in memory, in bytes: the pandas column, the
# raw column `raw_columns` makes of it (a Python object per text cell, ~50 bytes + the text),
# the encoded input. Measured on a 41-column table (28 text, 12 number columns): 6.2 kB a row.
_FIELD_BYTES = {"str": 200, "list": 400, "int": 40, "bool": 40, "number": 40, "vector": 40}


def chunk_rows_for(fields: Sequence[Field], keep: Sequence[str] = ()) -> int:
    """Rows per chunk so a chunk stays within MEMORY_BUDGET: 41 columns of census-like text
    and numbers get ~40,000 rows, 64 pixels 65,536 (the most; progress is drawn per chunk),
    a 3,072-number image ~2,000. A kept column is costed as text."""
    per_row = sum(_FIELD_BYTES[f.type] * f.size for f in fields) + _FIELD_BYTES["str"] * len(keep)
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, MEMORY_BUDGET // max(per_row, 1)))


class RowsError(DataError):
    """Bad rows and nothing written: the first problems (diagnostics) and a `summary` line that
    counts them all, printed last."""

    def __init__(self, problems: list[Diagnostic], summary: Diagnostic):
        super().__init__(problems)
        self.summary = summary
        self.args = (f"{self.args[0]}\n{summary}",)


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass
class PredictResult:
    out: Path
    rows: int  # rows read
    scored: int
    rejected: int  # rows left out (on_error="skip")
    problems: int
    rejects: Path | None  # the rejects file, when rows were rejected
    model: str = "light.onnx"  # the model file that scored them


def predict_file(
    run_dir: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    keep: Sequence[str] = (),
    on_error: str = "fail",
    chunk_rows: int | None = None,
    threads: int = 1,
    encoding: str = "utf-8",
    console: Console | None = None,
    bundle: Bundle | None = None,
    model: str | None = None,
) -> PredictResult:
    """Score every row of `data` into `out` (.parquet or .csv); see the module docstring.
    `bundle`: run_dir's, loaded already (tests); `model`: "int8" | "fp32", None for the
    bundle's default."""
    console = console or Console(stderr=True)
    data, out = Path(data), Path(out)
    bundle = bundle or load_bundle(run_dir, threads, model)
    fields = list(bundle.preprocess.fields().values())
    chunk_rows = chunk_rows or chunk_rows_for(fields, keep)
    reader = Reader(data, fields, list(keep), chunk_rows, encoding)
    rejects_path = out.with_name(f"{out.stem}.rejects.csv")
    writer = _Writer(out)
    rejects = _Writer(rejects_path)
    problems: list[Diagnostic] = []
    rows = scored = rejected = count = bad_rows = 0
    progress = Progress(
        TextColumn(f"scoring {data.name}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("predict", total=reader.total, rows=0)
            for chunk, done in reader:
                numbers = np.arange(rows + 1, rows + len(chunk) + 1)
                undecodable = reader.undecodable(chunk)
                for p in undecodable:  # never hashed or looked up: the cell is a problem
                    chunk.at[p.row, p.field] = None
                encoded = bundle.preprocess.encode(raw_columns(chunk, fields), len(chunk))
                _add_problems(encoded, undecodable)
                output = None
                if (~encoded.bad).any():  # once failing, still scored: NaN rows are problems
                    output = bundle.predict({k: v[~encoded.bad] for k, v in encoded.inputs.items()})
                    output = _drop_nonfinite(encoded, output)
                count += len(encoded.problems)
                bad_rows += int(encoded.bad.sum())
                if encoded.problems and on_error == "fail":
                    room = encoded.problems[: SHOW_PROBLEMS - len(problems)]
                    problems += [reader.diagnostic(rows + p.row, p) for p in room]
                elif encoded.problems:
                    rejects.write(_rejects(encoded.problems, rows))
                    rejected += int(encoded.bad.sum())
                good = ~encoded.bad
                if not problems and good.any():
                    kept = chunk.loc[good, list(keep)]  # not chunk[good]: a copy of every column
                    writer.write(_scores(bundle, kept, numbers[good], keep, output))
                    scored += int(good.sum())
                rows += len(chunk)
                progress.update(task, completed=done, rows=rows)
                chunk = encoded = output = None  # freed before the next chunk is read, not after
        if problems:
            shown = f" (the first {len(problems)} above)" if count > len(problems) else ""
            raise RowsError(
                problems,
                Diagnostic(
                    f"{plural(count, 'problem')} in {plural(bad_rows, 'row')}{shown}; nothing "
                    "was written (--on-error skip scores the other rows and writes every "
                    "problem to a rejects file)",
                    str(data),
                ),
            )
        if scored == 0:
            writer.write(_scores(bundle, reader.empty(), np.zeros(0, np.int64), keep, None))
        writer.commit()
        rejects.commit()
    finally:
        writer.discard()
        rejects.discard()
    if not rejected:
        rejects_path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
    rejects = rejects_path if rejected else None
    served = (bundle.served or {}).get("file", "light.onnx")
    return PredictResult(out, rows, scored, rejected, count, rejects, served)


def _add_problems(encoded, found: list[RowProblem]) -> None:
    """Fold problems found outside the preprocessing into a chunk's (in place); a cell's own
    problem (undecodable text) replaces what the preprocessing made of that cell."""
    if not found:
        return
    cells = {(p.row, p.field) for p in found}
    kept = [p for p in encoded.problems if (p.row, p.field) not in cells]
    encoded.problems = sorted(kept + found, key=lambda p: (p.row, p.field))
    encoded.bad[[p.row for p in found]] = True


def _drop_nonfinite(encoded, output: Output) -> Output:
    """Rows the model scores NaN (finite inputs can still overflow inside the net) are bad rows,
    never an empty score; `output` (of the good rows) keeps only the rest."""
    finite = np.isfinite(output.probabilities.reshape(len(output.probabilities), -1)).all(axis=1)
    if finite.all():
        return output
    rows = np.flatnonzero(~encoded.bad)[~finite]
    message = (
        "the model scores this row NaN: each value is in range, but together they overflow "
        "inside the net; check the row's numbers"
    )
    _add_problems(encoded, [RowProblem(int(r), "score", message) for r in rows])
    predicted = None if output.predicted is None else output.predicted[finite]
    return Output(output.probabilities[finite], predicted)


def _scores(bundle: Bundle, chunk, numbers: np.ndarray, keep: Sequence[str], output):
    """The output rows of a chunk: row number, kept columns, then the scores."""
    import pandas as pd

    frame = pd.DataFrame({"row": numbers})
    for column in keep:
        frame[column] = chunk[column].to_numpy()
    classes = bundle.preprocess.label.get("classes")
    if output is None:  # no row scored: an empty table with the right columns
        probs = np.zeros((0, len(classes) if classes else 1))
        predicted = np.zeros(0, np.int64)
    else:
        probs, predicted = output.probabilities, output.predicted
    if classes is None:
        frame["score"] = probs.reshape(-1)
        return frame
    frame["predicted"] = predicted
    frame["predicted_class"] = [classes[k] for k in predicted]
    for k in range(len(classes)):
        frame[f"prob_{k}"] = probs[:, k]
    return frame


def _rejects(found, offset: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "row": [offset + p.row + 1 for p in found],
            "field": [p.field for p in found],
            "problem": [p.message for p in found],
        }
    )


class _Writer:
    """Appends frames to a .parquet or .csv file through `files.AtomicFile` (a temp file, made
    at the first frame); `commit` renames it over the path, `discard` removes it."""

    def __init__(self, path: Path):
        self.path = path
        self.parquet = path.suffix.lower() in (".parquet", ".pq")
        self._file: AtomicFile | None = None
        self._parquet: Any = None
        self._schema: Any = None

    def write(self, frame) -> None:
        header = self._file is None
        if header:
            self._file = AtomicFile(self.path)
        if self.parquet:
            self._write_parquet(frame)
        else:  # rendered here, written by the helper: a full disk is its one line
            self._file.write(frame.to_csv(header=header, index=False).encode("utf-8"))

    def _write_parquet(self, frame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self._file, self._schema)
        try:
            table = table.cast(self._schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"{self.path}: a kept column changes type between chunks ({exc}); "
                "write CSV (-o scores.csv) or raise --chunk-rows"
            ) from None
        self._parquet.write_table(table)

    def commit(self) -> None:
        if self._parquet is not None:
            self._parquet.close()  # writes the footer through the helper
            self._parquet = None
        if self._file is not None:
            self._file.commit()
            self._file = None

    def discard(self) -> None:
        if self._parquet is not None:
            with contextlib.suppress(Exception):  # the error that brought us here is told
                self._parquet.close()
            self._parquet = None
        if self._file is not None:
            self._file.discard()
            self._file = None
