"""The fitted preprocessing of a run: raw rows -> the net's input arrays; saved as preprocess.json.

One implementation, used three ways: the loaders fit it on the train split and encode every split
with it (so training, validation and test see exactly this code), and `rocketc predict` and
`rocketc serve` load it from the run's `preprocess.json` and encode files and requests with it.

A `Preprocessor` holds one feature per spec input, in spec order (`features.py`: categorical
vocabularies with id 0 for unseen or missing values, dense standardisation), plus what one raw
row is and what the label means. `encode` never raises for a bad row: it returns every row's
arrays (bad rows zero-filled), a mask of bad rows and one `RowProblem` per problem, so training
can refuse, `predict` can reject rows into a file, and `serve` can answer 422 naming each field
and row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rocketc.data.dense import Dense  # (also registers the feature kind)
from rocketc.data.features import (
    CHUNK_ROWS,
    Categorical,
    RowProblem,
    feature_from_dict,
    row_block,
    rows_error,
)
from rocketc.data.fields import Field
from rocketc.data.hashing import Hashed  # noqa: F401 (registers the feature kind)
from rocketc.data.lists import CategoricalList

FORMAT = 1


@dataclass
class Encoded:
    inputs: dict[str, np.ndarray]  # spec order; dense float32 (n, *shape), categorical int64 (n,)
    bad: np.ndarray  # bool (n,): rows with at least one problem (their arrays are filler)
    problems: list[RowProblem]


# --- the preprocessor ---------------------------------------------------------------------
@dataclass
class Preprocessor:
    """Every spec input's feature, plus what one raw row is and what the label means."""

    source: str  # the data source it was fitted on
    raw_row: str  # what one raw row is, in words
    features: list  # Categorical | Hashed | CategoricalList | Dense, in spec input order
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
                [
                    self._encode(row_block(frame, a, a + CHUNK_ROWS), a)
                    for a in range(0, n, CHUNK_ROWS)
                ]
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
            raise rows_error(encoded.problems, what)
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
        features = [feature_from_dict(f) for f in data["inputs"]]
        return cls(data["source"], data["raw_row"], features, data["label"])

    def dumps(self, extra: dict[str, Any] | None = None) -> str:
        """preprocess.json's text: `extra` (versions, hash) first, then this preprocessor."""
        return dumps_json({"format": FORMAT, **(extra or {}), **self.to_dict()}) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def identity(spec) -> Preprocessor:
    """Inputs taken as they are: a dense input is a vector field of its name, a categorical one
    an id field, a categorical list a list of ids. For data prepared outside rocketc (npz
    archives, hand-made datasets)."""
    features: list = []
    for item in spec.inputs:
        if item.kind == "dense":
            features.append(Dense(item.name, tuple(item.shape), field=item.name))
        elif item.kind == "categorical_list":  # padded id lists, 0 = padding
            features.append(
                CategoricalList(item.name, item.vocab, item.max_len, item.name, mode="ids")
            )
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
