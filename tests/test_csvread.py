"""The text "NA" in a CSV: a category in a text column, missing in a number column, everywhere.

pandas and pyarrow read "NA" (and "N/A", "null", ...) as missing by default, so a category
spelled "NA" was merged with unseen values as id 0 in training while a `/v1/score` request
sending "NA" looked it up. One rule now (rocketc/data/csvread.py): an empty cell is
missing; in a text column every other cell is a value; in a number column the markers are
missing. init, the in-memory loader, the streamed loader, predict and serve all read it so.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.data.csvread import read_csv
from rocketc.init import init_spec
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle

SPEC = """\
version: 1
name: na_text
task: binary
inputs:
  - {name: education, kind: categorical, vocab: 6}
  - {name: region, kind: categorical, vocab: 6}
  - {name: numbers, kind: dense, shape: [1]}
layers:
  - {id: fields, op: field_embeddings, in: [education, region], dim: 4, role: shared}
  - {id: features, op: concat, in: [fields, numbers], role: shared}
  - {id: light_tower, op: mlp, in: features, units: [8], role: light}
  - {id: light_logit, op: linear, in: light_tower, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [16], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
train: {epochs: 1, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
data:
  source: csv
  path: PATH
  label: y
  categorical: [education, region]
  dense: {numbers: [age]}
"""


def _table(path, n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    education = rng.choice(["HS", "BA", "NA", "MA"], n).astype(object)
    education[::25] = ""  # an empty cell: missing
    region = rng.integers(1, 5, n).astype(object)
    region[::10] = "NA"  # a number column: "NA" is missing
    frame = pd.DataFrame(
        {
            "education": education,
            "region": region,
            "age": rng.integers(18, 80, n),
            "y": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_read_csv_keeps_text_and_reads_markers_in_numbers_as_missing():
    text = "a,b,c,d\nNA,1,x,NA\nN/A,NA,,\nfoo,3,y,null\n"
    frame = read_csv(io.StringIO(text))
    assert frame["a"].tolist() == ["NA", "N/A", "foo"]
    assert frame["d"].isna().all()  # markers and nothing else: missing, as pandas reads it
    assert frame["b"].dtype.kind == "f" and frame["b"].isna().tolist() == [False, True, False]
    assert frame["c"].isna().tolist() == [False, True, False]  # only the empty cell
    chunk = next(read_csv(io.StringIO(text), text=["a", "c"], chunksize=2))
    assert chunk["a"].tolist() == ["NA", "N/A"] and chunk["b"].isna().tolist() == [False, True]


def test_init_counts_na_as_a_category(tmp_path):
    path = tmp_path / "t.csv"
    _table(path)
    result = init_spec(path, "y", out=tmp_path / "s.yaml")
    by_name = {c.name: c for c in result.columns}
    assert by_name["education"].distinct == 4  # HS, BA, NA, MA
    assert "missing" in by_name["region"].reason and by_name["region"].distinct == 4


@pytest.mark.parametrize("stream", [False, True])
def test_training_and_predict_and_serve_agree_on_na(tmp_path, stream):
    path = tmp_path / "t.csv"
    frame = _table(path)
    text = SPEC.replace("PATH", str(path)) + f"  stream: {str(stream).lower()}\n"
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(text)
    dataset = load_data(compile_text(text).spec)
    education = next(f for f in dataset.preprocess.features if f.input == "education")
    assert education.vocabulary.tolist() == ["BA", "HS", "MA", "NA"]  # "" is not a value
    region = next(f for f in dataset.preprocess.features if f.input == "region")
    assert region.type == "number" and region.vocabulary.tolist() == [1, 2, 3, 4]  # has gaps

    runs = tmp_path / "run"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(spec_path), "-o", str(runs), "--epochs", "1"])
    assert trained.exit_code == 0, trained.output
    # Training's encoding of the table's rows is predict's and serve's.
    bundle = load_bundle(runs)
    encoded = bundle.preprocess.encode(
        {
            "education": read_csv(path)["education"].to_numpy(dtype=object),
            "region": read_csv(path)["region"].to_numpy(),
            "age": frame["age"].to_numpy(),
        }
    )
    ids = encoded.inputs["education"]
    assert (ids[frame["education"].to_numpy() == "NA"] == 4).all()  # its own id, not 0
    assert (ids[::25] == 0).all()  # the empty cells
    assert (encoded.inputs["region"][::10] == 0).all()
    scores = tmp_path / "scores.csv"
    done = runner.invoke(app, ["predict", str(runs), "--data", str(path), "-o", str(scores)])
    assert done.exit_code == 0, done.output
    want = pd.read_csv(scores)["score"].to_numpy()
    np.testing.assert_allclose(want, bundle.predict(encoded.inputs).probabilities, atol=1e-6)
    rows = [
        {
            "education": frame["education"][k] or None,
            "region": None if frame["region"][k] == "NA" else int(frame["region"][k]),
            "age": int(frame["age"][k]),
        }
        for k in range(30)
    ]
    response = TestClient(create_app(bundle)).post("/v1/score", json={"rows": rows})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["scores"], want[:30], atol=1e-6)
    rows[0]["education"] = ""  # empty text: missing, like the empty cell
    rows[1]["education"] = "NA"
    again = TestClient(create_app(bundle)).post("/v1/score", json={"rows": rows[:2]})
    first = bundle.preprocess.encode({"education": ["", "NA"], "region": [1, 1], "age": [30, 30]})
    assert first.inputs["education"].tolist() == [0, 4]
    assert again.status_code == 200, again.text
