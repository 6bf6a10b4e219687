"""The raw row: the fields a served net reads, their types, and parsing one column of them.

A raw row is what a user holds before any rocketc preprocessing: one CSV or Parquet row, one
JSON object of a `/v1/score` request, one record of a data source. Each field has a type:

- `int`: a whole number, such as an id (3.0 is read as 3; 3.5 is an error);
- `bool`: true or false (a boolean column of the training table); 1 and 0 are read as true and
  false, anything else is an error;
- `number`: any real number;
- `str`: text;
- `vector`: a fixed count of real numbers, such as an image's pixels: a JSON list (nested
  lists are flattened row-major), in CSV/Parquet the columns `name_0 ... name_{k-1}` or one
  Parquet list column `name`.
- `list`: any number of category values (tags, genres, clicked items): a JSON list, a Parquet
  list column, or text the feature splits at its delimiter (a CSV cell `drama|comedy`); a single
  value is a list of one, a missing one an empty list.

`parse` turns one column of values, as numpy, pandas or JSON give them, into a typed numpy array,
a mask of missing values (None, NaN, an empty cell) and the rows whose value has the wrong type.
Numeric text is read by one rule, `number_from_text`, wherever it comes from (a CSV cell pandas
left as text, a Parquet string column, a JSON string in a `/v1/score` request): `"30"` is 30,
`" -1.5e3 "` is -1500.0, empty text is missing like an empty CSV cell, and text spelling no
number (`"abc"`, `"1,000"`) is a wrong type, named with its row.
`raw_columns` takes the fields out of a pandas frame: the tabular loader trains on what it gives,
and `rocketc predict` reads its files through it, so both see a file the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

TYPES = ("int", "bool", "number", "str", "vector", "list")


def column_type(kind: str) -> str:
    """The field type of a table column whose numpy dtype kind is `kind` (a pandas column's
    `.to_numpy().dtype.kind`): booleans, whole numbers, other numbers, and the rest as text."""
    return "bool" if kind == "b" else "int" if kind in "iu" else "number" if kind == "f" else "str"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of TYPES
    size: int = 1  # values per row; more than 1 only for vectors

    def describe(self) -> str:
        return f"vector[{self.size}]" if self.type == "vector" else self.type

    def columns(self) -> list[str]:
        """Its columns in a CSV or Parquet file: a vector spreads over name_0 ... name_{k-1}."""
        if self.type == "vector":
            return [f"{self.name}_{k}" for k in range(self.size)]
        return [self.name]


@dataclass
class Parsed:
    # int and bool: int64 (n,); number: float64 (n,); str: object (n,); vector: float64 (n, k)
    values: np.ndarray
    missing: np.ndarray  # bool (n,): absent values (wrong-typed rows are not missing)
    wrong: dict[int, str]  # row -> what is wrong with its value; its slot in `values` is filler


def parse(field: Field, column) -> Parsed:
    """Parse one column (numpy array, list, or anything numpy takes) of `field`'s values."""
    array = column if isinstance(column, np.ndarray) else _as_array(column, field)
    if field.type in ("int", "number") and array.dtype == object:
        array = numbers_in_text(array)
    return _PARSERS[field.type](array, field)


# Numeric text, as every CSV reader hands it over. Whole-number digits become an int (exact past
# 2**53, so a long id keeps its value); Python's float() would also take "1_000", which no CSV
# reader writes, hence the patterns.
_WHOLE_TEXT = re.compile(r"[+-]?[0-9]{1,400}")
# Unambiguous (each digit has one place to go), so a match fails in linear time: the old
# `[0-9]+\.?[0-9]*` split a run of digits every possible way before failing, and one 5 MB
# text of digits (a request's value) held a server worker for hours.
_NUMBER_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


def number_from_text(text: str) -> int | float | str | None:
    """The number `text` spells, by the one rule for numeric text (module docstring).

    An int for whole-number digits, a float for other numbers (`inf`, `nan` included: the
    checks of a number field then apply as to the same JSON number); None for empty or blank
    text, a missing value; `text` itself when it spells no number, for the parser to name.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if _WHOLE_TEXT.fullmatch(stripped):
        return int(stripped)
    if _NUMBER_TEXT.fullmatch(stripped):
        return float(stripped)
    return text


def numbers_in_text(array: np.ndarray) -> np.ndarray:
    """An object array with each text replaced by `number_from_text`'s reading of it (a copy
    when there is text; other values, and text spelling no number, unchanged)."""
    if not any(issubclass(kind, str) for kind in set(map(type, array))):
        return array  # one C-level pass: a request's numbers are rarely text
    at = [i for i, value in enumerate(array.tolist()) if isinstance(value, str)]
    out = array.copy()
    for i in at:
        out[i] = number_from_text(out[i])
    return out


def _as_array(column, field: Field) -> np.ndarray:
    values = list(column)
    out = np.empty(len(values), dtype=object)
    out[:] = values  # never let numpy turn a list of lists into a 2-D array (or fail on ragged)
    return out


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _name(value) -> str:
    """A value as the user wrote it, for messages (short, JSON-like)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (list, tuple, np.ndarray)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


# Python types of JSON values (and pandas cells) numpy converts exactly, None becoming NaN.
_INTS, _NUMBERS = {int}, {int, float, type(None)}


def _plain(array: np.ndarray, allowed: set) -> np.ndarray | None:
    """An object array as int64/float64 when every value's type is in `allowed`, else None.

    One C-level pass over the types (`set(map(type, ...))`): a request's columns are almost
    always clean, and per-value checks then only run to word an error.
    """
    if array.dtype != object or not set(map(type, array)) <= allowed:
        return None
    try:
        return np.array(array.tolist(), dtype=np.int64 if allowed is _INTS else np.float64)
    except OverflowError:  # an integer past 64 bits: the per-value pass words it
        return None


def _parse_int(array: np.ndarray, field: Field) -> Parsed:
    n = len(array)
    plain = _plain(array, _INTS)
    if plain is not None:
        return Parsed(plain, np.zeros(n, bool), {})
    if array.dtype == object and not set(map(type, array)) <= _INTS:
        plain = _plain(array, _NUMBERS)
        if plain is not None:
            array = plain  # now float64, None as NaN: the float branch below words the errors
    if array.dtype.kind in "iub":
        return Parsed(array.astype(np.int64, copy=False), np.zeros(n, bool), {})
    if array.dtype.kind == "f":
        missing = np.isnan(array)
        whole = np.isfinite(array) & (array == np.floor(array))
        fine = whole & (np.abs(array) < 2.0**63)
        wrong = {
            int(r): f"{float(array[r]):.0f} does not fit in 64 bits"
            if whole[r]
            else f"expected a whole number, got {float(array[r])!r}"
            for r in np.flatnonzero(~missing & ~fine)
        }
        return Parsed(np.where(fine, array, 0).astype(np.int64), missing, wrong)
    values, missing, wrong = np.zeros(n, np.int64), np.zeros(n, bool), {}
    for row, value in enumerate(array):
        if _is_missing(value):
            missing[row] = True
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            if not -(2**63) <= value < 2**63:
                wrong[row] = f"{value} does not fit in 64 bits"
                continue
            values[row] = value
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            if abs(value) >= 2.0**63:
                wrong[row] = f"{value:.0f} does not fit in 64 bits"
                continue
            values[row] = int(value)
        else:
            wrong[row] = f"expected a whole number, got {_name(value)}"
    return Parsed(values, missing, wrong)


def _parse_bool(array: np.ndarray, field: Field) -> Parsed:
    """True/false as 1/0. A boolean column comes as numpy bools, or (with gaps, or through
    pandas' number reading) as 1.0/0.0/NaN; JSON gives true/false, and 1/0 are taken too."""
    n = len(array)
    if array.dtype.kind == "b":
        return Parsed(array.astype(np.int64), np.zeros(n, bool), {})
    if array.dtype.kind in "iuf":
        values = array.astype(np.float64, copy=False)
        missing = np.isnan(values)
        bad = np.flatnonzero(~missing & (values != 0) & (values != 1))
        wrong = {int(r): f"expected true or false, got {_name(array[r].item())}" for r in bad}
        return Parsed(np.where(values == 1, 1, 0).astype(np.int64), missing, wrong)
    values, missing, wrong = np.zeros(n, np.int64), np.zeros(n, bool), {}
    for row, value in enumerate(array):
        if _is_missing(value):
            missing[row] = True
        elif isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1)
        ):
            values[row] = int(value)
        else:
            wrong[row] = f"expected true or false, got {_name(value)}"
    return Parsed(values, missing, wrong)


def _parse_number(array: np.ndarray, field: Field) -> Parsed:
    plain = _plain(array, _NUMBERS)
    if plain is not None:
        array = plain
    if array.dtype.kind in "iubf":
        values = array.astype(np.float64, copy=False)
        return Parsed(values, np.isnan(values), {})
    n = len(array)
    values, missing, wrong = np.zeros(n), np.zeros(n, bool), {}
    for row, value in enumerate(array):
        if _is_missing(value):
            missing[row] = True
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        ):
            values[row] = value
        else:
            wrong[row] = f"expected a number, got {_name(value)}"
    return Parsed(values, missing, wrong)


def _parse_str(array: np.ndarray, field: Field) -> Parsed:
    """Text as it is; empty text is missing, as an empty CSV cell is (csvread.py), so a CSV
    read by pyarrow, a Parquet string and a JSON "" all give what pandas' empty cell gives."""
    parsed = _parse_text(array)
    empty = np.asarray(parsed.values == "", dtype=bool)
    empty[list(parsed.wrong)] = False  # a wrong-typed value is not missing
    if empty.any():
        return Parsed(parsed.values, parsed.missing | empty, parsed.wrong)
    return parsed


def _parse_text(array: np.ndarray) -> Parsed:
    n = len(array)
    if array.dtype.kind in "US":
        return Parsed(array.astype(str).astype(object), np.zeros(n, bool), {})
    kinds = set(map(type, array))
    if kinds <= {str}:
        return Parsed(array, np.zeros(n, bool), {})
    if kinds <= {str, type(None)}:
        missing = np.array([v is None for v in array], dtype=bool)
        values = array.copy()
        values[missing] = ""
        return Parsed(values, missing, {})
    values, missing, wrong = np.full(n, "", dtype=object), np.zeros(n, bool), {}
    for row, value in enumerate(array):
        if isinstance(value, str):
            values[row] = value
        elif _is_missing(value):
            missing[row] = True
        else:
            wrong[row] = f"expected text, got {_name(value)}"
    return Parsed(values, missing, wrong)


def _parse_vector(array: np.ndarray, field: Field) -> Parsed:
    n, k = len(array), field.size
    if array.dtype.kind in "iuf" and array.ndim >= 2 and np.prod(array.shape[1:]) == k:
        flat = array.reshape(n, k).astype(np.float64, copy=False)
        return Parsed(flat, np.zeros(n, bool), {})
    if array.dtype == object and array.ndim == 1 and n:
        try:  # the fast path: every row a well-formed list of numbers
            dense = np.array(array.tolist())
        except (ValueError, TypeError):
            dense = None
        if dense is not None and dense.dtype.kind in "iuf" and dense.size == n * k:
            return Parsed(dense.reshape(n, k).astype(np.float64), np.zeros(n, bool), {})
    values, missing, wrong = np.zeros((n, k)), np.zeros(n, bool), {}
    for row, value in enumerate(array if array.ndim == 1 else list(array)):
        if _is_missing(value):
            missing[row] = True
            continue
        if not isinstance(value, (list, tuple, np.ndarray)):
            wrong[row] = f"expected a list of {k} numbers, got {_name(value)}"
            continue
        item = _vector(value)
        if item is None or item.dtype.kind not in "iuf":
            wrong[row] = f"expected a list of {k} numbers, got a list holding other values"
        elif item.size != k:
            wrong[row] = f"expected a list of {k} numbers, got {item.size}"
        else:
            values[row] = item.reshape(-1)
    return Parsed(values, missing, wrong)


def _vector(value) -> np.ndarray | None:
    """One row's list as numbers (numeric text read as `number_from_text` reads it), or None."""
    try:
        item = np.array(value)
    except (ValueError, TypeError):
        return None
    if item.dtype.kind not in "OU":
        return item
    numbers = numbers_in_text(item.astype(object).reshape(-1))
    if not all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        for v in numbers.tolist()
    ):
        return None
    return np.array(numbers.tolist(), dtype=np.float64)


_SCALARS = (str, int, float, np.integer, np.floating)


def _parse_list(array: np.ndarray, field: Field) -> Parsed:
    """Each value kept as it is, checked: text (split later), a list of plain values, or one
    value (a list of one); missing values are empty lists."""
    n = len(array)
    if array.ndim == 2:  # padded rows (npz): one list per row
        out = np.empty(n, dtype=object)
        out[:] = list(array)
        return Parsed(out, np.zeros(n, bool), {})
    values, missing, wrong = np.empty(n, dtype=object), np.zeros(n, bool), {}
    for row, value in enumerate(array):
        if _is_missing(value):
            missing[row] = True
        elif isinstance(value, (bool, np.bool_)) or isinstance(value, dict):
            wrong[row] = f"expected a list of values, got {_name(value)}"
        elif isinstance(value, _SCALARS):
            values[row] = value
        elif not isinstance(value, (list, tuple, np.ndarray)) or (
            isinstance(value, np.ndarray) and value.ndim != 1
        ):
            wrong[row] = f"expected a list of values, got {_name(value)}"
        elif not all(
            isinstance(v, _SCALARS) and not isinstance(v, (bool, np.bool_)) for v in value
        ):
            wrong[row] = "expected a list of plain values (text or numbers), got a list of others"
        else:
            values[row] = value
    values[missing] = ""
    return Parsed(values, missing, wrong)


def raw_columns(frame, fields: list[Field]) -> dict[str, np.ndarray]:
    """The raw fields held by a pandas frame, typed for `fields.parse`.

    Text stays text (a missing cell becomes None). A number column pandas could not read as
    numbers keeps each unreadable cell as its text, so parsing names the row and the value. A
    vector is its columns name_0 ... name_{k-1}, or one column `name` of lists (Parquet).
    """
    out = {}
    for field in fields:
        if field.type == "vector" and field.name not in frame.columns:
            parts = [_numbers(frame[c]) for c in field.columns()]
            if all(p.dtype != object for p in parts):
                out[field.name] = np.stack([p.astype(np.float64) for p in parts], axis=1)
            else:  # text no number: (n, k) objects, which the vector parser words per row
                out[field.name] = np.stack([p.astype(object) for p in parts], axis=1)
        elif field.type in ("int", "bool", "number"):
            out[field.name] = _numbers(frame[field.name])
        else:
            column = frame[field.name]
            out[field.name] = np.where(
                column.isna().to_numpy(), None, column.to_numpy(dtype=object)
            )
    return out


def _numbers(column) -> np.ndarray:
    """A numeric column as numpy; a text or mixed one as objects: numbers (its numeric text read
    by `number_from_text`, as a request's JSON strings are), None, and text spelling no number."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_object_dtype(column):
        if pd.api.types.is_integer_dtype(column) and not column.isna().any():
            return column.to_numpy(dtype=np.int64)
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.array(column.to_numpy(dtype=object, na_value=None))  # a writable copy
    return numbers_in_text(out)


_PARSERS = {
    "int": _parse_int,
    "bool": _parse_bool,
    "number": _parse_number,
    "str": _parse_str,
    "vector": _parse_vector,
    "list": _parse_list,
}
