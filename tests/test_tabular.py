"""CSV and Parquet tables: a column named once, and numbers cut into quantile buckets.

A categorical input with no `data.categorical` entry reads the column of its name (as a dense
input of shape [1] with no `data.dense` entry does); `{column: NAME, buckets: N}` fits quantile
edges on the train split, in memory and streamed, saves them in preprocess.json, and training,
`predict` and `serve` give the same ids. A column the table lacks is reported at the spec line
that names it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file, compile_text
from rocketc.data import load_data
from rocketc.data import streamfit as streamfit_module
from rocketc.data.features import Categorical, Quantiles
from rocketc.data.preprocess import Preprocessor
from rocketc.errors import DataError, SpecError
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle

SPEC = """\
version: 1
name: tab
task: binary
inputs:
  - {name: city, kind: categorical, vocab: 8}
  - {name: income, kind: categorical, vocab: 9}
  - {name: age, kind: dense, shape: [1]}
layers:
  - {id: fields, op: field_embeddings, in: [city, income], dim: 4, role: shared}
  - {id: features, op: concat, in: [fields, age], role: shared}
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [8], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
train: {epochs: 1, batch_size: 64}
data:
  source: @SOURCE@
  path: "@PATH@"
  label: y
  categorical:
    - {column: income, buckets: 8}
"""


def clicks(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A long-tailed amount with gaps (income), a text code (city), a number (age), a label."""
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(3, 1, n), 2)
    income[::11] = np.nan
    income[::13] = 0.0
    return pd.DataFrame(
        {
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "income": income,
            "age": rng.integers(18, 80, n).astype(float),
            "y": rng.integers(0, 2, n),
        }
    )


def write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return SPEC.replace("@SOURCE@", path.suffix[1:]).replace("@PATH@", str(path))


# --- bucket edges by hand -------------------------------------------------------------------
def test_quantile_edges_and_ids_by_hand():
    feature = Categorical("x", 5, "x", "number", Quantiles(buckets=4))
    frame = {"x": np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)}
    feature.fit(frame)
    # the lower train values at 1/4, 2/4, 3/4 of the sorted 1..10: positions 2, 4 and 6
    assert feature.derive.edges == (3.0, 5.0, 7.0)
    ids, problems = feature.encode({"x": np.array([1, 2.9, 3, 4, 5, 6.5, 7, 100, np.nan, -5])})
    assert ids.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 0, 1] and not problems


def test_repeated_quantiles_merge_into_fewer_bands():
    feature = Categorical("x", 5, "x", "number", Quantiles(buckets=4))
    feature.fit({"x": np.array([0.0] * 8 + [1.0, 5.0])})  # mostly zeros: every cut is 0
    assert feature.derive.edges == (0.0,)
    assert feature.encode({"x": np.array([-1.0, 0.0, 3.0])})[0].tolist() == [1, 2, 2]
    assert feature.vocabulary.tolist() == [0, 1]  # bands, each id band + 1


def test_preprocess_json_replays_the_edges():
    feature = Categorical("x", 9, "x", "number", Quantiles(buckets=8))
    values = np.random.default_rng(0).lognormal(size=500)
    feature.fit({"x": values})
    saved = Preprocessor("csv", "a row", [feature], {"task": "binary"}).dumps()
    derive = json.loads(saved)["inputs"][0]["derive"]
    assert derive["name"] == "quantiles" and derive["buckets"] == 8 and len(derive["edges"]) == 7
    again = Preprocessor.from_dict(json.loads(saved)).features[0]
    rows = {"x": np.array([*values, np.nan, "12.5"], dtype=object)}  # numeric text, as served
    assert np.array_equal(again.encode(rows)[0], feature.encode(rows)[0])


# --- loading: in memory and streamed ------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_spec_without_categorical_entries_reads_columns_by_name(tmp_path, suffix):
    frame = clicks()
    text = write(frame, tmp_path / f"t{suffix}")
    short = load_data(compile_text(text).spec)
    explicit = text.replace(
        "    - {column: income, buckets: 8}\n",
        "    - city\n    - {column: income, buckets: 8}\n  dense: {age: [age]}\n",
    )
    long = load_data(compile_text(explicit).spec)
    for split in ("train", "val", "test"):
        a, b = getattr(short, split).inputs, getattr(long, split).inputs
        assert a.keys() == b.keys() == {"city", "income", "age"}
        assert all(np.array_equal(a[k], b[k]) for k in a)
    # the train split's ids are its own quantile bands, by hand
    income = short.train.raw["income"].astype(np.float64)  # the train rows as read
    edges = np.unique(np.quantile(income[~np.isnan(income)], np.arange(1, 8) / 8, method="lower"))
    assert short.preprocess.features[1].derive.edges == tuple(edges)
    want = np.where(np.isnan(income), 0, np.searchsorted(edges, income, side="right") + 1)
    assert np.array_equal(short.train.inputs["income"], want)
    assert 0 < len(edges) <= 7 and short.train.inputs["income"].max() == len(edges) + 1


def _streamed(text: str) -> str:
    return text.replace("  label: y\n", "  label: y\n  stream: true\n")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streamed_and_in_memory_fit_the_same_edges_and_ids(tmp_path, suffix):
    text = write(clicks(3000), tmp_path / f"t{suffix}")
    memory = load_data(compile_text(text).spec)
    streamed = load_data(compile_text(_streamed(text)).spec)
    assert streamed.preprocess.to_dict() == memory.preprocess.to_dict()
    inputs = {k: np.concatenate([b[0][k] for b in streamed.val.blocks()]) for k in ("income",)}
    assert np.array_equal(inputs["income"], memory.val.inputs["income"])


def test_a_streamed_sample_smaller_than_the_train_split_estimates_the_edges(tmp_path, monkeypatch):
    text = write(clicks(20_000), tmp_path / "t.parquet")
    memory = load_data(compile_text(text).spec).preprocess.features[1].derive.edges
    monkeypatch.setattr(streamfit_module, "SAMPLE_VALUES", 4000)
    streamed = load_data(compile_text(_streamed(text)).spec).preprocess.features[1].derive.edges
    again = load_data(compile_text(_streamed(text)).spec).preprocess.features[1].derive.edges
    assert streamed == again and len(streamed) == len(memory)  # seeded: the same sample
    # each estimated edge sits within 3% of the train values' ranks from the exact one
    values = np.sort(clicks(20_000)["income"].dropna().to_numpy())
    rank = np.searchsorted(values, streamed) / len(values)
    exact = np.searchsorted(values, memory) / len(values)
    assert np.abs(rank - exact).max() < 0.03


# --- mistakes, positioned -------------------------------------------------------------------
def test_a_missing_column_is_reported_at_the_line_that_names_it(tmp_path):
    text = write(clicks(200).drop(columns=["city", "income"]), tmp_path / "t.parquet")
    spec_file = tmp_path / "tab.yaml"
    spec_file.write_text(text)
    compiled = compile_file(spec_file)
    with pytest.raises(DataError) as info:
        load_data(compiled.spec, compiled.source)
    by_line = {d.pos.line: d.message for d in info.value.diagnostics}
    assert set(by_line) == {5, 21}  # the city input; the income entry of data.categorical
    assert "no column 'city'" in by_line[5] and "reads the column of its name" in by_line[5]
    assert "no column 'income'" in by_line[21] and "data.categorical names it" in by_line[21]
    assert all(d.file == str(spec_file) for d in info.value.diagnostics)
    # the CLI says the same, positioned, and exits 1
    result = CliRunner().invoke(app, ["train", str(spec_file), "-o", str(tmp_path / "run")])
    assert result.exit_code == 1 and f"{spec_file}:5:5: " in result.stderr, result.output


def test_bucket_entries_fit_their_input(tmp_path):
    text = write(clicks(100), tmp_path / "t.parquet")
    with pytest.raises(SpecError, match=r":21:7: .*give it vocab: 9"):
        compile_text(text.replace("vocab: 9}", "vocab: 5}"))
    with pytest.raises(SpecError, match="takes bucket ids: declare it"):
        compile_text(text.replace("vocab: 9}", "hash_buckets: 8}"))
    with pytest.raises(SpecError, match=r"inputs\[2\].shape: dense input 'age' of shape \[2\]"):
        compile_text(text.replace("shape: [1]", "shape: [2]"))
    text = write(clicks(100).assign(income="lots"), tmp_path / "t.parquet")
    with pytest.raises(DataError, match="column 'income' must be numeric"):
        load_data(compile_text(text).spec)


# --- training, predict and serve agree ------------------------------------------------------
def test_train_predict_and_serve_give_the_same_bucket_ids(tmp_path):
    frame = clicks(800)
    text = write(frame, tmp_path / "t.csv")
    spec_file = tmp_path / "tab.yaml"
    spec_file.write_text(text)
    run = tmp_path / "run"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(spec_file), "-o", str(run), "--epochs", "1"])
    assert trained.exit_code == 0, trained.output
    data = load_data(compile_file(spec_file).spec)
    saved = Preprocessor.load(run / "preprocess.json")
    raw = {k: frame[k].to_numpy(dtype=object) for k in ("city", "income", "age")}
    assert np.array_equal(
        saved.encode(raw).inputs["income"], data.preprocess.encode(raw).inputs["income"]
    )
    scores = tmp_path / "scores.csv"
    predicted = runner.invoke(
        app, ["predict", str(run), "--data", str(tmp_path / "t.csv"), "-o", str(scores)]
    )
    assert predicted.exit_code == 0, predicted.output
    want = pd.read_csv(scores)["score"].to_numpy()[:30]
    rows = [
        {
            "city": r.city,
            "income": None if np.isnan(r.income) else str(r.income),  # numeric text, as CSV
            "age": r.age,
        }
        for r in frame.iloc[:30].itertuples()
    ]
    client = TestClient(create_app(load_bundle(run)))
    response = client.post("/v1/score", json={"rows": rows})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["scores"], want, atol=1e-6)
