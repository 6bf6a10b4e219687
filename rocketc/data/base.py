"""What every loader returns (`Split`, `Dataset`) and the checks run on it before training.

Loaders build plain numpy arrays; `check` then compares them with the spec so a wrong shape, an
id past `vocab` or a stray label becomes one `DataError` listing every problem, not a CUDA
assert or a shape error three layers deep in the first training step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from rocketc.compiler.spec import DenseInput, Spec
from rocketc.data.preprocess import Preprocessor
from rocketc.errors import DataError, Diagnostic

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """One split as numpy arrays; the trainer wraps them in torch TensorDatasets."""

    inputs: dict[str, np.ndarray]  # spec order; dense float32 (N, *shape), categorical int64 (N,)
    target: np.ndarray  # multiclass: int64 (N,); binary: float32 (N,) in {0., 1.}
    group: np.ndarray | None  # int64 (N,) group id for GAUC (e.g. user), or None
    # The same rows before preprocessing, as `predict` and `serve` take them (field -> column);
    # `inputs` is `preprocess.encode(raw)`. None for hand-made splits.
    raw: dict[str, np.ndarray] | None = None
    # Per-row sample weights (float64 (N,), finite, >= 0): data.weight. None: every row counts 1.
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)

    def slice(self, start: int, stop: int) -> Split:
        """Rows [start, stop) of every per-row array (dicts of columns too)."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                changes[f.name] = value[start:stop]
            elif isinstance(value, dict):
                changes[f.name] = {k: v[start:stop] for k, v in value.items()}
        return replace(self, **changes)

    def head(self, n: int) -> Split:
        """The first `n` rows (a streamed split reads them from its file)."""
        return self.slice(0, n)


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    description: str  # one line, e.g. "digits: 1,257 train / 270 val / 270 test, 10 classes"
    # Raw rows -> inputs, fitted on the train split; saved as the run's preprocess.json.
    preprocess: Preprocessor | None = None


def make_target(spec: Spec, labels: np.ndarray) -> np.ndarray:
    """Cast labels to what the loss expects; range problems are left for `check` to report."""
    if spec.task == "binary":
        return np.asarray(labels, dtype=np.float32)
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        raise DataError(
            f"multiclass labels must be whole numbers; got values like "
            f"{labels[labels != np.round(labels)][0]}"
        )
    return np.asarray(labels, dtype=np.int64)


def describe(source: str, spec: Spec, train: Split, val: Split, test: Split) -> str:
    sizes = f"{len(train):,} train / {len(val):,} val / {len(test):,} test"
    if spec.task == "multiclass":
        return f"{source}: {sizes}, {spec.num_classes} classes"
    rate = float(train.target.mean()) if len(train) else 0.0
    return f"{source}: {sizes}, {rate:.1%} positive in train"


def with_notes(description: str, features: list) -> str:
    """The description, then one indented line per feature that reports on its fitting (how
    hashed ids fill their buckets, how long lists are)."""
    notes = [note for f in features if (note := getattr(f, "summary", lambda: None)())]
    return "\n".join([description, *(f"  {note}" for note in notes)])


def check(spec: Spec, dataset: Dataset) -> None:
    """Raise one DataError listing every way the data does not fit the spec."""
    problems: list[str] = []
    for split_name in SPLITS:
        split: Split = getattr(dataset, split_name)
        if isinstance(split, Split):  # a streamed split is checked as each batch is encoded
            problems += _check_split(spec, split_name, split)
    if problems:
        raise DataError([Diagnostic(p) for p in dict.fromkeys(problems)])


def _check_split(spec: Spec, split_name: str, split: Split) -> list[str]:
    n = len(split)
    if n == 0:
        return [f"the {split_name} split is empty; use more data or change the split fractions"]
    problems = []
    missing = [i.name for i in spec.inputs if i.name not in split.inputs]
    if missing:
        problems.append(
            f"spec inputs {missing} are not provided by the data "
            f"(it provides {sorted(split.inputs)})"
        )
    for item in spec.inputs:
        if item.name in split.inputs:
            problems += _check_input(item, split_name, split.inputs[item.name], n)
    if split.target.shape == (n,):
        problems += _check_target(spec, split_name, split.target)
    else:  # e.g. one-hot or (N, 1) labels: the loss would fail on the first step
        problems.append(
            f"labels have shape {_shape(split.target.shape)}; expected (N,), one label per row "
            "(a class index, or 0/1 for binary)"
        )
    if split.group is not None and split.group.shape != (n,):
        problems.append(f"{split_name}: group has shape {split.group.shape}, expected ({n},)")
    if split.weight is not None:
        problems += _check_weight(split_name, split.weight, n)
    return problems


def _check_weight(split_name: str, weight: np.ndarray, n: int) -> list[str]:
    if weight.shape != (n,):
        return [f"{split_name}: weight has shape {weight.shape}, expected ({n},)"]
    bad = np.flatnonzero(~np.isfinite(weight) | (weight < 0))
    if bad.size:
        return [
            f"{split_name}: sample weights are finite and >= 0; row {bad[0] + 1} of the split has "
            f"{weight[bad[0]]:g} ({bad.size:,} rows)"
        ]
    if not weight.sum() > 0:
        return [f"{split_name}: every sample weight is 0; nothing would count"]
    return []


def _check_input(item: Any, split_name: str, array: np.ndarray, n: int) -> list[str]:
    # Shape and dtype are the same in every split, so their messages leave the split out
    # (and `check` prints them once); value problems say which split they were found in.
    where = f"input '{item.name}'"
    if isinstance(item, DenseInput):
        expected = (n, *item.shape)
        if array.shape != expected:
            return [
                f"{where}: dense shape mismatch: expected {_shape(expected)}, "
                f"got {_shape(array.shape)}"
            ]
        if array.dtype != np.float32:
            return [f"{where}: expected float32, got {array.dtype}"]
        if not np.all(np.isfinite(array)):
            return [f"{where} ({split_name}): has NaN or infinite values"]
        return []
    expected = (n, *item.tensor_type().shape)  # categorical: (N,); categorical_list: (N, L)
    if array.shape != expected:
        what = "one id per row" if len(expected) == 1 else f"{expected[1]} ids per row (padded)"
        return [
            f"{where}: a {item.kind} input has {what}, expected shape {_shape(expected)}, "
            f"got {_shape(array.shape)}"
        ]
    if array.dtype != np.int64:
        return [f"{where}: expected int64 ids, got {array.dtype}"]
    top, low = int(array.max()), int(array.min())
    if top >= item.vocab:
        return [
            f"{where} ({split_name}): category id {top} >= vocab {item.vocab}; "
            f"set vocab to at least {top + 1}"
        ]
    if low < 0:
        return [f"{where} ({split_name}): category id {low} is negative; ids are in [0, vocab)"]
    return []


def bad_labels(spec: Spec, target: np.ndarray) -> np.ndarray:
    """Rows whose label the loss cannot take: not 0/1 (binary), outside [0, num_classes)."""
    if spec.task == "binary":
        return np.flatnonzero((target != 0) & (target != 1))
    return np.flatnonzero((target < 0) | (target >= (spec.num_classes or 0)))


def _check_target(spec: Spec, split_name: str, target: np.ndarray) -> list[str]:
    bad = target[bad_labels(spec, target)]
    if not bad.size:
        return []
    if spec.task == "binary":
        return [f"{split_name}: binary labels must be 0 or 1; got {bad[0]:g} ({bad.size:,} rows)"]
    return [
        f"{split_name}: multiclass label {int(bad[0])} is out of [0, {spec.num_classes or 0}) "
        f"({bad.size:,} rows); check num_classes"
    ]


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"
