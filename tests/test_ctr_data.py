"""CTR inputs as they come: hashed ids, multi-valued fields and sample weights, from raw rows.

Hashing must give every value the same id in any process (Python's own `hash` would not); a
list field must give the same ids whether it arrives as a Parquet list column, CSV text or a
JSON list; the fitted preprocessing must survive preprocess.json; and every data mistake names
its column and row.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.data.hashing import Hashed, bucket_of, canonical_text, hash_values
from rocketc.data.lists import CategoricalList
from rocketc.data.preprocess import Preprocessor
from rocketc.errors import DataError

VALUES = ["u00001", "u00002", "zürich", "", "7", "a|b"]

_HASH_SCRIPT = """\
import json, sys
from rocketc.data.hashing import bucket_of
print(json.dumps([bucket_of(v, 1000) for v in json.loads(sys.argv[1])]))
"""


def _hash_in_a_new_process(values: list[str], seed: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT, json.dumps(values)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": seed, "PATH": ""},
    )
    return json.loads(out.stdout)


def test_hashed_ids_are_the_same_in_two_processes():
    first = _hash_in_a_new_process(VALUES, "1")
    second = _hash_in_a_new_process(VALUES, "2")  # Python's str hash differs between these
    assert first == second == [bucket_of(v, 1000) for v in VALUES]
    # Pinned: a change of hash function would silently re-map every trained id.
    assert first[:3] == [257, 109, 48]
    assert all(1 <= b <= 1000 for b in first)


def test_whole_numbers_hash_alike_from_csv_parquet_or_json():
    assert canonical_text(7) == canonical_text(7.0) == canonical_text(np.int64(7)) == "7"
    assert canonical_text(7.5) == "7.5"
    ids = hash_values(np.array([7, 7, 8], dtype=np.int64), 50)
    assert ids[0] == ids[1] == hash_values(np.array([7.0]), 50)[0] == bucket_of("7", 50)


def test_hashed_feature_fits_counts_and_round_trips():
    rng = np.random.default_rng(0)
    users = np.array([f"u{k}" for k in rng.integers(0, 3000, 5000)], dtype=object)
    users[:10] = None
    feature = Hashed("user", 1024, "user", "str").fit({"user": users})
    stats = feature.stats
    assert stats["values"] == len(set(users[10:]))
    assert stats["buckets_used"] + stats["colliding_values"] == stats["values"]
    # A uniform hash: collisions close to what chance gives.
    assert abs(stats["colliding_values"] - stats["colliding_values_by_chance"]) < 80
    ids, problems = feature.encode({"user": users})
    assert not problems and (ids[:10] == 0).all() and ids[10:].min() >= 1
    again = Preprocessor.from_dict(json.loads(Preprocessor("t", "r", [feature], {}).dumps()))
    assert np.array_equal(again.encode({"user": users}).inputs["user"], ids)
    bad = feature.encode({"user": np.array(["u1", 3.5], dtype=object)})[1]
    assert [(p.row, p.field) for p in bad] == [(1, "user")]


def test_a_list_field_gives_the_same_ids_from_text_lists_and_json():
    fit = {"tags": np.array(["b|a", "c", None, "a | b|d"], dtype=object)}
    feature = CategoricalList("tags", 10, 3, "tags").fit(fit)
    assert feature.vocabulary.tolist() == ["a", "b", "c", "d"]
    text = np.array(["a|b", "", None, "zz|c|a|b|d", "d"], dtype=object)
    lists = np.empty(5, dtype=object)
    lists[:] = [["a", "b"], [], None, np.array(["zz", "c", "a", "b", "d"]), "d"]
    want = [[1, 2, 0], [0, 0, 0], [0, 0, 0], [3, 1, 2], [4, 0, 0]]  # unseen zz left out; cut
    for column in (text, lists):
        ids, problems = feature.encode({"tags": column})
        assert not problems
        assert ids.tolist() == want
    assert feature.stats == {
        "rows": 4,
        "mean_length": 1.5,
        "max_length": 3,
        "empty_rows": 1,
        "rows_cut_at_max_len": 0,
    }
    again = Preprocessor.from_dict(json.loads(Preprocessor("t", "r", [feature], {}).dumps()))
    assert np.array_equal(again.encode({"tags": text}).inputs["tags"], np.array(want))


def test_hashed_lists_and_id_lists():
    hashed = CategoricalList("clicks", 101, 2, "clicks", mode="hashed", buckets=100)
    hashed.fit({"clicks": np.array([[5, 9], [9]], dtype=object)})
    ids, _ = hashed.encode({"clicks": np.array(["5|9", None], dtype=object)})
    assert ids.tolist() == [[bucket_of("5", 100), bucket_of("9", 100)], [0, 0]]
    assert hashed.stats["hashing"]["values"] == 2
    given = CategoricalList("clicks", 10, 3, "clicks", mode="ids")
    ids, problems = given.encode({"clicks": np.array([[3, 0, 4], [12, 1, 0]])})
    assert ids.tolist() == [[3, 0, 4], [0, 1, 0]]
    assert [(p.row, p.message) for p in problems] == [(1, "id 12 is outside [0, 10)")]
    rows = np.empty(2, dtype=object)
    rows[:] = [[3, 4], ["x"]]
    _, problems = given.encode({"clicks": rows})
    assert [(p.row, p.field) for p in problems] == [(1, "clicks")]


def test_list_values_of_the_wrong_type_name_the_row():
    feature = CategoricalList("tags", 10, 3, "tags").fit({"tags": np.array(["a"], dtype=object)})
    column = np.empty(4, dtype=object)
    column[:] = ["a", {"x": 1}, [["nested"]], True]
    _, problems = feature.encode({"tags": column})
    assert [p.row for p in problems] == [1, 2, 3]
    assert all(p.field == "tags" and "expected a list" in p.message for p in problems)


# --- through the loaders ------------------------------------------------------------------------
SPEC = """\
version: 1
name: ctr_inputs
task: binary
inputs:
  - {name: user, kind: categorical, hash_buckets: 256}
  - {name: city, kind: categorical, vocab: 5}
  - {name: genres, kind: categorical_list, vocab: 6, max_len: 3}
  - {name: tags, kind: categorical_list, hash_buckets: 64, max_len: 2}
  - {name: numeric, kind: dense, shape: [1]}
layers:
  - {id: fields, op: field_embeddings, in: [user, city, genres, tags], dim: 4, role: shared}
  - {id: features, op: concat, in: [fields, numeric], role: shared}
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [16], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
data:
  source: @SOURCE@
  path: @PATH@
  label: clicked
  group: user
  weight: w
  categorical: [user, city, genres, tags]
  dense: {numeric: [price]}
  list_delimiter: ";"
"""

GENRES = ["drama", "comedy", "horror", "scifi", "noir"]


def table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    genres = [list(rng.choice(GENRES, rng.integers(0, 4), replace=False)) for _ in range(n)]
    tags = [list(map(int, rng.integers(100, 140, rng.integers(0, 3)))) for _ in range(n)]
    return pd.DataFrame(
        {
            "user": [f"user{k}" for k in rng.integers(0, 120, n)],
            "city": rng.choice(["paris", "lyon", "nice", None], n),
            "genres": genres,
            "tags": tags,
            "price": rng.normal(10, 2, n),
            "w": rng.choice([0.5, 1.0, 2.0], n),
            "clicked": rng.integers(0, 2, n),
        }
    )


def _as_csv(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in ("genres", "tags"):
        out[column] = [";".join(map(str, v)) for v in frame[column]]
    return out


@pytest.fixture(params=["csv", "parquet"])
def dataset(request, tmp_path):
    frame = table()
    path = tmp_path / f"t.{request.param}"
    if request.param == "csv":
        _as_csv(frame).to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    text = SPEC.replace("@SOURCE@", request.param).replace("@PATH@", str(path))
    spec = compile_text(text).spec
    return spec, load_data(spec), frame


def test_tables_give_the_same_arrays_from_csv_and_parquet(tmp_path):
    arrays = {}
    for source in ("csv", "parquet"):
        path = tmp_path / f"t.{source}"
        frame = table()
        _as_csv(frame).to_csv(path, index=False) if source == "csv" else frame.to_parquet(path)
        spec = compile_text(SPEC.replace("@SOURCE@", source).replace("@PATH@", str(path))).spec
        arrays[source] = load_data(spec).train.inputs
    for name, array in arrays["csv"].items():
        assert np.array_equal(array, arrays["parquet"][name]), name


def test_loaded_splits_hold_lists_hashes_and_weights(dataset):
    spec, data, frame = dataset
    train = data.train
    assert train.inputs["genres"].shape == (len(train), 3)
    assert train.inputs["tags"].shape == (len(train), 2)
    assert train.inputs["user"].max() <= 256 and train.inputs["user"].min() >= 1
    assert train.weight is not None and set(np.unique(train.weight)) <= {0.5, 1.0, 2.0}
    assert len(train.weight) == len(train)
    assert "'user' hashes" in data.description and "'genres' lists" in data.description
    # What training saw is preprocess.json applied to the raw rows (predict and serve's path).
    again = Preprocessor.from_dict(json.loads(data.preprocess.dumps()))
    for split in (data.train, data.val, data.test):
        encoded = again.encode(split.raw)
        assert not encoded.problems
        for name, array in split.inputs.items():
            assert np.array_equal(encoded.inputs[name], array), name


def test_bad_weights_name_the_column_and_rows(tmp_path):
    frame = table(200)
    frame.loc[[4, 9], "w"] = [-1.0, np.inf]
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    spec = compile_text(SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))).spec
    with pytest.raises(DataError) as info:
        load_data(spec)
    message = str(info.value)
    assert "column 'w'" in message and "row 5 (-1)" in message and "row 10 (inf)" in message


def test_a_categorical_column_fed_to_a_dense_input_says_which_kinds_fit(tmp_path):
    path = tmp_path / "t.parquet"
    table(100).assign(numeric=1.0).to_parquet(path)
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    text = text.replace("genres, tags]\n", "genres, tags, numeric]\n")
    with pytest.raises(DataError, match="declare it kind: categorical or categorical_list"):
        load_data(compile_text(text).spec)


def test_npz_takes_padded_id_lists_and_weights(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    path = tmp_path / "t.npz"
    genres = rng.integers(0, 6, (n, 3))
    np.savez(
        path,
        user=rng.integers(0, 257, n),
        city=rng.integers(0, 5, n),
        genres=genres,
        tags=rng.integers(0, 65, (n, 2)),
        numeric=rng.normal(size=(n, 1)),
        label=rng.integers(0, 2, n),
        w=rng.random(n),
    )
    text = SPEC.replace("@SOURCE@", "npz").replace("@PATH@", str(path))
    text = text[: text.index("  label: clicked")] + "  weight: w\n"
    data = load_data(compile_text(text).spec)
    splits = (data.train, data.val, data.test)
    assert sum(len(s) for s in splits) == n
    seen = np.concatenate([s.inputs["genres"] for s in splits])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, genres))  # ids as given, 0 = padding
    assert np.isclose(sum(s.weight.sum() for s in splits), np.load(path)["w"].sum())
    np.savez(path, **{**dict(np.load(path)), "genres": rng.integers(0, 6, (n, 4))})
    with pytest.raises(DataError, match=r"genres'.*expected \(N, 3\), got \(N, 4\)"):
        load_data(compile_text(text).spec)
