"""How rocketc reads the cells of a CSV file: one rule for init, training, streaming and predict.

An empty cell is missing. In a text column every other cell is a value as written: `NA`, `N/A`,
`null`, `None` are categories like any other, because that is what the table says (pandas and
pyarrow read them as missing by default, so a category "NA" - not applicable, North America - was
merged with unseen values as id 0, and a served request sending "NA" got another id than
training). In a number column the usual markers (`MARKERS`: NA, N/A, NaN, null, ...) are
missing, since they spell no number.

`read_csv` is pandas.read_csv by this rule. Given the text columns (`rocketc predict` knows them
from the run's preprocess.json) it reads those as text and the rest with the markers missing.
Without them (init, the in-memory loader) it reads every cell as written, then reads a column
whose every cell is a number or a marker as numbers, which is what pandas alone would have read.
`arrow_convert_options` gives pyarrow's CSV reader (streamed tables) the same rule: markers are
null only in columns typed as numbers, and text keeps its empty cells as empty text, which every
text field reads as missing (`fields.parse`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# pandas' default missing-value markers (pandas.io.parsers STR_NA_VALUES), spelled out so that
# pyarrow gets the very same list.
MARKERS = (
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def read_csv(
    source,
    *,
    text: Iterable[str] | None = None,
    file_columns: list[str] | None = None,
    **options: Any,
):
    """pandas.read_csv(source, **options) by the module's rule (a frame, or with `chunksize`
    an iterator of frames). `text`: the columns known to hold text; None: decided per column.
    `file_columns`: the file's header, when the caller has read it already."""
    import pandas as pd

    if text is None:
        frame = pd.read_csv(source, keep_default_na=False, na_values=[""], **options)
        if options.get("chunksize") is not None:
            return (settle(chunk) for chunk in frame)
        return settle(frame)
    text = set(text)
    header = file_columns
    if header is None:
        header = list(pd.read_csv(source, nrows=0).columns)
        if hasattr(source, "seek"):
            source.seek(0)
    na_values = {c: [""] if c in text else ["", *MARKERS] for c in header}
    dtype = {c: str for c in text if c in header}
    return pd.read_csv(source, keep_default_na=False, na_values=na_values, dtype=dtype, **options)


def settle(frame):
    """`frame` (read with only empty cells missing) with each text column whose every cell is a
    number or a marker read as numbers, the markers missing (in place; returned)."""
    import pandas as pd

    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        marked = column.isin(MARKERS)
        if not marked.any():
            continue  # pandas saw text that no marker explains: a text column
        rest = column[~marked & column.notna()]
        if not all(isinstance(v, str) for v in rest):
            continue
        numbers = pd.to_numeric(rest, errors="coerce")
        if numbers.notna().all():
            frame[name] = pd.to_numeric(column.where(~marked), errors="coerce")
    return frame


def arrow_convert_options():
    """pyarrow.csv.ConvertOptions by the module's rule (streamed tables)."""
    from pyarrow import csv

    return csv.ConvertOptions(null_values=["", *MARKERS], strings_can_be_null=False)
