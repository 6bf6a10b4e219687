"""The body of `POST /v1/score`: JSON -> raw columns, with every problem named by field and row.

Two shapes, both carrying many candidates in one request:

    {"rows": [{"user_id": 196, "item_id": 242, ...}, {...}], "common": {...}}
    {"columns": {"user_id": [196, 186], "item_id": [242, 302], ...}, "common": {...}}

`common` (optional) holds fields shared by every row, e.g. the user's for a list of candidate
items; a row's own value wins. Fields the model does not read are ignored. Each problem is
reported with a JSON path to the value: `rows[3].user_id` or `columns.user_id[3]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rocketc.data.features import RowProblem
from rocketc.data.fields import Field

MAX_PROBLEMS = 50  # listed in one 422 response; the rest are counted
_ABSENT = object()


@dataclass(frozen=True)
class Limits:
    max_rows: int = 10_000  # candidates in one request
    max_body_bytes: int = 8 << 20


class RequestError(Exception):
    """A request the server refuses: 400 (not JSON), 413 (too big) or 422 (invalid)."""

    def __init__(self, status: int, message: str, problems: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.problems:
            out["problems"] = self.problems[:MAX_PROBLEMS]
            if len(self.problems) > MAX_PROBLEMS:
                out["more"] = len(self.problems) - MAX_PROBLEMS
        return out


@dataclass
class Batch:
    """A request's rows as raw columns, and how to name a (row, field) back to the client."""

    columns: dict[str, np.ndarray]
    n: int
    shape: str  # "rows" | "columns"
    absent: list[RowProblem]  # fields a row lacks (their slots hold None, i.e. missing)

    def where(self, row: int, field: str) -> str:
        return f"rows[{row}].{field}" if self.shape == "rows" else f"columns.{field}[{row}]"

    def check(self, found: list[RowProblem]) -> None:
        """Raise 422 listing absent fields and the preprocessing's problems, if there are any."""
        if not (self.absent or found):
            return
        absent = {(p.row, p.field) for p in self.absent}
        problems = self.absent + [p for p in found if (p.row, p.field) not in absent]
        problems.sort(key=lambda p: (p.row, p.field))
        raise RequestError(
            422,
            f"{len(problems)} problem(s) in the request",
            [
                {
                    "at": self.where(p.row, p.field),
                    "row": p.row,
                    "field": p.field,
                    "message": p.message,
                }
                for p in problems
            ],
        )


def parse_request(payload: Any, fields: dict[str, Field], limits: Limits) -> Batch:
    """Validate the request's shape and gather each field's column; raises RequestError."""
    if not isinstance(payload, dict):
        raise RequestError(422, 'the body must be a JSON object with "rows" or "columns"')
    unknown = sorted(set(payload) - {"rows", "columns", "common"})
    if unknown:
        raise RequestError(
            422, f'unknown top-level key(s) {unknown}; use "rows" or "columns", and "common"'
        )
    if ("rows" in payload) == ("columns" in payload):
        raise RequestError(422, 'give exactly one of "rows" (a list of objects) or "columns"')
    common = payload.get("common", {})
    if not isinstance(common, dict):
        raise RequestError(422, '"common" must be an object of field values')
    if "rows" in payload:
        return _from_rows(payload["rows"], common, fields, limits)
    return _from_columns(payload["columns"], common, fields, limits)


def _check_count(n: int, limits: Limits) -> None:
    if n == 0:
        raise RequestError(422, "no rows to score")
    if n > limits.max_rows:
        raise RequestError(413, f"{n:,} rows in one request; the limit is {limits.max_rows:,}")


def _from_rows(rows: Any, common: dict, fields: dict[str, Field], limits: Limits) -> Batch:
    if not isinstance(rows, list):
        raise RequestError(422, '"rows" must be a list of objects')
    _check_count(len(rows), limits)
    problems = [
        {"at": f"rows[{r}]", "row": r, "message": "must be an object of field values"}
        for r, row in enumerate(rows)
        if not isinstance(row, dict)
    ]
    if problems:
        raise RequestError(422, "invalid rows", problems)
    columns, absent = {}, []
    for name in fields:
        default = common.get(name, _ABSENT)
        column = [row.get(name, default) for row in rows]
        for r, value in enumerate(column):
            if value is _ABSENT:
                absent.append(RowProblem(r, name, "is missing (no such key in the row or common)"))
                column[r] = None
        columns[name] = _objects(column)
    return Batch(columns, len(rows), "rows", absent)


def _from_columns(columns: Any, common: dict, fields: dict[str, Field], limits: Limits) -> Batch:
    if not isinstance(columns, dict):
        raise RequestError(422, '"columns" must be an object: field -> list of values')
    lengths = {k: len(v) for k, v in columns.items() if k in fields and isinstance(v, list)}
    problems = [
        {"at": f"columns.{k}", "field": k, "message": "must be a list of values, one per row"}
        for k, v in columns.items()
        if k in fields and not isinstance(v, list)
    ]
    n = max(lengths.values(), default=0)
    problems += [
        {"at": f"columns.{k}", "field": k, "message": f"has {m} values; other columns have {n}"}
        for k, m in lengths.items()
        if m != n
    ]
    missing = [k for k in fields if k not in columns and k not in common]
    problems += [
        {"at": f"columns.{k}", "field": k, "message": "is missing (in columns and common)"}
        for k in missing
    ]
    if problems:
        raise RequestError(422, f"{len(problems)} problem(s) in the request", problems)
    _check_count(n, limits)
    out = {
        name: _objects(columns[name]) if name in columns else _objects([common[name]] * n)
        for name in fields
    }
    return Batch(out, n, "columns", [])


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
