"""MovieLens-100k as a CTR task, read from the RecBole-format copy inside the recbole package.

recbole 1.2.1 ships ml-100k.inter/.user/.item in `recbole/dataset_example/ml-100k/`; we find the
package with importlib and read the files by path, never importing recbole (its heavy
dependencies need not be installed). Label: rating >= 4. Split by time (oldest rows train, newest
test), as a served CTR model only ever predicts the future. GAUC groups by user.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from rocketc.compiler.spec import CategoricalInput, DenseInput, MovielensData, Spec
from rocketc.errors import DataError, Diagnostic
from rocketc.runtime.data.base import Dataset, Split, describe, make_target
from rocketc.runtime.data.encode import encode_categorical, group_ordered_split, ordered_split

# The 19 ml-100k genres in u.genre order; RecBole's `class` column holds them as space-separated
# tokens, which works because no genre name contains a space ("Children's", "Film-Noir").
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# Lower edges of the MovieLens-1M age bands: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
CATEGORICAL = ("user", "item", "age", "gender", "occupation", "zipcode", "decade")
_INSTALL = "pip install --no-deps recbole==1.2.1"


def load(spec: Spec, data: MovielensData) -> Dataset:
    _check_inputs(spec)
    rows = read_rows(Path(data.path) if data.path else recbole_directory())
    if data.split == "user_time":
        users = _tokens(rows["user_id"].to_numpy())
        parts = group_ordered_split(users, data.val_fraction, data.test_fraction)
    else:
        parts = ordered_split(len(rows), data.val_fraction, data.test_fraction)

    values, missing = _categorical_values(rows)
    encoded: dict[str, list[np.ndarray]] = {}
    problems: list[Diagnostic] = []
    by_name = {i.name: i for i in spec.inputs}
    for name in CATEGORICAL:
        item = by_name[name]
        assert isinstance(item, CategoricalInput)
        try:
            encoded[name] = encode_categorical(
                item, [values[name][p] for p in parts], [missing[name][p] for p in parts]
            )
        except DataError as exc:
            problems += exc.diagnostics
    if problems:
        raise DataError(problems)

    genre = _genre_flags(rows["class"].fillna("").to_numpy())
    labels = (_numbers(rows["rating"], "ml-100k.inter rating") >= 4).astype(np.float32)
    group = _tokens(rows["user_id"].to_numpy())
    group = np.unique(group, return_inverse=True)[1].astype(np.int64)
    splits = []
    for k, p in enumerate(parts):
        inputs = {
            i.name: (genre[p] if i.name == "genre" else encoded[i.name][k]) for i in spec.inputs
        }
        splits.append(Split(inputs, make_target(spec, labels[p]), group[p]))
    return Dataset(*splits, describe("movielens-100k", spec, *splits))


def _check_inputs(spec: Spec) -> None:
    """The spec must declare exactly the fields this source gives, with the right kinds."""
    provided = {**{n: "categorical" for n in CATEGORICAL}, "genre": "dense [19]"}
    declared = {i.name: i for i in spec.inputs}
    offer = ", ".join(f"{n} ({k})" for n, k in provided.items())
    problems = []
    unknown = sorted(set(declared) - set(provided))
    unused = [n for n in provided if n not in declared]
    if unknown:
        problems.append(
            f"movielens-100k does not provide spec inputs {unknown}; it provides: {offer}"
        )
    if unused:
        problems.append(
            f"spec does not declare movielens-100k inputs {unused}; declare exactly: {offer}"
        )
    for name, item in declared.items():
        if name == "genre" and not (isinstance(item, DenseInput) and item.shape == [len(GENRES)]):
            problems.append(
                f"input 'genre' is {len(GENRES)} genre flags: declare it "
                f"kind: dense, shape: [{len(GENRES)}]"
            )
        elif name in CATEGORICAL and not isinstance(item, CategoricalInput):
            problems.append(f"input '{name}' is a category id: declare it kind: categorical")
    if problems:
        raise DataError([Diagnostic(p) for p in problems])


def read_rows(directory: Path):
    """Every rating joined with its user and movie, oldest first (ties keep file order)."""
    inter = _read(directory, "inter", ["user_id", "item_id", "rating", "timestamp"])
    users = _read(directory, "user", ["user_id", "age", "gender", "occupation", "zip_code"])
    items = _read(directory, "item", ["item_id", "release_year", "class"])
    rows = inter.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    rows["timestamp"] = _numbers(rows["timestamp"], "ml-100k.inter timestamp")
    return rows.sort_values("timestamp", kind="stable", ignore_index=True)


def recbole_directory() -> Path:
    """Where recbole keeps its bundled ml-100k, found without importing recbole."""
    found = importlib.util.find_spec("recbole")
    if found is None or not found.submodule_search_locations:
        raise DataError(
            f"movielens-100k reads the files shipped with recbole: {_INSTALL} "
            "(or set data.path to a directory of ml-100k.inter/.user/.item)"
        )
    return Path(next(iter(found.submodule_search_locations))) / "dataset_example" / "ml-100k"


def _read(directory: Path, kind: str, columns: list[str]):
    """One RecBole atomic file; headers such as `user_id:token` lose their `:type` suffix."""
    import pandas as pd  # only when MovieLens is asked for

    path = directory / f"ml-100k.{kind}"
    if not path.is_file():
        raise DataError(
            f"{directory}: ml-100k.{kind} is missing; {_INSTALL} "
            "(or set data.path to a directory of RecBole-format ml-100k files)"
        )
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        encoding="utf-8",
        encoding_errors="replace",
    )
    frame.columns = [c.split(":")[0] for c in frame.columns]
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(f"{path}: no column(s) {absent}; it has {list(frame.columns)}")
    return frame[columns]


def _numbers(series, what: str) -> np.ndarray:
    import pandas as pd

    out = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(out).any():
        raise DataError(f"{what}: {int(np.isnan(out).sum()):,} rows are not numbers")
    return out


def _tokens(values: np.ndarray) -> np.ndarray:
    """Ids as int64 when all are whole numbers (so they sort 1, 2, 10), else as strings."""
    try:
        return values.astype(np.int64)
    except (TypeError, ValueError):
        return values.astype(str)


def _categorical_values(rows) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw value and missing-mask per categorical field, before vocabularies."""
    import pandas as pd

    def text(col: str) -> np.ndarray:
        return rows[col].fillna("").astype(str).str.strip().to_numpy()

    age = pd.to_numeric(rows["age"], errors="coerce").to_numpy()
    year = pd.to_numeric(rows["release_year"], errors="coerce").to_numpy()  # "unkonwn" -> NaN
    zipcode = np.array([z[:1].upper() for z in text("zip_code")], dtype=object)
    values = {
        "user": _tokens(rows["user_id"].to_numpy()),
        "item": _tokens(rows["item_id"].to_numpy()),
        "age": np.searchsorted(AGE_EDGES, np.nan_to_num(age), side="right").astype(np.int64),
        "gender": text("gender"),
        "occupation": text("occupation"),
        "zipcode": zipcode.astype(str),
        "decade": (np.nan_to_num(year) // 10 * 10).astype(np.int64),
    }
    missing = {name: np.zeros(len(rows), dtype=bool) for name in values}
    missing["age"], missing["decade"] = np.isnan(age), np.isnan(year)
    for name in ("gender", "occupation", "zipcode"):
        missing[name] = values[name] == ""
    return values, missing


def _genre_flags(classes: np.ndarray) -> np.ndarray:
    """Multi-hot genres (N, 19), computed once per distinct `class` string."""
    index = {g: k for k, g in enumerate(GENRES)}
    distinct, inverse = np.unique(classes.astype(str), return_inverse=True)
    table = np.zeros((len(distinct), len(GENRES)), dtype=np.float32)
    for row, text in enumerate(distinct):
        for token in text.split():
            if token not in index:
                raise DataError(
                    f"ml-100k.item: unknown genre {token!r}; expected one of {list(GENRES)}"
                )
            table[row, index[token]] = 1.0
    return table[inverse.reshape(-1)]
