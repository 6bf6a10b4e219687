"""The fitted preprocessing of a run: raw rows -> the net's input arrays; saved as preprocess.json.

One implementation, used three ways: the loaders fit it on the train split and encode every split
with it (so training, validation and test see exactly this code), and `rocketc predict` and
`rocketc serve` load it from the run's `preprocess.json` and encode files and requests with it.

A `Preprocessor` holds one feature per spec input, in spec order:

- `Categorical`: one raw field -> an optional `derive` step (a registered value transform, e.g.
  an age band) -> a train-split vocabulary: the k-th smallest train value gets id k + 1. A value
  unseen in training, a missing value (None, NaN, empty text after `strip`/`prefix`) and a
  non-number fed to `bucket`/`floor` all get id 0. Without a vocabulary (npz sources, which hold
  ids already) the value is the id, and one outside [0, vocab) is an error.
- `Dense`: scalar columns, one vector field, or a text field of tokens made multi-hot; then
  `(x - mean) / std` with the train split's statistics (per column, or one for all values).
  A missing or non-finite dense value is an error: a fill value is a modelling choice.

`encode` never raises for a bad row: it returns every row's arrays (bad rows zero-filled), a mask
of bad rows and one `RowProblem` per problem, so training can refuse, `predict` can reject rows
into a file, and `serve` can answer 422 naming each field and row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rocketc.errors import DataError, Diagnostic
from rocketc.runtime.data.fields import Field, parse

FORMAT = 1
CHUNK_ROWS = 8192  # encode big frames in row blocks: float64 temporaries stay ~50 MB at most


@dataclass(frozen=True)
class RowProblem:
    row: int  # 0-based position in the frame given to `encode`
    field: str  # the raw field (column) at fault
    message: str


@dataclass
class Encoded:
    inputs: dict[str, np.ndarray]  # spec order; dense float32 (n, *shape), categorical int64 (n,)
    bad: np.ndarray  # bool (n,): rows with at least one problem (their arrays are filler)
    problems: list[RowProblem]


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
    _FEATURES[cls.kind] = cls
    return cls


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

    def values(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
        """(derived values, missing mask, wrong-typed rows) of this feature's raw field."""
        parsed = parse(self.fields()[0], frame[self.column])
        values, missing = parsed.values, parsed.missing
        if parsed.wrong:
            missing = missing.copy()
            missing[list(parsed.wrong)] = True  # filler; the row is reported as bad
        if self.derive is not None:
            values, missing = self.derive(values, missing)
        return values, missing, parsed.wrong

    def fit(self, frame: Mapping[str, np.ndarray]) -> Categorical:
        """Build the vocabulary from `frame` (the train split's raw rows)."""
        values, missing, _ = self.values(frame)
        vocabulary = np.unique(values[~missing])
        needed = len(vocabulary) + 1
        if self.vocab < needed:
            raise DataError(
                f"input '{self.input}' needs vocab >= {needed} ({len(vocabulary):,} values in "
                f"the train split + id 0 for unseen); the spec declares {self.vocab}"
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
            parts = []
            for spec_field in self.fields():
                parsed = parse(spec_field, frame[spec_field.name])
                problems += _problems(spec_field.name, parsed.wrong, parsed.missing)
                parts.append(parsed.values)
            x = np.stack(parts, axis=1) if parts else np.zeros((0, 0))
        elif self.tokens is not None:
            parsed = parse(self.fields()[0], frame[self.field])
            problems += [RowProblem(r, self.field, m) for r, m in parsed.wrong.items()]
            x = self._multi_hot(parsed.values, problems)
        else:
            parsed = parse(self.fields()[0], frame[self.field])
            problems += _problems(self.field, parsed.wrong, parsed.missing)
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
        """Mean and std of the train split's raw numbers; a constant column keeps std 1."""
        n = len(next(iter(frame.values())))
        blocks = range(0, max(n, 1), CHUNK_ROWS)
        axis = 0 if per_column else None

        def raw(start: int) -> np.ndarray:
            x, problems = self.raw(_rows(frame, start, start + CHUNK_ROWS))
            if problems:
                raise _rows_error(problems, "the train split", offset=start)
            return x

        if n <= CHUNK_ROWS:  # one block: numpy's own (pairwise) mean and std
            x = raw(0)
            mean, std = x.mean(axis=axis), x.std(axis=axis)
        else:  # two passes over row blocks: big image sets never exist in float64 at once
            mean = sum(raw(a).sum(axis=axis) for a in blocks) / (n if per_column else n * self.size)
            squares = sum(((raw(a) - mean) ** 2).sum(axis=axis) for a in blocks)
            std = np.sqrt(squares / (n if per_column else n * self.size))
        mean, std = np.atleast_1d(mean), np.atleast_1d(std)
        self.mean, self.std = mean, np.where(std > 0, std, 1.0)
        return self

    def encode(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        x, problems = self.raw(frame)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.astype(np.float32).reshape(len(x), *self.shape), problems

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
        )


def _problems(name: str, wrong: dict[int, str], missing: np.ndarray) -> list[RowProblem]:
    out = [RowProblem(r, name, m) for r, m in wrong.items()]
    out += [RowProblem(int(r), name, "is missing") for r in np.flatnonzero(missing)]
    return out


# --- the preprocessor ---------------------------------------------------------------------
@dataclass
class Preprocessor:
    """Every spec input's feature, plus what one raw row is and what the label means."""

    source: str  # the data source it was fitted on
    raw_row: str  # what one raw row is, in words
    features: list  # Categorical | Dense, in spec input order
    label: dict[str, Any]  # {"task", "meaning", and for multiclass "classes": [names]}

    def fields(self) -> dict[str, Field]:
        """The raw fields a row must hold, by name (features may share a field)."""
        out: dict[str, Field] = {}
        for feature in self.features:
            for f in feature.fields():
                out.setdefault(f.name, f)
        return out

    def encode(self, frame: Mapping[str, Any], n: int | None = None) -> Encoded:
        """Encode `n` raw rows (`frame`: field name -> column of values); never raises per row."""
        if n is None:
            n = len(next(iter(frame.values()))) if frame else 0
        if n > CHUNK_ROWS:
            return _concat(
                [self._encode(_rows(frame, a, a + CHUNK_ROWS), a) for a in range(0, n, CHUNK_ROWS)]
            )
        return self._encode(frame, 0)

    def _encode(self, frame: Mapping[str, Any], offset: int) -> Encoded:
        frame = {k: v if isinstance(v, np.ndarray) else _column(v) for k, v in frame.items()}
        n = len(next(iter(frame.values()))) if frame else 0
        inputs, problems = {}, []
        for feature in self.features:
            inputs[feature.input], found = feature.encode(frame)
            problems += found
        bad = np.zeros(n, dtype=bool)
        bad[[p.row for p in problems]] = True
        problems = [RowProblem(p.row + offset, p.field, p.message) for p in problems]
        return Encoded(inputs, bad, sorted(problems, key=lambda p: (p.row, p.field)))

    def encode_split(self, frame: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        """Encode rows for training; any bad row is a DataError naming it (`what`: whose rows)."""
        encoded = self.encode(frame)
        if encoded.problems:
            raise _rows_error(encoded.problems, what)
        return encoded.inputs

    # --- preprocess.json ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "raw_row": self.raw_row,
            "fields": {
                name: f.describe() for name, f in sorted(self.fields().items())
            },  # for readers; rebuilt from `inputs` on load
            "inputs": [f.to_dict() for f in self.features],
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        features = [_FEATURES[f["kind"]].from_dict(f) for f in data["inputs"]]
        return cls(data["source"], data["raw_row"], features, data["label"])

    def dumps(self, extra: dict[str, Any] | None = None) -> str:
        """preprocess.json's text: `extra` (versions, hash) first, then this preprocessor."""
        return dumps_json({"format": FORMAT, **(extra or {}), **self.to_dict()}) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def identity(spec) -> Preprocessor:
    """Inputs taken as they are: a dense input is a vector field of its name, a categorical one
    an id field. For data prepared outside rocketc (npz archives, hand-made datasets)."""
    features: list = []
    for item in spec.inputs:
        if item.kind == "dense":
            features.append(Dense(item.name, tuple(item.shape), field=item.name))
        else:
            features.append(Categorical(item.name, item.vocab, item.name, "int"))
    raw = "one field per spec input, by its name: a list of numbers (dense) or an id (categorical)"
    return Preprocessor("arrays", raw, features, label_info(spec, "the label"))


def label_info(spec, meaning: str, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """What the served output means: binary -> P(`meaning`); multiclass -> one per class."""
    if spec.task == "binary":
        return {"task": "binary", "meaning": meaning, "output": f"probability that {meaning}"}
    names = list(classes) if classes is not None else [str(k) for k in range(spec.num_classes)]
    return {
        "task": "multiclass",
        "meaning": meaning,
        "classes": names,
        "output": "one probability per class (softmax) and the most probable class",
    }


def dumps_json(value: Any, indent: str = "") -> str:
    """JSON, indented, but a list of plain values (a vocabulary) fills lines of ~100 characters
    instead of taking one line per value."""
    inner = indent + "  "
    flat = isinstance(value, dict) and not any(isinstance(v, dict) for v in value.values())
    if flat and len(json.dumps(value)) <= 60:  # a derive step: one line
        return json.dumps(value)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {dumps_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + dumps_json(v, inner) for v in value) + f"\n{indent}]"
    if isinstance(value, list) and len(json.dumps(value)) > 100 - len(indent):
        lines, line = [], []
        for text in (json.dumps(v) for v in value):
            if line and len(inner) + len(", ".join([*line, text])) > 99:
                lines.append(", ".join(line))
                line = []
            line.append(text)
        lines.append(", ".join(line))
        return "[\n" + ",\n".join(inner + text for text in lines) + f"\n{indent}]"
    return json.dumps(value)


def take(frame: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The raw rows `rows` of a frame."""
    return {name: column[rows] for name, column in frame.items()}


def _rows(frame: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
    return {name: column[start:stop] for name, column in frame.items()}


def _column(values: Sequence) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _concat(parts: list[Encoded]) -> Encoded:
    names = parts[0].inputs
    return Encoded(
        {k: np.concatenate([p.inputs[k] for p in parts]) for k in names},
        np.concatenate([p.bad for p in parts]),
        [problem for p in parts for problem in p.problems],
    )


def _rows_error(
    problems: list[RowProblem], what: str, show: int = 10, offset: int = 0
) -> DataError:
    lines = [f"{what}, row {p.row + offset + 1}: {p.field}: {p.message}" for p in problems[:show]]
    more = len(problems) - show
    if more > 0:
        lines.append(f"{what}: {more:,} more problem(s) like these")
    return DataError([Diagnostic(line) for line in lines])


def describe_problems(problems: list[RowProblem], show: int = 20) -> list[str]:
    """Human lines for the first `show` problems (rows numbered from 1), then a count."""
    lines = [f"row {p.row + 1}: {p.field}: {p.message}" for p in problems[:show]]
    if len(problems) > show:
        lines.append(f"... and {len(problems) - show:,} more")
    return lines
