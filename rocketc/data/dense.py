"""Dense features: scalar columns, one vector field, or a text field of tokens made multi-hot;
then `(x - mean) / std` with the train split's statistics (per column, or one for all values).

A table's column may name a `fill` (a missing value takes a number, or the train split's mean or
median, fitted once and saved as the number) and a `transform` (`log1p`: sign(x) *
log(1 + |x|)), applied in that order before standardising, in training and serving alike. Any
other missing or non-finite dense value is an error: a fill value is a modelling choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rocketc.data.features import (
    CHUNK_ROWS,
    RowProblem,
    register_feature,
    row_block,
    row_problems,
    rows_error,
)
from rocketc.data.fields import Field, parse
from rocketc.errors import DataError


@register_feature
@dataclass
class Dense:
    """Numbers from scalar columns, a vector field, or tokens of a text field (multi-hot)."""

    kind: ClassVar[str] = "dense"
    input: str
    shape: tuple[int, ...]
    columns: list[str] | None = None  # one number per column (CSV/Parquet tables)
    field: str | None = None  # or one field holding a vector (or, with `tokens`, text)
    tokens: list[str] | None = None  # the field's whitespace-separated tokens -> one flag each
    mean: np.ndarray | None = None  # (size,) or (1,); None: no standardisation
    std: np.ndarray | None = None
    transform: dict[str, str] | None = None  # column -> "log1p" (tables only)
    # column -> what a missing value becomes: a number ("mean"/"median" until fitted)
    fill: dict[str, Any] | None = None
    # text -> (its flags, an unknown token or None): requests repeat the same few genre strings
    _flags: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def fields(self) -> list[Field]:
        if self.columns is not None:
            return [Field(c, "number") for c in self.columns]
        if self.tokens is not None:
            return [Field(self.field, "str")]
        return [Field(self.field, "vector", self.size)]

    def raw(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        """The raw numbers (n, size) float64, before standardisation, and the rows at fault."""
        problems: list[RowProblem] = []
        if self.columns is not None:
            x, gaps, problems = self._columns_raw(frame)
            x = self._prepared(x, gaps)
        elif self.tokens is not None:
            parsed = parse(self.fields()[0], frame[self.field])
            problems += [RowProblem(r, self.field, m) for r, m in parsed.wrong.items()]
            x = self._multi_hot(parsed.values, problems)
        else:
            parsed = parse(self.fields()[0], frame[self.field])
            problems += row_problems(self.field, parsed.wrong, parsed.missing)
            x = parsed.values
        if self.tokens is None:
            finite = np.isfinite(x).all(axis=1)
            bad_rows = {p.row for p in problems}
            problems += [
                RowProblem(int(r), self._field_name(x[r]), "is not a finite number")
                for r in np.flatnonzero(~finite)
                if int(r) not in bad_rows
            ]
            x = np.where(np.isfinite(x), x, 0.0)
        return x, problems

    def _columns_raw(self, frame) -> tuple[np.ndarray, np.ndarray, list[RowProblem]]:
        """A table's columns: their numbers (n, k) as read, the missing cells of columns with a
        fill (n, k), and the problems (a missing value elsewhere, a wrong-typed one)."""
        parts, gaps, problems = [], [], []
        for spec_field in self.fields():
            parsed = parse(spec_field, frame[spec_field.name])
            gap = parsed.missing & (spec_field.name in (self.fill or {}))
            problems += row_problems(spec_field.name, parsed.wrong, parsed.missing & ~gap)
            parts.append(parsed.values)
            gaps.append(gap)
        if not parts:
            return np.zeros((0, 0)), np.zeros((0, 0), dtype=bool), problems
        return np.stack(parts, axis=1), np.stack(gaps, axis=1), problems

    def _prepared(self, x: np.ndarray, gaps: np.ndarray) -> np.ndarray:
        """Missing cells filled, then each column's transform: what standardisation sees."""
        if gaps.any():
            fills = [(self.fill or {}).get(c, 0.0) for c in self.columns]
            if any(isinstance(v, str) for v in fills):  # a bug: fit resolves every rule
                raise RuntimeError(f"input '{self.input}': fill rules {fills} not fitted")
            x = np.where(gaps, np.asarray(fills, dtype=np.float64), x)
        for j, column in enumerate(self.columns):
            if (self.transform or {}).get(column) == "log1p":
                x[:, j] = np.sign(x[:, j]) * np.log1p(np.abs(x[:, j]))
        return x

    def fit_fills(self, frame: Mapping[str, np.ndarray], seen: str = "the train split") -> None:
        """Replace each `mean`/`median` fill by that statistic of the column's values in
        `frame` (missing and wrong-typed values left out; taken before the transform)."""
        for column, rule in (self.fill or {}).items():
            if not isinstance(rule, str):
                continue
            parsed = parse(Field(column, "number"), frame[column])
            keep = ~parsed.missing & np.isfinite(parsed.values)
            keep[list(parsed.wrong)] = False
            if not keep.any():
                raise DataError(
                    f"{column}: fill: {rule} takes the {rule} of its values in {seen}, and it has "
                    "none; fill it with a number"
                )
            values = parsed.values[keep]
            self.fill[column] = float(np.mean(values) if rule == "mean" else np.median(values))

    def _field_name(self, row: np.ndarray) -> str:
        if self.columns is not None:
            return self.columns[int(np.flatnonzero(~np.isfinite(row))[0])]
        return self.field

    def _multi_hot(self, texts: np.ndarray, problems: list[RowProblem]) -> np.ndarray:
        """One flag per known token of each text; each distinct text is split once."""
        rows = []
        for row, text in enumerate(texts):
            hit = self._flags.get(text)
            if hit is None:
                hit = self._split(text)
                if len(self._flags) < 100_000:  # bounded: a server may see unbounded texts
                    self._flags[text] = hit
            flags, unknown = hit
            if unknown is not None:
                problems.append(
                    RowProblem(
                        row,
                        self.field,
                        f"unknown token {unknown!r}; known: {' '.join(self.tokens)}",
                    )
                )
            rows.append(flags)
        return np.array(rows) if rows else np.zeros((0, len(self.tokens)))

    def _split(self, text: str) -> tuple[np.ndarray, str | None]:
        flags, unknown = np.zeros(len(self.tokens)), None
        for token in text.split():
            if token in self.tokens:
                flags[self.tokens.index(token)] = 1.0
            else:
                unknown = token
        return flags, unknown

    def fit(self, frame: Mapping[str, np.ndarray], per_column: bool = True) -> Dense:
        """Mean and std of the train split's raw numbers; a constant column keeps std 1.

        Computed on the numbers divided by a power of two at least their largest magnitude
        (exact, so ordinary data gets the very same bits), then scaled back: a huge but finite
        value such as 1e300 no longer overflows the squares into an infinite std that would
        standardise the whole column to zeros. Values of 2**1020 (~1e307) and beyond are
        refused, naming the column: their distance to the mean may not fit in a float64.
        """
        self.fit_fills(frame)
        n = len(next(iter(frame.values())))
        blocks = range(0, max(n, 1), CHUNK_ROWS)
        axis = 0 if per_column else None

        def raw(start: int) -> np.ndarray:
            x, problems = self.raw(row_block(frame, start, start + CHUNK_ROWS))
            if problems:
                raise rows_error(problems, "the train split", offset=start)
            return x

        if n <= CHUNK_ROWS:  # one block: numpy's own (pairwise) mean and std
            x = raw(0)
            scale = self._scale(np.abs(x).max(axis=axis, initial=0.0))
            mean, std = (x / scale).mean(axis=axis), (x / scale).std(axis=axis)
        else:  # two passes over row blocks: big image sets never exist in float64 at once
            scale = self._scale(
                np.max([np.abs(raw(a)).max(axis=axis, initial=0.0) for a in blocks], axis=0)
            )
            count = n if per_column else n * self.size
            mean = sum((raw(a) / scale).sum(axis=axis) for a in blocks) / count
            squares = sum(((raw(a) / scale - mean) ** 2).sum(axis=axis) for a in blocks)
            std = np.sqrt(squares / count)
        mean, std = np.atleast_1d(mean * scale), np.atleast_1d(std * scale)
        self.mean, self.std = mean, np.where(std > 0, std, 1.0)
        return self

    def _scale(self, largest: np.ndarray) -> np.ndarray:
        """2**k >= each column's largest |value| (1 for an all-zero column), or a DataError."""
        exponent = np.frexp(np.atleast_1d(largest))[1]
        if exponent.max(initial=0) > 1020:
            j = int(np.argmax(exponent))
            if self.columns is not None and len(exponent) == len(self.columns):
                name = self.columns[j]
            else:
                name = f"{self.field}[{j}]" if len(exponent) > 1 else self.field or self.input
            raise DataError(
                f"{name}: values as large as {float(np.atleast_1d(largest)[j]):.3g} cannot be "
                "standardised (their distance to the mean may not fit in a float64); rescale "
                "the column, e.g. take its log or divide it by a constant"
            )
        scale = np.ldexp(1.0, exponent)
        return scale if largest.ndim else scale[0]

    def encode(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        raw, problems = self.raw(frame)
        x = raw if self.mean is None else (raw - self.mean) / self.std
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype(np.float32)
        # A finite float64 (1e300, or 1e30 over a tiny std) can still overflow the model's
        # float32 input: an infinite input would score NaN without a word, so it is a problem.
        beyond = ~np.isfinite(x).all(axis=1)
        if beyond.any():
            bad_rows = {p.row for p in problems}
            for r in np.flatnonzero(beyond):
                j = int(np.flatnonzero(~np.isfinite(x[r]))[0])
                if int(r) not in bad_rows:
                    name = self.columns[j] if self.columns is not None else self.field
                    problems.append(
                        RowProblem(
                            int(r),
                            name,
                            f"{raw[r, j]:.6g} is out of range: standardised it is beyond "
                            "float32, the model's input type (about ±3.4e38)",
                        )
                    )
            x[~np.isfinite(x)] = 0.0
        return x.reshape(len(x), *self.shape), problems

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input, "kind": self.kind, "shape": list(self.shape)}
        if self.columns is not None:
            out["columns"] = list(self.columns)
        else:
            out["field"] = self.field
        if self.tokens is not None:
            out["tokens"] = list(self.tokens)
            out["missing"] = "no tokens (all flags 0); an unknown token is an error"
        else:
            out["missing"] = "an error (missing or non-finite numbers have no default)"
        if self.fill:
            out["fill"] = dict(self.fill)
            out["missing"] = "the column's fill (fill); in other columns an error"
        if self.transform:
            out["transform"] = dict(self.transform)
            out["transforms"] = "after the fill, before standardising: log1p = sign(x) log(1+|x|)"
        if self.mean is not None:
            out["mean"], out["std"] = self.mean.tolist(), self.std.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dense:
        mean, std = data.get("mean"), data.get("std")
        return cls(
            data["input"],
            tuple(data["shape"]),
            data.get("columns"),
            data.get("field"),
            data.get("tokens"),
            None if mean is None else np.asarray(mean, dtype=np.float64),
            None if std is None else np.asarray(std, dtype=np.float64),
            data.get("transform"),
            data.get("fill"),
        )
