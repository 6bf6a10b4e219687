"""A .npz archive holding one array per spec input, by name, plus the labels (groups, weights).

The arrays are taken as already prepared: dense arrays must have exactly the spec's per-example
shape (no reshaping, which would hide an HWC/CHW mix-up) and categorical arrays are ids already,
so no vocabulary is built (nor hash computed: `hash_buckets` only sizes the table) and an id
outside [0, vocab) is an error. A categorical_list input is an (N, max_len) array of ids padded
with 0. A raw row is therefore one field per spec input, by its name: the example's values (a
JSON list, flattened row-major) for a dense input, its id for a categorical one, its list of ids
for a categorical_list; preprocessing only casts. `weight` names an array of sample weights.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rocketc.compiler.spec import DenseInput, NpzData, Spec
from rocketc.data.base import Dataset, Split, describe, make_target
from rocketc.data.encode import check_weights, data_seed, random_split
from rocketc.data.preprocess import identity, label_info, take
from rocketc.errors import DataError, Diagnostic


def load(spec: Spec, data: NpzData) -> Dataset:
    arrays = _read(Path(data.path))
    keys = [i.name for i in spec.inputs] + [data.label]
    keys += [k for k in (data.group, data.weight) if k]
    absent = [k for k in keys if k not in arrays]
    if absent:
        raise DataError(
            f"{data.path}: no array(s) {absent} for the spec's inputs/label; "
            f"the archive holds {sorted(arrays)}"
        )
    lengths = {k: len(arrays[k]) if arrays[k].ndim else 0 for k in keys}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{data.path}: arrays have different numbers of rows: {lengths}")

    raw, problems = {}, []
    for item in spec.inputs:
        array = arrays[item.name]
        if isinstance(item, DenseInput):
            array = _cast(array, np.float32, item.name, "numeric", data.path)
            if array.shape[1:] != tuple(item.shape):
                problems.append(_shape_mismatch(item.name, item.shape, array.shape[1:]))
                continue
            raw[item.name] = array.reshape(len(array), -1)
        else:
            array = _cast(array, np.int64, item.name, "integer", data.path)
            per_row = item.tensor_type().shape  # (): one id; (L,): a padded list of ids
            if array.shape[1:] != per_row:
                problems.append(_shape_mismatch(item.name, per_row, array.shape[1:], "ids"))
                continue
            raw[item.name] = array
            top = int(array.max()) if len(array) else 0
            if top >= item.vocab:
                problems.append(
                    f"input '{item.name}': category id {top} >= vocab {item.vocab} (npz ids are "
                    f"used as given); set vocab to at least {top + 1}"
                )
    if problems:
        raise DataError([Diagnostic(p) for p in problems])
    preprocess = identity(spec)
    preprocess.source = "npz"
    preprocess.label = label_info(spec, f"the label array '{data.label}'")
    labels = _cast(arrays[data.label], np.float64, data.label, "numeric", data.path)
    group = None
    if data.group:
        group = np.unique(arrays[data.group], return_inverse=True)[1].reshape(-1).astype(np.int64)
    weight = None
    if data.weight:
        weight = check_weights(arrays[data.weight], f"{data.path}: array '{data.weight}'")
    parts = random_split(len(labels), data.val_fraction, data.test_fraction, data_seed(spec))
    splits = []
    for name, p in zip(("train", "val", "test"), parts, strict=True):
        rows = take(raw, p)
        splits.append(
            Split(
                preprocess.encode_split(rows, f"{Path(data.path).name} {name} split"),
                make_target(spec, labels[p]),
                None if group is None else group[p],
                rows,
                None if weight is None else weight[p],
            )
        )
    return Dataset(*splits, describe(Path(data.path).name, spec, *splits), preprocess)


def _shape_mismatch(name: str, want, got, what: str = "dense") -> str:
    return (
        f"input '{name}': {what} shape mismatch: expected ({', '.join(['N', *map(str, want)])}), "
        f"got ({', '.join(['N', *map(str, got)])})"
    )


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(
            f"{path}: no such .npz file (relative paths start from the current "
            f"directory: {Path(path).resolve()})"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load also reads one .npy array
            raise DataError(
                f"{path}: one .npy array, not a .npz archive; save every spec input and the "
                "labels in one file: np.savez('data.npz', <input name>=..., label=...)"
            )
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except EOFError:
        raise DataError(f"{path}: the file is empty; point data.path at a .npz archive") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: cannot read as .npz (object arrays are not allowed): {exc}"
        ) from None


def _cast(array: np.ndarray, dtype, name: str, kind: str, path: str) -> np.ndarray:
    """Cast to `dtype` only when it keeps the values: ints for ids, any number for dense."""
    ok = array.dtype.kind in ("iub" if kind == "integer" else "iubf")
    if not ok:
        raise DataError(f"{path}: array '{name}' must be {kind}, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)
