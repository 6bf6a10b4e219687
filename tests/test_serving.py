"""Serving a run: the bundle, `rocketc predict` and the ASGI app (in-process test client).

The reference for every score is the trained `LightNet` in PyTorch, fed inputs the test builds
itself from the raw rows (train-split vocabularies with id 0 for unseen or missing values,
train-split mean/std), so a drift between training, predict and serve preprocessing shows up.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from starlette.testclient import TestClient
from typer.testing import CliRunner

from rocketc.cli import app as cli
from rocketc.data.fields import Field, number_from_text, raw_columns
from rocketc.errors import BundleError
from rocketc.serve import bundle as bundle_module
from rocketc.serve import predict
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle
from rocketc.serve.predict import chunk_rows_for, predict_file
from rocketc.serve.requests import Limits
from tests.helpers.pty_runs import BAR, ROCKETC, plain, run_in_pty
from tests.helpers.serving_runs import clicks, light_net, trained_run

CTR_FIELDS = ["user", "item", "city", "price", "age"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ctr_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "ctr")


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "quickstart")


@pytest.fixture(scope="module")
def client(ctr_run):
    return TestClient(create_app(load_bundle(ctr_run)), raise_server_exceptions=False)


def candidate_rows() -> pd.DataFrame:
    """The file's newest 50 rows (its test split), then unseen and missing values."""
    rows = clicks().iloc[-50:].reset_index(drop=True)
    extra = rows.iloc[:4].copy()
    extra["user"] = [999, 998, 3, 3]  # users never seen in training
    extra["item"] = [5, 77, -1, 5]
    extra["city"] = ["oslo", "paris", None, "  "]  # unseen, seen, missing, unseen (no strip)
    return pd.concat([rows, extra], ignore_index=True)


def reference_scores(run, rows: pd.DataFrame) -> np.ndarray:
    """P(click) from LightNet on inputs encoded here, independently of rocketc's preprocessing."""
    train = clicks().sort_values("ts").iloc[: 2000 - 200 - 200]  # split_by ts: oldest 80%

    def ids(column: str) -> np.ndarray:
        vocab = {v: k + 1 for k, v in enumerate(sorted(train[column].dropna().unique()))}
        return np.array([0 if pd.isna(v) else vocab.get(v, 0) for v in rows[column]])

    dense = train[["price", "age"]].to_numpy(np.float64)
    numeric = (rows[["price", "age"]].to_numpy(np.float64) - dense.mean(0)) / dense.std(0)
    with torch.inference_mode():
        logits = light_net(run)(
            torch.from_numpy(ids("user")),
            torch.from_numpy(ids("item")),
            torch.from_numpy(ids("city")),
            torch.from_numpy(numeric.astype(np.float32)),
        )
    return torch.sigmoid(logits.double()).numpy().reshape(-1)


# --- the bundle ---------------------------------------------------------------------------
def test_bundle_records_preprocessing_versions_and_model_hash(ctr_run):
    bundle = json.loads((ctr_run / "preprocess.json").read_text())
    for name in ("light.onnx", "report.json"):  # everything predict and serve read
        digest = hashlib.sha256((ctr_run / name).read_bytes()).hexdigest()
        assert bundle["manifest"][name] == digest
    assert bundle["sha256"] == bundle_module.digest_of_document(bundle)
    assert set(bundle["versions"]) == {"rocketc", "onnx", "onnx_opset", "onnxruntime"}
    assert bundle["spec"] == {"name": "ctr_serving", "version": 1, "task": "binary"}
    assert bundle["fields"] == {
        "age": "number",
        "city": "str",
        "item": "int",
        "price": "number",
        "user": "int",
    }
    city = next(i for i in bundle["inputs"] if i["input"] == "city")
    assert city["vocabulary"] == ["lille", "lyon", "nice", "paris"] and "unseen" in city
    numeric = next(i for i in bundle["inputs"] if i["input"] == "numeric")
    assert numeric["columns"] == ["price", "age"] and len(numeric["mean"]) == 2
    assert bundle["label"]["output"] == "probability that 'clicked' is 1"


def copy_bundle(run: Path, to: Path) -> Path:
    to.mkdir(exist_ok=True)
    for name in ("light.onnx", "preprocess.json", "report.json"):
        shutil.copy(run / name, to / name)
    return to


def rewrite_bundle(run: Path, edit) -> None:
    """Edit preprocess.json and redo its own digest, as a bug (or a careful hand) would."""
    bundle = json.loads((run / "preprocess.json").read_text())
    edit(bundle)
    bundle["sha256"] = bundle_module.digest_of_document(bundle)
    (run / "preprocess.json").write_text(json.dumps(bundle))


def assert_refused(run: Path, match: str) -> None:
    """load_bundle, predict and serve each refuse the run in one line, exit 1, no traceback."""
    with pytest.raises(BundleError, match=match):
        load_bundle(run)
    for command in (["predict", str(run), "--data", str(run / "light.onnx")],
                    ["serve", str(run), "--port", "1"]):  # fmt: skip
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert re.search(match, lines[0]), lines


def test_tampered_model_is_refused(ctr_run, tmp_path):
    copy_bundle(ctr_run, tmp_path)
    with open(tmp_path / "light.onnx", "ab") as f:
        f.write(b"\0")
    assert_refused(tmp_path, "light.onnx: SHA-256 .* does not match")


def test_every_file_predict_and_serve_read_is_covered_by_the_manifest(ctr_run, tmp_path):
    """An edited vocabulary or mean, a corrupt report.json, a stripped manifest: refused."""
    run = copy_bundle(ctr_run, tmp_path / "vocabulary")
    text = (run / "preprocess.json").read_text()
    (run / "preprocess.json").write_text(text.replace('"lille"', '"lima"', 1))
    assert_refused(run, "preprocess.json: its contents do not match the SHA-256")
    run = copy_bundle(ctr_run, tmp_path / "mean")
    bundle = json.loads(text)
    numeric = next(i for i in bundle["inputs"] if i["input"] == "numeric")
    numeric["mean"][0] += 1.0
    (run / "preprocess.json").write_text(json.dumps(bundle))
    assert_refused(run, "preprocess.json: its contents do not match")
    run = copy_bundle(ctr_run, tmp_path / "report")
    (run / "report.json").write_text('{"test": {"auc": 0.9')  # torn
    assert_refused(run, "report.json: SHA-256 .* does not match")
    (run / "report.json").unlink()
    assert_refused(run, "report.json: missing; preprocess.json's manifest lists it")
    run = copy_bundle(ctr_run, tmp_path / "garbage")
    (run / "preprocess.json").write_bytes(b"\xff\xfe{not json")
    assert_refused(run, "preprocess.json: not readable JSON")
    run = copy_bundle(ctr_run, tmp_path / "old")  # a bundle of rocketc before the manifest
    rewrite_bundle(run, lambda b: b.pop("manifest"))
    assert_refused(run, "without a manifest.*re-export the run: rocketc train SPEC .*--resume")
    run = copy_bundle(ctr_run, tmp_path / "escape")  # the manifest never names other paths
    rewrite_bundle(run, lambda b: b["manifest"].update({"../../etc/passwd": "0" * 64}))
    assert_refused(run, "its manifest must list light.onnx")


def test_bundle_that_does_not_fit_its_model_is_refused_at_load(ctr_run, tmp_path):
    """Digests redone: the model itself still refuses ids past its tables and other widths."""

    def feature(name):
        return lambda b: next(i for i in b["inputs"] if i["input"] == name)

    def more_cities(b):  # 20 cities and vocab 32: past the model's 8-row table
        city = feature("city")(b)
        city["vocab"], city["vocabulary"] = 32, [f"c{k:02d}" for k in range(20)]

    def too_many_cities(b):
        feature("city")(b)["vocabulary"] = [f"c{k:02d}" for k in range(9)]

    def wider_mean(b):
        feature("numeric")(b)["mean"] = [0.0, 0.0, 0.0]

    def wider_dense(b):
        numeric = feature("numeric")(b)
        numeric["shape"], numeric["columns"] = [3], ["price", "age", "user"]

    cases = [
        (more_cities, "light.onnx: input 'city': .*ids up to 20, but the model's embedding table "
         "for it has 8 rows"),
        (too_many_cities, "preprocess.json: input 'city': 9 vocabulary values give ids up to 9, "
         "beyond its vocab of 8"),
        (wider_mean, "preprocess.json: input 'numeric': mean holds 3 values; the input has 2"),
        (wider_dense, r"light.onnx: input 'numeric': the model takes shape \[2\]"),
    ]  # fmt: skip
    for k, (edit, match) in enumerate(cases):
        run = copy_bundle(ctr_run, tmp_path / str(k))
        rewrite_bundle(run, edit)
        assert_refused(run, match)


def test_bundle_of_another_model_is_refused(ctr_run, tmp_path):
    copy_bundle(ctr_run, tmp_path)
    rewrite_bundle(tmp_path, lambda b: b["inputs"][0].update(input="visitor"))
    with pytest.raises(BundleError, match="differ from the bundle's"):
        load_bundle(tmp_path)
    (tmp_path / "preprocess.json").unlink()
    with pytest.raises(BundleError, match="preprocess.json: missing"):
        load_bundle(tmp_path)


# --- rocketc predict ----------------------------------------------------------------------
def test_predict_equals_light_net_on_raw_rows_and_unseen_categories(ctr_run, tmp_path):
    rows = candidate_rows()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(
        cli,
        ["predict", str(ctr_run), "--data", str(tmp_path / "rows.csv"), "-o",
         str(tmp_path / "scores.parquet"), "--keep", "clicked", "--keep", "user"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "54 of 54 rows scored" in result.stdout
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(scores.columns) == ["row", "clicked", "user", "score"]
    assert scores["row"].tolist() == list(range(1, 55))
    assert scores["user"].tolist() == rows["user"].tolist()
    np.testing.assert_allclose(scores["score"], reference_scores(ctr_run, rows), atol=1e-6)


def test_predict_parquet_in_small_chunks_equals_csv(ctr_run, tmp_path):
    rows = candidate_rows()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet")
    predict_file(ctr_run, tmp_path / "rows.csv", tmp_path / "a.csv")
    predict_file(ctr_run, tmp_path / "rows.parquet", tmp_path / "b.parquet", chunk_rows=7)
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_parquet(tmp_path / "b.parquet")
    assert a["row"].tolist() == b["row"].tolist() == list(range(1, len(rows) + 1))
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-12)


def bad_rows(path):
    rows = candidate_rows().iloc[:6].astype({"user": object, "price": object})
    rows.loc[2, "user"] = "abc"
    rows.loc[4, "price"] = None
    rows.loc[4, "user"] = 1.5
    rows.to_csv(path, index=False)


def test_predict_lists_bad_rows_with_line_and_column(ctr_run, tmp_path):
    bad_rows(tmp_path / "rows.csv")
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        cli, ["predict", str(ctr_run), "--data", str(tmp_path / "rows.csv"), "-o", str(out)]
    )
    assert result.exit_code == 1
    rows = str(tmp_path / "rows.csv")
    assert f"{rows}:4:1: user: expected a whole number, got 'abc'" in result.stderr
    assert f"{rows}:6:1: user: expected a whole number, got 1.5" in result.stderr
    assert f"{rows}:6:4: price: is missing" in result.stderr
    # One count, in one wording, as the last line (it used to say "3 problem(s)" first and
    # "4 errors" last, counting itself).
    lines = result.stderr.splitlines()
    assert len(lines) == 4 and lines[-1].startswith(f"{rows}: 3 problems in 2 rows; nothing was")
    assert "errors" not in result.stderr and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "rows.csv"]


def test_predict_counts_every_problem_and_lists_the_first(ctr_run, tmp_path):
    rows = candidate_rows().astype({"user": object})
    rows.loc[:29, "user"] = "abc"
    rows.loc[3, "price"] = None
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(
        cli, ["predict", str(ctr_run), "--data", str(tmp_path / "rows.csv"), "--chunk-rows", "8"]
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 21 and lines[-1] == (
        f"{tmp_path / 'rows.csv'}: 31 problems in 30 rows (the first 20 above); nothing was "
        "written (--on-error skip scores the other rows and writes every problem to a rejects "
        "file)"
    )


def test_predict_skip_rejects_rows_into_a_file(ctr_run, tmp_path):
    bad_rows(tmp_path / "rows.csv")
    result = CliRunner().invoke(
        cli,
        ["predict", str(ctr_run), "--data", str(tmp_path / "rows.csv"), "-o",
         str(tmp_path / "scores.csv"), "--on-error", "skip"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 of 6 rows scored" in result.stdout
    assert "rejected 2 rows (3 problems)" in result.stdout
    assert pd.read_csv(tmp_path / "scores.csv")["row"].tolist() == [1, 2, 4, 6]
    rejects = pd.read_csv(tmp_path / "scores.rejects.csv")
    assert rejects["row"].tolist() == [3, 5, 5]
    assert rejects["field"].tolist() == ["user", "price", "user"]


def test_predict_default_chunk_is_sized_by_memory(ctr_run, tmp_path, monkeypatch):
    fields = [Field(f"text_{k}", "str") for k in range(28)]
    fields += [Field(f"number_{k}", "number") for k in range(12)]
    wide = chunk_rows_for(fields)  # a 41-column census-like table: 1.23 GB at 65,536 rows
    assert 20_000 <= wide <= 50_000 and wide * 6_000 <= predict.MEMORY_BUDGET * 1.05
    assert chunk_rows_for([Field("image", "vector", 64)]) == predict.MAX_CHUNK_ROWS
    assert 1_500 <= chunk_rows_for([Field("image", "vector", 3072)]) <= 2_500
    assert chunk_rows_for([Field("image", "vector", 10**6)]) == predict.MIN_CHUNK_ROWS
    # The default goes through chunk_rows_for; scores do not depend on the chunk.
    candidate_rows().to_csv(tmp_path / "rows.csv", index=False)
    predict_file(ctr_run, tmp_path / "rows.csv", tmp_path / "one.csv")
    sizes = []
    monkeypatch.setattr(predict, "chunk_rows_for", lambda f, k: sizes.append(len(f)) or 5)
    predict_file(ctr_run, tmp_path / "rows.csv", tmp_path / "many.csv", keep=["user"])
    assert sizes == [len(CTR_FIELDS)]
    one, many = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "many.csv")
    assert many["row"].tolist() == one["row"].tolist() == list(range(1, 55))
    np.testing.assert_allclose(many["score"], one["score"], rtol=1e-12)


def test_bundle_scores_in_blocks_like_one_call(ctr_run, monkeypatch):
    bundle = load_bundle(ctr_run)
    frame = raw_columns(candidate_rows(), list(bundle.preprocess.fields().values()))
    inputs = bundle.preprocess.encode(frame).inputs
    whole = bundle.predict(inputs).probabilities
    monkeypatch.setattr(bundle_module, "SCORE_ROWS", 5)  # 54 rows: 11 onnxruntime calls
    np.testing.assert_array_equal(bundle.predict(inputs).probabilities, whole)


def test_predict_names_missing_columns(ctr_run, tmp_path):
    candidate_rows().drop(columns=["city"]).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(
        Exception, match=r"no column\(s\) \['city'\]; the model reads: user \(int\)"
    ):
        predict_file(ctr_run, tmp_path / "rows.csv", tmp_path / "out.parquet")


def test_predict_quickstart_example_file(quickstart_run, repo_root, tmp_path):
    out = tmp_path / "scores.parquet"
    # FP32 (the run's default is INT8, tests/test_int8.py): equal to PyTorch at 1e-6.
    predict_file(
        quickstart_run, repo_root / "examples/digits.csv", out, keep=["label"], model="fp32"
    )
    scores = pd.read_parquet(out)
    pixels = pd.read_csv(repo_root / "examples/digits.csv").drop(columns="label").to_numpy()
    with torch.inference_mode():
        logits = light_net(quickstart_run)(torch.from_numpy((pixels / 16).astype(np.float32)))
    probs = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(scores[[f"prob_{k}" for k in range(10)]], probs, atol=1e-6)
    assert scores["predicted"].tolist() == probs.argmax(1).tolist()
    assert scores["predicted_class"].tolist() == [str(k) for k in probs.argmax(1)]
    assert scores["label"].dtype.kind == "i"


def test_predict_reads_a_vector_from_columns_or_a_parquet_list_column(quickstart_run, tmp_path):
    frame = pd.read_csv(ROOT / "examples/digits.csv")
    pixels = frame.drop(columns="label").to_numpy()
    pd.DataFrame({"image": list(pixels), "label": frame["label"]}).to_parquet(
        tmp_path / "l.parquet"
    )
    frame.to_parquet(tmp_path / "c.parquet")
    # FP32: the default INT8 net quantizes activations per call, so a row's score depends a
    # little on the rows scored with it (chunks of 6 here, one chunk there).
    fp32 = {"model": "fp32"}
    predict_file(
        quickstart_run, tmp_path / "l.parquet", tmp_path / "a.parquet", chunk_rows=6, **fp32
    )
    predict_file(quickstart_run, tmp_path / "c.parquet", tmp_path / "b.parquet", **fp32)
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)


# --- rocketc serve (in-process) -----------------------------------------------------------
def records(rows: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in r.items()}
        for r in rows[CTR_FIELDS].astype(object).to_dict("records")
    ]


def test_score_rows_columns_and_common_agree_with_light_net(ctr_run, client):
    rows = candidate_rows()
    want = reference_scores(ctr_run, rows)
    response = client.post("/v1/score", json={"rows": records(rows)})
    assert response.status_code == 200, response.text
    assert response.json()["n"] == len(rows)
    np.testing.assert_allclose(response.json()["scores"], want, atol=1e-6)
    assert [t.split(";")[0] for t in response.headers["server-timing"].split(", ")] == [
        "parse",
        "preprocess",
        "model",
    ]
    columns = {k: [r[k] for r in records(rows)] for k in CTR_FIELDS}
    response = client.post("/v1/score", json={"columns": columns})
    np.testing.assert_allclose(response.json()["scores"], want, atol=1e-6)
    # One user, many candidate items: the user's fields once, in `common`.
    same_user = rows.iloc[:10].assign(user=7, age=30)
    body = {
        "common": {"user": 7, "age": 30},
        "rows": [{k: r[k] for k in ("item", "city", "price")} for r in records(same_user)],
    }
    response = client.post("/v1/score", json=body)
    np.testing.assert_allclose(
        response.json()["scores"], reference_scores(ctr_run, same_user), atol=1e-6
    )


def test_score_multiclass_quickstart(quickstart_run, repo_root):
    client = TestClient(create_app(load_bundle(quickstart_run, model="fp32")))
    body = json.loads((repo_root / "examples/digits_request.json").read_text())
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    pixels = np.array([r["image"] for r in body["rows"]], dtype=np.float32) / 16
    with torch.inference_mode():
        logits = light_net(quickstart_run)(torch.from_numpy(pixels)).double()
    np.testing.assert_allclose(got["probabilities"], torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert got["predicted"] == logits.argmax(1).tolist()
    assert got["predicted_class"] == [str(k) for k in got["predicted"]]


def problems(response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(p["at"], p["message"]) for p in response.json()["problems"]]


def test_malformed_requests_name_the_field_and_the_row(client):
    good = records(candidate_rows().iloc[:3])
    rows = [dict(good[0], user="abc"), {k: v for k, v in good[1].items() if k != "item"}, good[2]]
    rows[2]["price"] = True
    assert problems(client.post("/v1/score", json={"rows": rows})) == [
        ("rows[0].user", "expected a whole number, got 'abc'"),
        ("rows[1].item", "is missing (no such key in the row or common)"),
        ("rows[2].price", "expected a number, got true"),
    ]
    columns = {k: [r[k] for r in good] for k in CTR_FIELDS}
    columns["age"] = columns["age"][:2]
    assert problems(client.post("/v1/score", json={"columns": columns})) == [
        ("columns.age", "has 2 values; other columns have 3")
    ]
    columns = {k: [r[k] for r in good] for k in CTR_FIELDS} | {"price": [1.0, None, 2.0]}
    assert problems(client.post("/v1/score", json={"columns": columns})) == [
        ("columns.price[1]", "is missing")
    ]
    for body in ([1, 2], {"rows": good, "columns": {}}, {"rows": [1]}, {"rows": good, "x": 1}):
        response = client.post("/v1/score", json=body)
        assert response.status_code == 422 and "error" in response.json()
    huge = {"rows": [dict(good[0], user=2**70, price=float("inf"))]}  # JSON allows both
    body = json.dumps(huge).encode()  # Python writes inf as Infinity, which json.loads reads
    assert problems(client.post("/v1/score", content=body)) == [
        ("rows[0].price", "is not a finite number"),
        ("rows[0].user", "1180591620717411303424 does not fit in 64 bits"),
    ]
    response = client.post("/v1/score", content=b"{'rows': }")
    assert response.status_code == 400 and "not JSON" in response.json()["error"]


def as_text(records_: list[dict]) -> list[dict]:
    """Every number as the text a CSV reader gives (`"30"`, `"10.52..."`), None kept."""
    return [{k: v if v is None or isinstance(v, str) else repr(v) for k, v in r.items()}
            for r in records_]  # fmt: skip


def test_numbers_sent_as_text_score_as_numbers_in_serve_and_predict(ctr_run, client, tmp_path):
    rows = candidate_rows()
    numbers = client.post("/v1/score", json={"rows": records(rows)}).json()["scores"]
    text = as_text(records(rows))
    text[0]["age"] = f"  {text[0]['age']} "  # spaces around, as a hand-written CSV may have
    text[1]["price"] = f"{rows['price'][1]:.17e}"  # exponent notation, every digit kept
    assert isinstance(text[2]["user"], str) and isinstance(text[2]["price"], str)
    response = client.post("/v1/score", json={"rows": text})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(response.json()["scores"], numbers)
    columns = {k: [r[k] for r in text] for k in CTR_FIELDS}
    np.testing.assert_array_equal(
        client.post("/v1/score", json={"columns": columns}).json()["scores"], numbers
    )
    # predict: the same rows from a CSV, and from a Parquet file whose columns are all text
    # (what a table read as strings and saved gives): the one rule again.
    rows.to_csv(tmp_path / "rows.csv", index=False)
    pd.DataFrame(text).to_parquet(tmp_path / "text.parquet")
    for name in ("rows.csv", "text.parquet"):
        predict_file(ctr_run, tmp_path / name, tmp_path / "out.parquet")
        scores = pd.read_parquet(tmp_path / "out.parquet")["score"]
        np.testing.assert_allclose(scores, numbers, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(numbers, reference_scores(ctr_run, rows), atol=1e-6)


def test_numeric_text_rule():
    cases = {"30": 30, " -7 ": -7, "+1.5e3": 1500.0, ".5": 0.5, "5.": 5.0, "": None, "  ": None,
             "9007199254740993": 9007199254740993, "abc": "abc", "1,000": "1,000",
             "1_000": "1_000", "0x10": "0x10", "3 4": "3 4"}  # fmt: skip
    for text, want in cases.items():
        got = number_from_text(text)
        assert got == want and type(got) is type(want), text
    assert number_from_text("inf") == float("inf") and number_from_text("NaN") != 0


def test_text_that_is_no_finite_float32_is_a_problem_not_a_silent_nan(ctr_run, client, tmp_path):
    good = records(candidate_rows().iloc[:1])[0]
    cases = [
        ("1e40", "is out of range"),  # finite in float64, infinite as the model's float32
        (1e40, "is out of range"),
        ("inf", "is not a finite number"),
        ("-Infinity", "is not a finite number"),
        ("nan", "is missing"),
        ("ten", "expected a number, got 'ten'"),
    ]
    rows = [dict(good, price=value) for value, _ in cases] + [dict(good, user="12.0")]
    got = problems(client.post("/v1/score", json={"rows": rows}))
    assert [at for at, _ in got] == [f"rows[{r}].price" for r in range(len(cases))]
    for (_, message), (value, want) in zip(got, cases, strict=True):
        assert want in message, (value, message)
    assert "1e+40 is out of range" in got[0][1] and "float32" in got[0][1]
    # predict finds the same problems in a CSV: its line, its column, nothing written
    pd.DataFrame(rows[:1] + rows[2:]).to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(
        cli, ["predict", str(ctr_run), "--data", str(tmp_path / "rows.csv")]
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'rows.csv'}:2:4: price: 1e+40 is out of range" in result.stderr
    assert "5 problems in 5 rows" in result.stderr.splitlines()[-1]


def test_unseen_categories_score_as_id_0(client, ctr_run):
    row = records(candidate_rows().iloc[:1])[0]
    unseen = [dict(row, user=12345), dict(row, user=None), dict(row, city="atlantis")]
    scores = client.post("/v1/score", json={"rows": unseen}).json()["scores"]
    frame = pd.DataFrame(unseen)
    np.testing.assert_allclose(scores, reference_scores(ctr_run, frame), atol=1e-6)


def test_request_size_is_bounded(ctr_run):
    client = TestClient(create_app(load_bundle(ctr_run), Limits(max_rows=5, max_body_bytes=900)))
    rows = records(candidate_rows().iloc[:6])
    response = client.post("/v1/score", json={"rows": rows[:6]})
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert client.post("/v1/score", json={"rows": rows[:5]}).status_code == 200
    big = json.dumps({"rows": rows[:5], "pad": "x" * 1000}).encode()
    response = client.post("/v1/score", content=big)
    assert response.status_code == 413 and "900" in response.json()["error"]

    def chunks():  # no content-length: the limit holds while streaming
        yield big[:500]
        yield big[500:]

    assert client.post("/v1/score", content=chunks()).status_code == 413


def test_errors_never_leak_a_traceback(ctr_run, monkeypatch):
    bundle = load_bundle(ctr_run)
    client = TestClient(create_app(bundle), raise_server_exceptions=False)

    def broken(inputs):
        raise RuntimeError("secret internals at /srv/model")

    monkeypatch.setattr(bundle, "predict", broken)
    response = client.post("/v1/score", json={"rows": records(candidate_rows().iloc[:1])})
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_health_metadata_and_unknown_routes(client):
    assert client.get("/healthz").json() == {"status": "ok", "model": "ctr_serving"}
    meta = client.get("/v1/metadata").json()
    assert meta["fields"]["city"] == "str" and meta["label"]["task"] == "binary"
    assert set(meta["test"]["light"]) >= {"auc", "logloss"}  # from report.json
    assert meta["versions"]["onnx_opset"] >= 17
    city = next(i for i in meta["inputs"] if i["input"] == "city")
    assert city["vocabulary"] == "4 values (see preprocess.json)"
    assert client.get("/nope").json() == {"error": "Not Found"}
    response = client.get("/v1/score")
    assert response.status_code == 405 and "error" in response.json()


# --- in a terminal ------------------------------------------------------------------------
def test_predict_in_a_terminal_draws_its_progress_bar(ctr_run, tmp_path):
    """Under a pipe rich draws nothing; a terminal is where its bar can crash (issue 19)."""
    candidate_rows().to_csv(tmp_path / "rows.csv", index=False)
    code, text = run_in_pty(
        [*ROCKETC, "predict", ctr_run, "--data", "rows.csv", "-o", "scores.csv"], tmp_path, 120
    )
    assert code == 0, text
    assert "Traceback" not in text and BAR in text and "scoring rows.csv" in plain(text)
    assert "wrote scores.csv: 54 of 54 rows scored" in plain(text)
    assert len(pd.read_csv(tmp_path / "scores.csv")) == 54


def test_serve_refuses_a_busy_port_before_it_starts(ctr_run):
    with socket.socket() as holder:  # another server, on loopback
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", str(ctr_run), "--port", str(port), "--stop-after", "5"]
        )
    assert result.exit_code == 2, result.output  # a usage error, as any bad option value
    message = " ".join(line.strip("│ ") for line in result.stderr.splitlines())
    assert f"Invalid value for --port: 127.0.0.1:{port} is in use by another process" in message
    assert "serving" not in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["serve", str(ctr_run), "--host", "no-such-host.invalid"])
    assert result.exit_code == 2 and "--host" in result.stderr and "serving" not in result.output


# --- the README's example files -----------------------------------------------------------
def test_examples_are_quickstart_test_rows(repo_root):
    """examples/ holds raw rows of the quickstart's test split (never trained on).

    Refresh after a change to the digits split: ROCKETC_UPDATE_GOLDEN=1 pytest tests/test_serving.py
    """
    import os

    from rocketc.compiler import compile_file
    from rocketc.data import load_data

    test = load_data(compile_file(repo_root / "specs/quickstart.yaml").spec).test
    pixels = test.raw["image"][:20].astype(np.int64)  # intensities 0..16, whole numbers
    frame = pd.DataFrame(pixels, columns=[f"image_{k}" for k in range(64)])
    frame["label"] = test.target[:20]
    csv = frame.to_csv(index=False)
    request = json.dumps({"rows": [{"image": p.tolist()} for p in pixels[:2]]}) + "\n"
    paths = {
        repo_root / "examples/digits.csv": csv,
        repo_root / "examples/digits_request.json": request,
    }
    if os.environ.get("ROCKETC_UPDATE_GOLDEN"):
        for path, text in paths.items():
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    for path, text in paths.items():
        assert path.read_text() == text, f"{path} is stale; see this test's docstring"
