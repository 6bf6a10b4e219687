"""`rocketc predict`'s input: a CSV or Parquet file in chunks of pandas frames, its bad text.

CSV text is decoded in the file's `encoding` (Parquet's is UTF-8). A byte that is not valid text
in it is read as U+10FF00 + its value (UNDECODABLE: a private-use character no real table holds;
a lone surrogate, Python's own `surrogateescape`, cannot be stored in pandas' arrow-backed text),
so `Reader.undecodable` names its row and column as a bad row instead of pandas stopping the
file with a traceback, with or without `--on-error skip`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rocketc.data.features import RowProblem
from rocketc.data.fields import Field
from rocketc.errors import DataError, Diagnostic, Position

UNDECODABLE = "rocketc-undecodable"
_UNDECODABLE = re.compile("[\U0010ff80-\U0010ffff]")


def _mark_undecodable(error: UnicodeDecodeError) -> tuple[str, int]:
    bad = error.object[error.start : error.end]
    return "".join(chr(0x10FF00 + b) for b in bad), error.end


codecs.register_error(UNDECODABLE, _mark_undecodable)


class Reader:
    """A CSV or Parquet file in chunks of pandas frames, each with the progress made so far."""

    def __init__(
        self, path: Path, fields: list[Field], keep: list[str], chunk_rows: int, encoding: str
    ):
        self.path, self.fields, self.keep, self.chunk_rows = path, fields, keep, chunk_rows
        self.encoding = encoding if path.suffix.lower() not in (".parquet", ".pq") else "utf-8"
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        self.kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
        self.header = self._header()
        self.columns = self._needed()
        self.total = (
            path.stat().st_size if self.kind == "csv" else self._parquet().metadata.num_rows
        )

    def _parquet(self):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"{self.path}: cannot read as Parquet: {exc}") from None

    def _header(self) -> list[str]:
        if self.kind == "parquet":
            return list(self._parquet().schema_arrow.names)
        import pandas as pd

        try:
            return list(pd.read_csv(self.path, nrows=0, **self._decoding()).columns)
        except Exception as exc:  # pandas raises several types for a file that is not CSV
            raise DataError(f"{self.path}: cannot read as CSV: {exc}") from None

    def _needed(self) -> list[str]:
        """The columns to read: each field's (a vector: name_0 ..., or a list column), kept ones."""
        have, wanted, absent = set(self.header), [], []
        for field in self.fields:
            columns = [field.name] if field.name in have else field.columns()
            absent += [c for c in columns if c not in have]
            wanted += columns
        absent += [c for c in self.keep if c not in have]
        if absent:
            fields = ", ".join(f"{f.name} ({f.describe()})" for f in self.fields)
            raise DataError(
                f"{self.path}: no column(s) {absent[:10]}{' ...' if len(absent) > 10 else ''}; "
                f"the model reads: {fields} (a vector of k values: columns NAME_0 ... NAME_k-1)"
            )
        return list(dict.fromkeys(wanted + self.keep))

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        if self.kind == "parquet":
            rows = 0
            for batch in self._parquet().iter_batches(self.chunk_rows, columns=self.columns):
                rows += batch.num_rows
                yield self._frame(batch), rows
            return
        from rocketc.data.csvread import read_csv

        # Text fields read as text ("02134" stays text, "NA" is a category), as in training.
        text = [f.name for f in self.fields if f.type in ("str", "list")]
        with open(self.path, "rb") as handle:
            chunks = read_csv(
                handle,
                text=text,
                file_columns=self.header,
                usecols=self.columns,
                chunksize=self.chunk_rows,
                **self._decoding(),
            )
            for chunk in chunks:
                yield chunk.reset_index(drop=True), handle.tell()

    def _decoding(self) -> dict[str, str]:
        return {"encoding": self.encoding, "encoding_errors": UNDECODABLE}

    def _frame(self, batch):
        """A Parquet batch as pandas; a text column holding bytes that are not UTF-8 (which
        pandas cannot hold as text) is decoded the way a CSV file is, for `undecodable`."""
        import pyarrow as pa

        columns = []
        for column in batch.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                try:
                    column.validate(full=True)
                except pa.ArrowInvalid:
                    raw = column.cast(pa.large_binary()).to_pylist()
                    text = [None if v is None else v.decode("utf-8", UNDECODABLE) for v in raw]
                    column = pa.array(text, pa.large_string())
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pandas()

    def undecodable(self, chunk) -> list[RowProblem]:
        """Cells holding bytes that are not valid text in the file's encoding (marked by
        UNDECODABLE), one problem each: a Latin-1 export read as UTF-8, a damaged file."""
        import pandas as pd

        found = []
        for name in chunk.columns:
            column = chunk[name]
            if column.dtype != object and not pd.api.types.is_string_dtype(column):
                continue
            values = column.tolist()
            if not _UNDECODABLE.search("\0".join(v for v in values if isinstance(v, str))):
                continue  # one C-level pass: clean text has no mark
            if self.kind == "parquet":
                advice = "Parquet text must be UTF-8"
            else:
                advice = "for a file in another encoding give --encoding, e.g. --encoding latin-1"
            for row, value in enumerate(values):
                mark = _UNDECODABLE.search(value) if isinstance(value, str) else None
                if mark:
                    byte = ord(mark.group()) - 0x10FF00
                    message = f"is not valid {self.encoding} text (byte 0x{byte:02x}); {advice}"
                    found.append(RowProblem(row, name, message))
        return found

    def empty(self):
        import pandas as pd

        return pd.DataFrame({c: [] for c in self.columns})

    def diagnostic(self, row: int, problem) -> Diagnostic:
        """A problem of data row `row` (0-based) at FILE:LINE:COLUMN (Parquet: row:column)."""
        name = problem.field if problem.field in self.header else f"{problem.field}_0"
        col = self.header.index(name) + 1 if name in self.header else 1
        line = row + 2 if self.kind == "csv" else row + 1  # CSV line 1 is the header
        return Diagnostic(
            f"{problem.field}: {problem.message}", str(self.path), Position(line, col)
        )
