"""The data layer: every source end to end on small or bundled data, and every DataError."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rocketc.compiler import compile_file
from rocketc.compiler.spec import Spec
from rocketc.data import Dataset, load_data
from rocketc.data.idx import read_idx
from rocketc.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
HAS_RECBOLE = importlib.util.find_spec("recbole") is not None


def make_spec(
    inputs: list[dict], data: dict, task: str = "multiclass", classes: int = 10, seed: int = 0
) -> Spec:
    """A schema-valid spec around `inputs` and `data`; the layers are never built here."""
    layers = [
        {
            "id": "light",
            "op": "linear",
            "in": inputs[0]["name"],
            "out_features": 1,
            "role": "light",
        },
        {
            "id": "booster",
            "op": "linear",
            "in": inputs[0]["name"],
            "out_features": 1,
            "role": "booster",
        },
    ]
    spec = {
        "version": 1,
        "name": "t",
        "task": task,
        "inputs": inputs,
        "layers": layers,
        "heads": {"light": "light", "booster": "booster"},
        "train": {"seed": seed},
        "data": data,
    }
    if task == "multiclass":
        spec["num_classes"] = classes
    return Spec.model_validate(spec)


def dense(name: str, *shape: int) -> dict:
    return {"name": name, "kind": "dense", "shape": list(shape)}


def cat(name: str, vocab: int) -> dict:
    return {"name": name, "kind": "categorical", "vocab": vocab}


def error_text(spec: Spec) -> str:
    with pytest.raises(DataError) as info:
        load_data(spec)
    return str(info.value)


def test_importing_rocketc_data_does_not_import_torch():
    code = "import sys, rocketc.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spec_without_data_section():
    spec = make_spec([dense("image", 64)], {"source": "digits"}).model_copy(update={"data": None})
    assert "no `data:` section" in error_text(spec)


# --- digits ---------------------------------------------------------------------------------
def test_digits_end_to_end():
    data = load_data(compile_file(ROOT / "specs/quickstart.yaml").spec)
    assert [len(data.train), len(data.val), len(data.test)] == [1257, 270, 270]
    assert data.description == "digits: 1,257 train / 270 val / 270 test, 10 classes"
    x, y = data.train.inputs["image"], data.train.target
    assert x.shape == (1257, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    assert data.train.group is None
    assert set(np.unique(data.val.target)) == set(range(10))  # stratified: every class in val


def test_digits_splits_are_deterministic_per_seed():
    spec = make_spec([dense("image", 64)], {"source": "digits"}, seed=3)
    a, b = load_data(spec), load_data(spec)
    other = load_data(make_spec([dense("image", 64)], {"source": "digits"}, seed=4))
    assert np.array_equal(a.val.inputs["image"], b.val.inputs["image"])
    assert np.array_equal(a.test.target, b.test.target)
    assert not np.array_equal(a.val.inputs["image"], other.val.inputs["image"])


def test_digits_reshape_to_image():
    spec = make_spec([dense("pixels", 1, 8, 8)], {"source": "digits", "input": "pixels"})
    data = load_data(spec)
    assert data.test.inputs["pixels"].shape == (len(data.test), 1, 8, 8)


def test_digits_shape_mismatch():
    text = error_text(make_spec([dense("image", 63)], {"source": "digits"}))
    assert "dense shape mismatch: expected (N, 63)" in text and "(N, 64)" in text


def test_digits_input_not_in_spec():
    text = error_text(make_spec([dense("pixels", 64)], {"source": "digits"}))
    assert "input 'image'" in text and "spec inputs: ['pixels']" in text


def test_split_fractions_leaving_no_train_rows():
    spec = make_spec(
        [dense("image", 64)], {"source": "digits", "val_fraction": 0.6, "test_fraction": 0.4}
    )
    assert "every split needs rows" in error_text(spec)


# --- IDX --------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, type_byte: int = 0x08) -> None:
    dtype = {0x08: ">u1", 0x0C: ">i4"}[type_byte]
    header = bytes([0, 0, type_byte, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = header + array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def idx_dir(tmp_path: Path, n_train: int = 20, n_test: int = 6, classes: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n, suffix in (("train", n_train, ".gz"), ("t10k", n_test, "")):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 4, 4)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % classes)
    return tmp_path


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_raw_and_gzip(tmp_path, name):
    array = np.arange(24).reshape(2, 3, 4) * 1000
    write_idx(tmp_path / name, array, type_byte=0x0C)
    got = read_idx(tmp_path / name)
    assert got.shape == (2, 3, 4) and np.array_equal(got, array)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 4)))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(DataError, match="need 16 data bytes"):
        read_idx(tmp_path / "short")


def test_idx_split_limit_and_normalisation(tmp_path):
    data = {"source": "idx", "path": str(idx_dir(tmp_path)), "val_size": 5, "limit": 10}
    ds = load_data(make_spec([dense("image", 1, 4, 4)], data))
    assert [len(ds.train), len(ds.val), len(ds.test)] == [10, 5, 6]
    x = ds.train.inputs["image"]
    assert x.shape == (10, 1, 4, 4) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4  # train statistics
    assert np.array_equal(ds.test.target, np.arange(6))  # t10k kept in file order


def test_idx_missing_files(tmp_path):
    text = error_text(
        make_spec([dense("image", 784)], {"source": "fashion-mnist", "path": str(tmp_path)})
    )
    assert str(tmp_path) in text and "apt-get install dataset-fashion-mnist" in text
    assert "train-images-idx3-ubyte" in text


def test_idx_label_out_of_range(tmp_path):
    spec = make_spec(
        [dense("image", 16)],
        {"source": "idx", "path": str(idx_dir(tmp_path)), "val_size": 5},
        classes=3,
    )
    assert "multiclass label 3 is out of [0, 3)" in error_text(spec)


def test_idx_empty_test_split(tmp_path):
    spec = make_spec(
        [dense("image", 16)],
        {"source": "idx", "path": str(idx_dir(tmp_path, n_test=0)), "val_size": 5},
    )
    assert "the test split is empty" in error_text(spec)


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_smoke():
    spec = make_spec([dense("image", 1, 28, 28)], {"source": "fashion-mnist", "limit": 1000})
    ds = load_data(spec)
    assert [len(ds.train), len(ds.val), len(ds.test)] == [1000, 5000, 10000]
    assert ds.val.inputs["image"].shape == (5000, 1, 28, 28)
    assert set(np.unique(ds.test.target)) == set(range(10))


# --- MovieLens-100k -------------------------------------------------------------------------
needs_recbole = pytest.mark.skipif(not HAS_RECBOLE, reason="pip install --no-deps recbole==1.2.1")
MOVIELENS = ROOT / "specs/ctr_movielens.yaml"


@pytest.fixture(scope="module")
def movielens() -> Dataset:
    return load_data(compile_file(MOVIELENS).spec)


def movielens_spec(data: dict | None = None, **changes) -> Spec:
    """The shipped spec with inputs replaced (name=dict), dropped (name=None) or added."""
    spec = compile_file(MOVIELENS).spec.model_dump(by_alias=True)
    for name, value in changes.items():
        spec["inputs"] = [i for i in spec["inputs"] if i["name"] != name]
        if value is not None:
            spec["inputs"].append(value)
    spec["data"] = data or spec["data"]
    return Spec.model_validate(spec)


@needs_recbole
def test_movielens_splits_by_time(movielens):
    from rocketc.data.movielens import read_rows, recbole_directory

    assert [len(movielens.train), len(movielens.val), len(movielens.test)] == [80000] + [10000] * 2
    rows = read_rows(recbole_directory())
    time = rows["timestamp"].to_numpy()
    assert time[:80000].max() <= time[80000:90000].min()
    assert time[80000:90000].max() <= time[90000:].min()
    ratings = pd.to_numeric(rows["rating"]).to_numpy()
    assert np.array_equal(movielens.val.target, (ratings[80000:90000] >= 4).astype(np.float32))


@needs_recbole
def test_movielens_labels_and_features(movielens):
    train = movielens.train
    assert train.target.dtype == np.float32 and 0.5 < train.target.mean() < 0.6
    assert list(train.inputs) == [
        "user",
        "item",
        "age",
        "gender",
        "occupation",
        "zipcode",
        "decade",
        "genre",
    ]
    genre = train.inputs["genre"]
    assert genre.shape == (80000, 19) and genre.dtype == np.float32
    assert genre.sum(axis=1).min() >= 1  # every movie has a genre (or "unknown")
    assert train.group is not None and train.group.dtype == np.int64
    for name in ("user", "item", "age", "gender", "occupation", "zipcode"):
        assert train.inputs[name].min() >= 1  # every train value is in the train vocabulary


@needs_recbole
def test_movielens_vocab_from_train_only(movielens):
    train, val = movielens.train, movielens.val
    assert train.inputs["user"].max() == len(np.unique(train.group))  # ids 1..K, K = train users
    seen = np.isin(val.group, train.group)
    assert not seen.all()  # a time split meets new users
    assert np.array_equal(val.inputs["user"] != 0, seen)  # unseen user -> 0, seen -> its id


@needs_recbole
def test_movielens_vocab_too_small():
    text = error_text(movielens_spec(zipcode=cat("zipcode", 12)))
    assert "input 'zipcode' needs vocab >= 20" in text


@needs_recbole
def test_movielens_inputs_must_match():
    text = error_text(movielens_spec(genre=None, extra=cat("extra", 3)))
    assert "does not provide spec inputs ['extra']" in text
    assert "does not declare movielens-100k inputs ['genre']" in text
    assert "genre (dense [19])" in text


def test_movielens_missing_files(tmp_path):
    text = error_text(movielens_spec({"source": "movielens-100k", "path": str(tmp_path)}))
    assert "ml-100k.inter is missing" in text and "pip install --no-deps recbole==1.2.1" in text


# --- CSV / Parquet ----------------------------------------------------------------------------
def table() -> pd.DataFrame:
    n = 40
    return pd.DataFrame(
        {
            "time": np.arange(n)[::-1],  # reverse, so split_by has to sort
            "city": [["a", "b", "c"][i % 3] if i >= 20 else "new" for i in range(n)],
            "x1": np.arange(n, dtype=float),
            "x2": np.full(n, 5.0),
            "label": np.arange(n) % 2,
            "user": [f"u{i % 7}" for i in range(n)],
        }
    )


def tabular_spec(path: Path, vocab: int = 5, **data) -> Spec:
    source = "parquet" if path.suffix == ".parquet" else "csv"
    base = {
        "source": source,
        "path": str(path),
        "label": "label",
        "categorical": ["city"],
        "dense": {"feats": ["x1", "x2"]},
        "group": "user",
        "val_fraction": 0.25,
        "test_fraction": 0.25,
    }
    return make_spec([dense("feats", 2), cat("city", vocab)], {**base, **data}, task="binary")


@pytest.fixture(params=["csv", "parquet"])
def table_file(request, tmp_path) -> Path:
    path = tmp_path / f"rows.{request.param}"
    frame = table()
    frame.to_csv(path, index=False) if request.param == "csv" else frame.to_parquet(path)
    return path


def test_tabular_time_split_vocab_and_standardisation(table_file):
    ds = load_data(tabular_spec(table_file, split_by="time"))
    assert [len(ds.train), len(ds.val), len(ds.test)] == [20, 10, 10]
    # Sorted by time, the oldest 20 rows are the file's last 20: cities a/b/c, x1 = 20..39.
    assert set(ds.train.inputs["city"]) == {1, 2, 3}  # a, b, c in sorted order
    assert set(ds.test.inputs["city"]) == {0}  # "new" never seen in train
    feats = ds.train.inputs["feats"]
    assert feats.dtype == np.float32 and np.allclose(feats.mean(axis=0), 0, atol=1e-6)
    assert np.allclose(feats[:, 0].std(), 1) and np.all(feats[:, 1] == 0)  # constant: std -> 1
    train_x1 = np.arange(20, 40)
    expect = (np.arange(10, 20)[::-1] - train_x1.mean()) / train_x1.std()
    assert np.allclose(ds.val.inputs["feats"][:, 0], expect, atol=1e-5)  # train stats only
    assert ds.train.group is not None and ds.train.target.dtype == np.float32


def test_tabular_random_split_is_seeded(table_file):
    a, b = load_data(tabular_spec(table_file)), load_data(tabular_spec(table_file))
    assert [len(a.train), len(a.val), len(a.test)] == [20, 10, 10]
    assert np.array_equal(a.val.inputs["feats"], b.val.inputs["feats"])


def test_tabular_missing_category_is_unseen(tmp_path):
    frame = table()
    frame.loc[30, "city"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    ds = load_data(tabular_spec(tmp_path / "t.csv", split_by="time"))
    assert (ds.train.inputs["city"] == 0).sum() == 1


def test_tabular_errors(tmp_path):
    path = tmp_path / "t.csv"
    table().to_csv(path, index=False)
    text = error_text(tabular_spec(path, dense={"feats": ["x1", "nope"]}))
    assert "no column 'nope'; available: ['time', 'city'" in text
    assert "needs vocab >= 4" in error_text(tabular_spec(path, vocab=3, split_by="time"))
    # Not listed in data.categorical, city reads the column of its name; a dense input of
    # shape [2] gathers columns, which only data.dense can name (a spec error)
    implicit, explicit = (
        load_data(tabular_spec(path, categorical=[])),
        load_data(tabular_spec(path)),
    )
    assert np.array_equal(implicit.train.inputs["city"], explicit.train.inputs["city"])
    with pytest.raises(
        ValidationError, match="gathers several columns: list them under data.dense"
    ):
        tabular_spec(path, dense={})
    text = error_text(tabular_spec(path, dense={"feats": ["x1"]}))
    assert "dense shape mismatch: expected (N, 2)" in text
    assert "no such csv file" in error_text(tabular_spec(tmp_path / "gone.csv"))

    frame = table()
    frame.loc[3, "x1"] = np.nan
    frame.to_csv(path, index=False)
    assert "column 'x1' has 1 missing values" in error_text(tabular_spec(path))

    frame = table()
    frame.loc[3, "label"] = 2
    frame.to_csv(path, index=False)
    assert "binary labels must be 0 or 1; got 2" in error_text(tabular_spec(path))


# --- npz ----------------------------------------------------------------------------------------
def npz_file(tmp_path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.random((30, 4)),
        "ids": np.arange(30) % 5,
        "label": np.arange(30) % 3,
        "user": np.arange(30) % 4,
        **overrides,
    }
    np.savez(tmp_path / "d.npz", **arrays)
    return tmp_path / "d.npz"


def npz_spec(path: Path) -> Spec:
    return make_spec(
        [dense("image", 4), cat("ids", 5)],
        {
            "source": "npz",
            "path": str(path),
            "group": "user",
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        classes=3,
    )


def test_npz_end_to_end(tmp_path):
    ds = load_data(npz_spec(npz_file(tmp_path)))
    assert [len(ds.train), len(ds.val), len(ds.test)] == [18, 6, 6]
    assert ds.train.inputs["image"].dtype == np.float32 and ds.train.inputs["ids"].dtype == np.int64
    assert ds.train.target.dtype == np.int64 and ds.val.group is not None
    rows = np.concatenate([ds.train.target, ds.val.target, ds.test.target])
    assert sorted(rows) == sorted(np.arange(30) % 3)


def test_npz_errors(tmp_path):
    text = error_text(npz_spec(npz_file(tmp_path, image=np.zeros((30, 2, 2)))))
    assert "input 'image': dense shape mismatch: expected (N, 4), got (N, 2, 2)" in text
    assert text.count("dense shape mismatch") == 1  # said once, not once per split
    text = error_text(npz_spec(npz_file(tmp_path, ids=np.arange(30) % 8)))
    assert "input 'ids': category id 7 >= vocab 5" in text
    assert "set vocab to at least 8" in text
    path = npz_file(tmp_path)
    data = np.load(path)
    np.savez(path, **{k: data[k] for k in data.files if k != "ids"})
    assert "no array(s) ['ids']" in error_text(npz_spec(path))
    assert "no such .npz file" in error_text(npz_spec(tmp_path / "gone.npz"))


def test_group_ordered_split_keeps_each_groups_newest_rows_out():
    from rocketc.data.encode import group_ordered_split

    group = np.array([1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    train, val, test = group_ordered_split(group, 0.1, 0.2)
    # group 1 has 10 rows (in time order): 2 newest test, 1 val; group 2 has 11: 2 test, 1 val.
    assert test.tolist() == [10, 11, 19, 20]
    assert val.tolist() == [9, 18]
    assert sorted([*train, *val, *test]) == list(range(len(group)))


@pytest.mark.skipif(not HAS_RECBOLE, reason="recbole (ml-100k files) not installed")
def test_movielens_user_time_split_sees_every_user_in_training():
    text = (ROOT / "specs" / "ctr_movielens.yaml").read_text()
    from rocketc.compiler import compile_text

    spec = compile_text(text.replace("  split: time\n", "  split: user_time\n")).spec
    assert spec.data.split == "user_time"
    data = load_data(spec)
    assert (data.test.inputs["user"] == 0).mean() == 0.0  # no unseen users
    assert set(np.unique(data.test.group)) <= set(np.unique(data.train.group))
    assert 0.08 < len(data.test) / (len(data.train) + len(data.val) + len(data.test)) < 0.1


# --- one preprocessing implementation: training arrays == preprocess.json applied to raw rows --
def assert_one_implementation(ds: Dataset) -> None:
    """Each split's arrays equal the bundle's preprocessing (through its JSON) on its raw rows."""
    from rocketc.data.preprocess import Preprocessor

    assert ds.preprocess is not None
    reloaded = Preprocessor.from_dict(json.loads(ds.preprocess.dumps()))
    for name in ("train", "val", "test"):
        split = getattr(ds, name)
        assert split.raw is not None
        encoded = reloaded.encode(split.raw)
        assert not encoded.problems, encoded.problems[:3]
        assert list(encoded.inputs) == list(split.inputs)
        for key, array in split.inputs.items():
            got = encoded.inputs[key]
            assert got.dtype == array.dtype and np.array_equal(got, array), (name, key)


def test_digits_preprocessing_is_one_implementation():
    assert_one_implementation(load_data(compile_file(ROOT / "specs/quickstart.yaml").spec))


def test_idx_preprocessing_is_one_implementation(tmp_path):
    data = {"source": "idx", "path": str(idx_dir(tmp_path)), "val_size": 5}
    assert_one_implementation(load_data(make_spec([dense("image", 1, 4, 4)], data)))


def test_tabular_preprocessing_is_one_implementation(table_file):
    frame = pd.read_csv(table_file) if table_file.suffix == ".csv" else None
    assert_one_implementation(load_data(tabular_spec(table_file, split_by="time")))
    if frame is not None:  # a file read again in chunks gives the same raw rows
        from rocketc.data.fields import Field, raw_columns

        fields = [Field("city", "str"), Field("x1", "number"), Field("x2", "number")]
        whole = raw_columns(frame, fields)
        parts = [raw_columns(c, fields) for c in pd.read_csv(table_file, chunksize=7)]
        for f in fields:
            assert list(np.concatenate([p[f.name] for p in parts])) == list(whole[f.name])


def test_npz_preprocessing_is_one_implementation(tmp_path):
    assert_one_implementation(load_data(npz_spec(npz_file(tmp_path))))


@needs_recbole
def test_movielens_preprocessing_is_one_implementation(movielens):
    assert_one_implementation(movielens)
    features = {f.input: f for f in movielens.preprocess.features}
    rows = {
        "user_id": [1, 99999, None],
        "item_id": [1, 2, 3],
        "age": [17.0, 24, None],  # bands: <18, 18-24, missing
        "gender": ["M", " F ", ""],
        "occupation": ["writer", "astronaut", None],
        "zip_code": ["02134", "k1a 0b1", ""],
        "release_year": [1995, 1959.0, None],
        "class": ["Comedy Drama", "", None],
    }
    encoded = movielens.preprocess.encode(rows)
    assert not encoded.problems
    ids = encoded.inputs
    assert ids["user"][1] == 0 and ids["user"][2] == 0  # unseen user, missing user
    assert ids["age"].tolist() == [1, 2, 0]  # train vocabulary holds bands 0..6 as ids 1..7
    assert ids["gender"].tolist() == [2, 1, 0]  # vocabulary F, M; " F " is stripped
    zipcodes = features["zipcode"].vocabulary.tolist()
    assert ids["zipcode"].tolist() == [zipcodes.index("0") + 1, zipcodes.index("K") + 1, 0]
    assert ids["occupation"][1:].tolist() == [0, 0]  # unseen, missing
    vocab = features["decade"].vocabulary.tolist()
    assert ids["decade"].tolist() == [vocab.index(1990) + 1, vocab.index(1950) + 1, 0]
    assert ids["genre"][0].sum() == 2 and ids["genre"][1:].sum() == 0
    bad = movielens.preprocess.encode({**rows, "class": ["Comedy Jazz", "", ""]})
    assert [(p.row, p.field) for p in bad.problems] == [(0, "class")]
    assert "unknown token 'Jazz'" in bad.problems[0].message


# --- raw fields ---------------------------------------------------------------------------
def test_a_boolean_column_is_served_from_json_true_and_false(table_file):
    """A bool column trains as a `bool` field: a request may send true/false (or 1/0), and
    gets the ids the table's True/False got; anything else names the row."""
    from rocketc.data.preprocess import Preprocessor

    frame = table()
    frame["premium"] = np.arange(len(frame)) % 3 == 0
    if table_file.suffix == ".csv":
        frame.to_csv(table_file, index=False)  # pandas reads True/False back as bool
    else:
        frame.to_parquet(table_file)
    data = {"categorical": ["city", "premium"]}
    spec = make_spec(
        [dense("feats", 2), cat("city", 5), cat("premium", 3)],
        {**tabular_spec(table_file).data.model_dump(), **data},
        task="binary",
    )
    ds = load_data(spec)
    assert_one_implementation(ds)
    served = Preprocessor.from_dict(json.loads(ds.preprocess.dumps()))
    premium = next(f for f in served.features if f.input == "premium")
    assert premium.fields()[0].type == "bool"
    rows = {"city": ["a"] * 6, "x1": [1.0] * 6, "x2": [5.0] * 6}
    rows["premium"] = [True, False, 1, 0, None, "yes"]
    encoded = served.encode(rows)
    assert encoded.inputs["premium"][:5].tolist() == [2, 1, 2, 1, 0]  # sorted: False=1, True=2
    problems = [(p.row, p.message) for p in encoded.problems]
    assert problems == [(5, "expected true or false, got 'yes'")]


def test_parse_fields_types_missing_and_wrong_values():
    from rocketc.data.fields import Field, parse

    got = parse(Field("u", "int"), [3, 3.0, None, "3", True, 2.5, float("nan"), "three"])
    assert got.values[:4].tolist() == [3, 3, 0, 3]  # numeric text is its number (issue 19)
    assert got.missing.tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    assert got.wrong == {
        4: "expected a whole number, got true",
        5: "expected a whole number, got 2.5",
        7: "expected a whole number, got 'three'",
    }
    got = parse(Field("u", "int"), [2**70, 1])  # JSON integers have no size limit; ids do
    assert got.wrong == {0: "1180591620717411303424 does not fit in 64 bits"}
    assert parse(Field("x", "number"), [2**70]).values[0] == 2.0**70
    got = parse(Field("c", "str"), ["a", 5, None, ""])
    assert got.wrong == {1: "expected text, got 5"} and got.missing.tolist() == [0, 0, 1, 1]
    got = parse(Field("x", "number"), np.array([1.5, np.nan]))
    assert got.missing.tolist() == [False, True] and not got.wrong
    got = parse(Field("v", "vector", 4), [[1, 2, 3, 4], [[1, 2], [3, 4]], [1, 2], ["a"] * 4, 7])
    assert got.values[1].tolist() == [1, 2, 3, 4]  # nested lists flatten row-major
    assert got.wrong == {
        2: "expected a list of 4 numbers, got 2",
        3: "expected a list of 4 numbers, got a list holding other values",
        4: "expected a list of 4 numbers, got 7",
    }


values_strategy = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=1, max_size=30),
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", ""])), min_size=1),
)


@settings(max_examples=60, deadline=None)
@given(train=values_strategy, served=values_strategy)
def test_vocabulary_lookup_matches_a_plain_dict(train, served):
    """Ids are 1 + rank among distinct train values; None, empty text and unseen values are 0
    (empty text is missing, as an empty CSV cell is)."""
    from rocketc.data.features import Categorical

    kind = "int" if any(isinstance(v, int) for v in train) else "str"
    if kind == "int":
        served = [v if v is None or isinstance(v, int) else len(v) for v in served]
    else:
        served = [v if v is None or isinstance(v, str) else str(v) for v in served]
    feature = Categorical("x", 64, "x", kind).fit({"x": np.array(train, dtype=object)})
    ids, problems = feature.encode({"x": np.array(served, dtype=object)})
    known = sorted({v for v in train if v is not None and v != ""})
    ranks = {v: k + 1 for k, v in enumerate(known)}
    assert not problems
    assert ids.tolist() == [0 if v is None else ranks.get(v, 0) for v in served]
