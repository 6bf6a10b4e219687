"""Does a bundle's preprocessing fit its model? Checked on load, before anything is scored.

preprocess.json and light.onnx are each covered by the bundle's manifest (bundle.py), so neither
can change unnoticed; but a bundle can still be written wrong (a bug, a hand-edited pair with its
digests redone), and then every request would fail or score garbage. So on load each input's
preprocessing is held against the model itself:

- the ONNX input's shape: a dense input's width (its `shape`), a list input's `max_len`, a
  categorical input's single id per row; the dense columns, tokens, mean and std widths;
- the ids the preprocessing can give (vocabulary size + 1, hash buckets + 1, or the spec's vocab
  for ids taken as they are) against the spec's vocab recorded in the feature and against the
  rows of every embedding table the ONNX graph gathers from with that input directly
  (`Gather(table, input)`, as the exporter writes an embedding; an input that reaches its table
  through other ops, e.g. offsets into a stacked table, is checked against its vocab only).

Each mismatch is one line naming the file and what does not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rocketc.errors import BundleError


def check_consistency(bundle_path: Path, model_path: Path, model: Any, preprocess) -> None:
    """BundleError at the first input whose preprocessing does not fit `model` (onnx proto)."""
    shapes = {
        i.name: [d.dim_value if d.HasField("dim_value") else None for d in _dims(i)]
        for i in model.graph.input
    }
    tables = _gather_rows(model)
    for feature in preprocess.features:
        shape = shapes.get(feature.input)
        if shape is None:
            continue  # names and dtypes are checked by bundle._check_inputs
        problem = _shape_problem(feature, shape[1:]) or _ids_problem(
            feature, tables.get(feature.input)
        )
        if problem:
            where = model_path if problem[0] == "model" else bundle_path
            raise BundleError(f"{where}: input '{feature.input}': {problem[1]}")


def _dims(value_info) -> list:
    return list(value_info.type.tensor_type.shape.dim)


def _gather_rows(model) -> dict[str, int]:
    """Input name -> the fewest rows of an embedding table gathered with it directly."""
    sizes = {t.name: list(t.dims) for t in model.graph.initializer}
    inputs = {i.name for i in model.graph.input}
    rows: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[1] not in inputs:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        table = sizes.get(node.input[0])
        if axis == 0 and table:
            rows[node.input[1]] = min(rows.get(node.input[1], table[0]), table[0])
    return rows


def _shape_problem(feature, dims: list) -> tuple[str, str] | None:
    kind = feature.kind
    if kind == "dense":
        size = int(np.prod(feature.shape))
        if all(d is not None for d in dims) and tuple(dims) != tuple(feature.shape):
            return ("model", f"the model takes shape {dims}; preprocess.json gives "
                    f"{list(feature.shape)}")  # fmt: skip
        widths = {"columns": feature.columns, "tokens": feature.tokens}
        for name, values in widths.items():
            if values is not None and len(values) != size:
                return ("bundle", f"{len(values)} {name} for {size} values per row")
        for name in ("mean", "std"):
            stat = getattr(feature, name)
            if stat is not None and stat.size not in (1, size):
                return ("bundle", f"{name} holds {stat.size} values; the input has {size}")
            if stat is not None and not np.isfinite(stat).all():
                return ("bundle", f"{name} holds a value that is not a finite number")
        if feature.std is not None and (feature.std <= 0).any():
            return ("bundle", "std holds a value <= 0")
        return None
    want = [feature.max_len] if kind == "categorical_list" else []
    if any(d is not None for d in dims) and dims != want:
        return ("model", f"the model takes shape {dims} per row; preprocess.json gives {want}")
    return None


def _ids_problem(feature, table_rows: int | None) -> tuple[str, str] | None:
    """The largest id the feature can give vs. its vocab and the model's embedding table."""
    if feature.kind == "dense":
        return None
    vocab, top, what = _id_range(feature)
    if vocab is not None and top >= vocab:
        return ("bundle", f"{what} give ids up to {top}, beyond its vocab of {vocab}")
    if table_rows is not None and top >= table_rows:
        return (
            "model",
            f"preprocess.json's {what} give ids up to {top}, but the model's embedding table "
            f"for it has {table_rows} rows",
        )
    return None


def _id_range(feature) -> tuple[int | None, int, str]:
    """(the vocab the feature declares or None, its largest id, what the ids come from)."""
    vocab = getattr(feature, "vocab", None)
    buckets = getattr(feature, "buckets", None)
    vocabulary = getattr(feature, "vocabulary", None)
    mode = getattr(feature, "mode", "hashed" if feature.kind == "hashed" else None)
    if mode == "hashed" or feature.kind == "hashed":
        return vocab, int(buckets), f"{buckets} hash buckets"
    if vocabulary is not None:
        return vocab, len(vocabulary), f"{len(vocabulary)} vocabulary values"
    return None, int(vocab) - 1, "ids taken as given"
