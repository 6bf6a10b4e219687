"""MovieLens-100k as a CTR task, read from the RecBole-format copy inside the recbole package.

recbole 1.2.1 ships ml-100k.inter/.user/.item in `recbole/dataset_example/ml-100k/`; we find the
package with importlib and read the files by path, never importing recbole (its heavy
dependencies need not be installed). Label: rating >= 4. Split by time (oldest rows train, newest
test), as a served CTR model only ever predicts the future. GAUC groups by user.

A raw row is one (user, movie) pair as the files describe it (see RAW_ROW): user_id, item_id,
age, gender, occupation, zip_code (text), release_year (a number, null when unknown) and class
(the movie's genres, space-separated). Preprocessing derives the age band, the zip code's first
character and the release decade, then looks each field up in its train-split vocabulary.

With `data.history: N` a row also holds `history`, the user's behaviour sequence: the last N
movies the user rated 4 or 5 strictly before the row's timestamp, newest first (ratings at the
same second are not "before": no row sees its own label or a simultaneous one). Its ids are the
`item` input's (`vocab_from: item`), so the item and the history share one table; a served
request sends the list of the user's recent movies itself.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from rocketc.compiler.spec import (
    CategoricalInput,
    CategoricalListInput,
    DenseInput,
    MovielensData,
    Spec,
)
from rocketc.data.base import Dataset, Split, describe, make_target, with_notes
from rocketc.data.dense import Dense
from rocketc.data.encode import group_ordered_split, ordered_split
from rocketc.data.features import Bucket, Categorical, Floor, Prefix, Strip
from rocketc.data.hashing import Hashed
from rocketc.data.lists import CategoricalList, share_vocabularies
from rocketc.data.preprocess import Preprocessor, label_info, take
from rocketc.errors import DataError, Diagnostic

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
# spec input -> (raw field, its type, derive step); ids' types are fixed when the files are read.
_FEATURES = {
    "user": ("user_id", None, None),
    "item": ("item_id", None, None),
    "age": ("age", "number", Bucket(AGE_EDGES)),
    "gender": ("gender", "str", Strip()),
    "occupation": ("occupation", "str", Strip()),
    "zipcode": ("zip_code", "str", Prefix(1)),
    "decade": ("release_year", "number", Floor(10)),
}
RAW_ROW = (
    "one (user, movie) pair: user_id, item_id, age (years), gender (M/F), occupation, zip_code "
    "(text), release_year (null when unknown), class (the movie's genres, space-separated)"
)
HISTORY_ROW = "history (the user's recent movies rated 4 or 5, newest first: a list of item_id)"
_INSTALL = "pip install --no-deps recbole==1.2.1"


def load(spec: Spec, data: MovielensData) -> Dataset:
    _check_inputs(spec, data.history)
    rows = read_rows(Path(data.path) if data.path else recbole_directory())
    labels = (_numbers(rows["rating"], "ml-100k.inter rating") >= 4).astype(np.float32)
    if data.split == "user_time":
        users = _tokens(rows["user_id"].to_numpy())
        parts = group_ordered_split(users, data.val_fraction, data.test_fraction)
    else:
        parts = ordered_split(len(rows), data.val_fraction, data.test_fraction)

    raw = raw_rows(rows)
    if data.history:
        times = rows["timestamp"].to_numpy()
        raw["history"] = histories(raw["user_id"], raw["item_id"], labels > 0, times, data.history)
    features: list = []
    problems: list[Diagnostic] = []
    for item in spec.inputs:
        if isinstance(item, DenseInput):  # genre, as _check_inputs made sure
            features.append(Dense(item.name, (len(GENRES),), field="class", tokens=list(GENRES)))
            continue
        if isinstance(item, CategoricalListInput):  # history: lengths; item's ids below
            mode = "hashed" if item.hash_buckets else "vocabulary"
            features.append(
                CategoricalList(
                    item.name,
                    item.vocab,
                    item.max_len,
                    "history",
                    mode=mode,
                    buckets=item.hash_buckets,
                    shared_from="item",
                ).fit(take(raw, parts[0]))
            )
            continue
        column, kind, derive = _FEATURES[item.name]
        kind = kind or ("int" if raw[column].dtype.kind == "i" else "str")
        if item.hash_buckets and derive is not None:
            problems.append(
                Diagnostic(
                    f"input '{item.name}': movielens-100k derives it from {column} "
                    f"({derive.name}) into a few values; hash_buckets is for raw ids (user, item)"
                )
            )
            continue
        feature = (
            Hashed(item.name, item.hash_buckets, column, kind)
            if item.hash_buckets
            else Categorical(item.name, item.vocab, column, kind, derive)
        )
        try:
            features.append(feature.fit(take(raw, parts[0])))
        except DataError as exc:
            problems += exc.diagnostics
    if problems:
        raise DataError(problems)
    if data.history:
        share_vocabularies({f.input: f for f in features}, {"history": "item"})
    raw_row = f"{RAW_ROW}, {HISTORY_ROW}" if data.history else RAW_ROW
    preprocess = Preprocessor(
        "movielens-100k", raw_row, features, label_info(spec, "the user rates the movie 4 or 5")
    )

    group = np.unique(raw["user_id"], return_inverse=True)[1].astype(np.int64)
    splits = []
    for name, p in zip(("train", "val", "test"), parts, strict=True):
        rows_raw = take(raw, p)
        inputs = preprocess.encode_split(rows_raw, f"movielens-100k {name} split")
        splits.append(Split(inputs, make_target(spec, labels[p]), group[p], rows_raw))
    description = with_notes(describe("movielens-100k", spec, *splits), features)
    return Dataset(*splits, description, preprocess)


def _check_inputs(spec: Spec, history: int | None) -> None:
    """The spec must declare exactly the fields this source gives, with the right kinds."""
    provided = {**{n: "categorical" for n in CATEGORICAL}, "genre": "dense [19]"}
    if history:
        provided["history"] = f"categorical_list, vocab_from: item, max_len: {history}"
    declared = {i.name: i for i in spec.inputs}
    offer = ", ".join(f"{n} ({k})" for n, k in provided.items())
    problems = []
    unknown = sorted(set(declared) - set(provided))
    unused = [n for n in provided if n not in declared]
    if unknown == ["history"]:
        problems.append(
            "input 'history' is the user's recent movies: set data.history: N (how many), "
            "and declare the input kind: categorical_list, vocab_from: item, max_len: N"
        )
    elif unknown:
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
        elif (
            name == "history"
            and history
            and not (
                isinstance(item, CategoricalListInput)
                and item.vocab_from == "item"
                and item.max_len == history
            )
        ):
            problems.append(
                f"input 'history' is the user's last {history} liked movies, as ids of input "
                f"'item': declare it kind: categorical_list, vocab_from: item, max_len: {history}"
            )
    if problems:
        raise DataError([Diagnostic(p) for p in problems])


def histories(
    users: np.ndarray, items: np.ndarray, liked: np.ndarray, times: np.ndarray, n: int
) -> np.ndarray:
    """Each row's behaviour sequence: the last `n` items its user liked strictly before the row's
    time, newest first (a list per row; an object array). Rows at one time see none of the likes
    at that time, their own included; likes at one time keep the rows' order."""
    out = np.empty(len(users), dtype=object)
    order = np.lexsort((times, users))  # stable: by user, then time, then row
    liked_before: dict = {}  # user -> the items liked so far, oldest first (at most n)
    start = 0
    while start < len(order):
        user, time = users[order[start]], times[order[start]]
        stop = start
        while stop < len(order) and users[order[stop]] == user and times[order[stop]] == time:
            stop += 1
        past = liked_before.setdefault(user, [])
        newest_first = past[::-1]
        for row in order[start:stop]:
            out[row] = list(newest_first)
        past.extend(items[row].item() for row in order[start:stop] if liked[row])
        del past[:-n]
        start = stop
    return out


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


def raw_rows(rows) -> dict[str, np.ndarray]:
    """The raw fields of every row, typed as a served request gives them."""
    import pandas as pd

    def text(col: str) -> np.ndarray:
        return rows[col].fillna("").astype(str).to_numpy(dtype=object)

    def number(col: str) -> np.ndarray:  # "unkonwn" (sic, in ml-100k) -> NaN, i.e. missing
        return pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64)

    return {
        "user_id": _tokens(rows["user_id"].to_numpy()),
        "item_id": _tokens(rows["item_id"].to_numpy()),
        "age": number("age"),
        "gender": text("gender"),
        "occupation": text("occupation"),
        "zip_code": text("zip_code"),
        "release_year": number("release_year"),
        "class": text("class"),
    }
