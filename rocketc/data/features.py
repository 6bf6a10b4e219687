"""The features of a run's preprocessing: how one spec input is made from raw fields.

- `Categorical`: one raw field -> an optional `derive` step (a registered value transform, e.g.
  an age band, or `Quantiles`: bands whose edges are fitted first, on the train split's
  numbers) -> a train-split vocabulary: the k-th smallest train value gets id k + 1. A value
  unseen in training, a missing value (None, NaN, empty text after `strip`/`prefix`) and a
  non-number fed to `bucket`/`floor` all get id 0. Without a vocabulary (npz sources, which hold
  ids already) the value is the id, and one outside [0, vocab) is an error.
- `Dense` (dense.py): numbers, standardised with the train split's statistics.

A feature kind and a derive step each register themselves by name (`register_feature`,
`register_derive`), which is how preprocess.json names them. `encode` never raises for a bad
row: it returns filler for it and a `RowProblem` saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from rocketc.data.fields import Field, parse
from rocketc.errors import DataError, Diagnostic

CHUNK_ROWS = 8192  # big frames go in row blocks: float64 temporaries stay ~50 MB at most


@dataclass(frozen=True)
class RowProblem:
    row: int  # 0-based position in the frame given to `encode`
    field: str  # the raw field (column) at fault
    message: str


# --- derive: value transforms a categorical feature applies before its vocabulary -----------
_DERIVES: dict[str, type] = {}


def register_derive(cls: type) -> type:
    """Class decorator: make a value transform known to preprocess.json by its `name`."""
    _DERIVES[cls.name] = cls
    return cls


@register_derive
@dataclass(frozen=True)
class Strip:
    """Text without surrounding spaces; empty text is missing."""

    name: ClassVar[str] = "strip"
    takes: ClassVar[str] = "str"
    gives: ClassVar[str] = "str"

    def __call__(self, values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.array([v.strip() for v in values], dtype=object)
        return out, missing | (out == "")


@register_derive
@dataclass(frozen=True)
class Prefix:
    """The first `length` characters of the stripped text, upper-cased; empty text is missing."""

    name: ClassVar[str] = "prefix"
    takes: ClassVar[str] = "str"
    gives: ClassVar[str] = "str"
    length: int = 1

    def __call__(self, values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.array([v.strip()[: self.length].upper() for v in values], dtype=object)
        return out, missing | (out == "")


@register_derive
@dataclass(frozen=True)
class Bucket:
    """The band of a number: how many of the sorted `edges` are <= it (0 .. len(edges))."""

    name: ClassVar[str] = "bucket"
    takes: ClassVar[str] = "number"
    gives: ClassVar[str] = "int"
    edges: tuple[float, ...] = ()

    def __call__(self, values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bands = np.searchsorted(self.edges, np.nan_to_num(values), side="right")
        return bands.astype(np.int64), missing | np.isnan(values)


@register_derive
@dataclass(frozen=True)
class Quantiles(Bucket):
    """A `Bucket` whose edges are fitted: the train split's quantiles at 1/buckets, 2/buckets,
    ... (each a train value, the lower one between two; repeats merged, so a column of mostly
    zeros gets fewer bands). Its feature's ids are then band + 1: 1..len(edges) + 1, 0 missing."""

    name: ClassVar[str] = "quantiles"
    buckets: int = 2

    def fitted(self, values: np.ndarray) -> Quantiles:
        """These bands with edges from `values`, the non-missing train numbers (any order)."""
        values = values[np.isfinite(values)]
        if not len(values):
            return replace(self, edges=())
        cuts = np.arange(1, self.buckets) / self.buckets
        edges = np.unique(np.quantile(values, cuts, method="lower"))
        return replace(self, edges=tuple(float(e) for e in edges))


@register_derive
@dataclass(frozen=True)
class Floor:
    """The number rounded down to a multiple of `step` (a year -> its decade with step 10)."""

    name: ClassVar[str] = "floor"
    takes: ClassVar[str] = "number"
    gives: ClassVar[str] = "int"
    step: int = 1

    def __call__(self, values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = (np.nan_to_num(values) // self.step * self.step).astype(np.int64)
        return out, missing | ~np.isfinite(values)


def _derive_to_dict(derive) -> dict[str, Any] | None:
    if derive is None:
        return None
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(derive).items()}
    return {"name": derive.name, **params}


def _derive_from_dict(data: dict[str, Any] | None):
    if data is None:
        return None
    params = dict(data)
    cls = _DERIVES[params.pop("name")]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


# --- features -----------------------------------------------------------------------------
_FEATURES: dict[str, type] = {}


def register_feature(cls: type) -> type:
    """Class decorator: make a feature kind known to preprocess.json by its `kind`."""
    _FEATURES[cls.kind] = cls
    return cls


def feature_from_dict(data: dict[str, Any]):
    """A feature as preprocess.json describes it (its `kind` picks the class)."""
    return _FEATURES[data["kind"]].from_dict(data)


@register_feature
@dataclass
class Categorical:
    """One raw field -> (derive) -> train vocabulary -> an id in [0, vocab); 0 = unseen/missing."""

    kind: ClassVar[str] = "categorical"
    input: str
    vocab: int  # the spec's vocab: ids are in [0, vocab)
    column: str  # the raw field it reads
    type: str  # the raw field's type: int | number | str
    derive: Any = None  # a registered value transform, or None
    vocabulary: np.ndarray | None = None  # sorted train values; None: the value is the id
    _index: dict | None = field(default=None, repr=False, compare=False)

    def fields(self) -> list[Field]:
        return [Field(self.column, self.derive.takes if self.derive else self.type)]

    def values(
        self, frame: Mapping[str, np.ndarray], derive: bool = True
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """(derived values, missing mask, wrong-typed rows) of this feature's raw field (not
        derived with `derive=False`)."""
        parsed = parse(self.fields()[0], frame[self.column])
        values, missing = parsed.values, parsed.missing
        if parsed.wrong:
            missing = missing.copy()
            missing[list(parsed.wrong)] = True  # filler; the row is reported as bad
        if self.derive is not None and derive:
            values, missing = self.derive(values, missing)
        return values, missing, parsed.wrong

    @property
    def quantiles(self) -> bool:
        """Whether its bands are fitted (`Quantiles`): edges first, then one id per band."""
        return isinstance(self.derive, Quantiles)

    def fit(self, frame: Mapping[str, np.ndarray]) -> Categorical:
        """Build the vocabulary from `frame` (the train split's raw rows)."""
        if self.quantiles:
            values, missing, _ = self.values(frame, derive=False)
            return self.fit_bands(values[~missing])
        values, missing, _ = self.values(frame)
        return self.fit_values(values[~missing])

    def fit_bands(self, numbers: np.ndarray) -> Categorical:
        """Fit a `Quantiles` derive's edges on the train `numbers`; every band is in the
        vocabulary, seen in them or not, so its id is band + 1 whichever rows fitted it."""
        self.derive = self.derive.fitted(numbers)
        return self.fit_values(np.arange(len(self.derive.edges) + 1, dtype=np.int64))

    def fit_values(self, values: np.ndarray, seen: str = "the train split") -> Categorical:
        """Build the vocabulary from derived, non-missing `values` (repeats allowed), or refuse
        more distinct values than the spec's vocab holds (`seen`: where they were found)."""
        vocabulary = np.unique(values)
        needed = len(vocabulary) + 1
        if self.vocab < needed:
            raise DataError(
                f"input '{self.input}' needs vocab >= {needed} ({len(vocabulary):,} values in "
                f"{seen} + id 0 for unseen); the spec declares {self.vocab}"
            )
        self.vocabulary, self._index = vocabulary, None
        return self

    def encode(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        values, missing, wrong = self.values(frame)
        problems = [RowProblem(r, self.column, m) for r, m in wrong.items()]
        ids = np.zeros(len(values), dtype=np.int64)
        if self.vocabulary is None:  # the value is the id
            ids[~missing] = values[~missing]
            outside = ~missing & ((ids < 0) | (ids >= self.vocab))
            problems += [
                RowProblem(int(r), self.column, f"id {ids[r]} is outside [0, {self.vocab})")
                for r in np.flatnonzero(outside)
            ]
            ids[outside] = 0
        elif len(self.vocabulary) and values.dtype == object:
            if self._index is None:
                self._index = {v: k + 1 for k, v in enumerate(self.vocabulary.tolist())}
            get = self._index.get
            ids[:] = [0 if gone else get(v, 0) for v, gone in zip(values, missing, strict=True)]
        elif len(self.vocabulary):
            known = values[~missing]
            pos = np.minimum(np.searchsorted(self.vocabulary, known), len(self.vocabulary) - 1)
            ids[~missing] = np.where(self.vocabulary[pos] == known, pos + 1, 0)
        return ids, problems

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": self.input,
            "kind": self.kind,
            "vocab": self.vocab,
            "column": self.column,
            "type": self.type,
            "derive": _derive_to_dict(self.derive),
        }
        if self.vocabulary is None:
            out["ids"] = f"the value is the id, in [0, {self.vocab}); another value is an error"
        else:
            out["vocabulary"] = self.vocabulary.tolist()
            out["unseen"] = "id 0 (a value not in the vocabulary)"
            out["missing"] = "id 0 (null, NaN, empty text, or a non-number where one is derived)"
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Categorical:
        vocabulary = data.get("vocabulary")
        derive = _derive_from_dict(data.get("derive"))
        if vocabulary is not None:
            kind = derive.gives if derive is not None else data["type"]
            dtype = {"int": np.int64, "number": np.float64}.get(kind, object)
            vocabulary = np.array(vocabulary, dtype=dtype)
        return cls(data["input"], data["vocab"], data["column"], data["type"], derive, vocabulary)


def row_problems(name: str, wrong: dict[int, str], missing: np.ndarray) -> list[RowProblem]:
    out = [RowProblem(r, name, m) for r, m in wrong.items()]
    out += [RowProblem(int(r), name, "is missing") for r in np.flatnonzero(missing)]
    return out


def row_block(frame: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
    return {name: column[start:stop] for name, column in frame.items()}


def rows_error(problems: list[RowProblem], what: str, show: int = 10, offset: int = 0) -> DataError:
    lines = [f"{what}, row {p.row + offset + 1}: {p.field}: {p.message}" for p in problems[:show]]
    more = len(problems) - show
    if more > 0:
        lines.append(f"{what}: {more:,} more problem(s) like these")
    return DataError([Diagnostic(line) for line in lines])
