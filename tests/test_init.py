"""`rocketc init`: each column's decision, a spec that checks, draws and trains as written.

The tables are built to be hostile: a list column (Parquet) or text lists (CSV), high-cardinality
ids, a constant column, an all-missing one, numbers that are really codes, a row key, numbers
with gaps, a name that is no identifier. The shipped `specs/ctr_synthetic.yaml` is what init
writes for `specs/data/ctr_synthetic.parquet`: a golden file of init itself.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from rocketc.backends.viz import to_dot
from rocketc.cli import app
from rocketc.compiler import compile_file, compile_text
from rocketc.compiler.spec import Loss
from rocketc.data import load_data
from rocketc.errors import DataError
from rocketc.init import columns as columns_module
from rocketc.init import init_spec
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle

GENRES = ["drama", "comedy", "horror", "scifi", "noir", "western"]


def hostile(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.integers(1, 6, n).astype(float)
    region[rng.random(n) < 0.1] = np.nan
    income = rng.normal(50_000, 9_000, n)
    income[::7] = np.nan
    return pd.DataFrame(
        {
            "row_id": np.arange(n) + 10_000,
            "user_id": [f"u{k}" for k in rng.integers(0, 150, n)],
            "page": [f"/p/{k}" for k in rng.integers(0, 120, n)],
            "zip": rng.integers(0, 30, n) * 1000 + 75000,
            "region": region,
            "genres": [
                list(rng.choice(GENRES, rng.integers(0, 4), replace=False)) for _ in range(n)
            ],
            "constant": "same",
            "empty": pd.Series([None] * n, dtype=object),
            "bad-name": rng.choice(["a", "b"], n),
            "income": income,
            "price": np.round(rng.gamma(2.0, 10.0, n), 2),
            "premium": rng.random(n) < 0.3,
            "clicked": rng.integers(0, 2, n),
        }
    )


EXPECTED = {
    "row_id": "ignore",  # every value distinct
    "user_id": "hashed",  # named like ids, many values
    "page": "hashed",  # text with more distinct values than CATEGORICAL_MAX (patched to 100)
    "zip": "categorical",  # numbers that are codes
    "region": "categorical",  # codes with gaps: missing is id 0
    "genres": "list",
    "constant": "ignore",
    "empty": "ignore",
    "bad-name": "ignore",  # no identifier
    "income": "dense",  # a number with missing values: filled with the train median
    "price": "dense",
    "premium": "categorical",
    "clicked": "label",
}


@pytest.fixture
def small_categorical_max(monkeypatch):
    monkeypatch.setattr(columns_module, "CATEGORICAL_MAX", 100)


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame = frame.assign(genres=["|".join(g) for g in frame["genres"]])
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_each_column_gets_its_decision_and_a_reason(suffix, tmp_path, small_categorical_max):
    path = _write(hostile(), tmp_path / f"clicks{suffix}")
    result = init_spec(path, "clicked", group="user_id", out=tmp_path / "spec.yaml")
    got = {c.name: c.role for c in result.columns}
    assert got == EXPECTED
    reasons = {c.name: c.reason for c in result.columns}
    assert "row key" in reasons["row_id"] and "constant" in reasons["constant"]
    assert "missing" in reasons["empty"] and "identifier" in reasons["bad-name"]
    assert "codes" in reasons["zip"] and "missing" in reasons["income"]
    held = "text lists split at '|'" if suffix == ".csv" else "a list column"
    assert reasons["genres"].startswith(held)
    by_name = {c.name: c for c in result.columns}
    assert by_name["genres"].max_len == 3 and by_name["genres"].distinct == len(GENRES)
    assert by_name["user_id"].also == ["group"]
    text = result.text
    assert "{name: genres, kind: categorical_list, vocab: 7, max_len: 3}" in text
    assert "{name: zip, kind: categorical, vocab: 31}" in text
    assert "{name: user_id, kind: categorical, hash_buckets: 1024}" in text
    assert "#   constant " in text and "#   bad-name " in text  # the ignored, with reasons
    assert "- {column: income, fill: median}" in text
    assert "- {column: price, transform: log1p}" not in text  # a gamma(2): skewness ~1.4
    assert ("list_delimiter" in text) == (suffix == ".csv")


def test_the_spec_checks_draws_and_trains_as_written(tmp_path, small_categorical_max):
    path = _write(hostile(), tmp_path / "clicks.csv")
    out = tmp_path / "clicks.yaml"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["init", "--data", str(path), "--label", "clicked", "--group", "user_id", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "genres" in result.stderr and "list" in result.stderr  # each decision printed
    compiled = compile_file(out)
    assert compiled.spec.task == "binary"
    assert "field embeddings" in to_dot(compiled)
    runs = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(out), "-o", str(runs), "--epochs", "1"])
    assert trained.exit_code == 0, trained.output
    assert (runs / "light.onnx").is_file() and (runs / "preprocess.json").is_file()

    # predict and serve take the new kinds from raw rows: text lists in CSV, JSON lists in
    # requests, hashed ids as they come; both give the same scores.
    scores = tmp_path / "scores.csv"
    predicted = runner.invoke(app, ["predict", str(runs), "--data", str(path), "-o", str(scores)])
    assert predicted.exit_code == 0, predicted.output
    want = pd.read_csv(scores)["score"].to_numpy()[:20]
    client = TestClient(create_app(load_bundle(runs)))
    rows = [
        {k: (None if not isinstance(v, list) and pd.isna(v) else v) for k, v in row.items()}
        for row in hostile().iloc[:20].astype({"premium": int}).astype(object).to_dict("records")
    ]  # a bool column trains as 0/1 ids (field type int), as in CSV
    response = client.post("/v1/score", json={"rows": rows})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["scores"], want, atol=1e-6)
    rows[3]["genres"] = {"not": "a list"}
    response = client.post("/v1/score", json={"rows": rows})
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "genres"


def test_vocabularies_count_the_whole_file_when_the_sample_is_smaller(tmp_path):
    frame = hostile(1000)
    frame.loc[900:, "zip"] = 1  # a code the first 200 rows never show
    path = _write(frame, tmp_path / "clicks.parquet")
    result = init_spec(path, "clicked", out=tmp_path / "s.yaml", sample_rows=200)
    assert result.rows_read == 200 and result.total_rows == 1000
    assert "{name: zip, kind: categorical, vocab: 32}" in result.text  # 30 codes + 1 + id 0
    assert "Read the first 200 rows" in result.text
    assert "counted over all 1,000 rows" in result.text
    spec = compile_text(result.text).spec
    assert load_data(spec).train.inputs["zip"].max() <= 31  # the loader agrees


def test_layer_ids_step_aside_for_column_names(tmp_path):
    frame = hostile(300).rename(columns={"zip": "fields", "price": "features"})
    path = _write(frame, tmp_path / "t.parquet")
    text = init_spec(path, "clicked", out=tmp_path / "s.yaml").text
    assert "  - id: fields_\n" in text and "{id: features_, op: concat" in text
    compile_text(text)


def test_multiclass_labels_and_label_mistakes(tmp_path):
    frame = hostile(300).assign(clicked=lambda f: f["zip"] // 1000 % 4)
    path = _write(frame.drop(columns=["zip"]), tmp_path / "t.parquet")
    text = init_spec(path, "clicked", out=tmp_path / "s.yaml").text
    assert "task: multiclass\nnum_classes: 4" in text
    assert "out_features: 4" in text
    with pytest.raises(DataError, match=r"no column for --label nope, --group who"):
        init_spec(path, "nope", group="who")
    _write(hostile(300).assign(clicked="yes"), tmp_path / "s.parquet")
    with pytest.raises(DataError, match="labels are 0/1"):
        init_spec(tmp_path / "s.parquet", "clicked")


def test_cli_dry_run_prints_and_refuses_to_overwrite(tmp_path):
    path = _write(hostile(200), tmp_path / "t.parquet")
    out = tmp_path / "exists.yaml"
    out.write_text("mine")
    runner = CliRunner()
    args = ["init", "--data", str(path), "--label", "clicked", "-o", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "exists; pass --force" in refused.stderr
    assert out.read_text() == "mine"
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and dry.stdout.startswith("# t: Rocket Launching twins")
    assert out.read_text() == "mine"
    bad = runner.invoke(app, ["init", "--data", str(path), "--label", "nope", "--dry-run"])
    assert bad.exit_code == 1 and "no column for --label nope" in bad.stderr
    assert "Traceback" not in bad.output


def test_init_writes_the_default_loss_and_says_why(tmp_path):
    """The loss init writes is rocketc's default, the probability hint (issue 19), and its comment
    gives the evidence and the one setting that makes it the paper's logit hint."""
    path = _write(hostile(200), tmp_path / "t.parquet")
    text = init_spec(path, "clicked", out=tmp_path / "s.yaml").text
    loss = _loss_section(text)
    assert "  hint: {weight: 1.0, on: probs, reduction: mean}\n" in loss
    assert "BENCHMARKS.md" in loss and "never worse" in loss
    assert "The paper's recipe is one" in loss and "(--set loss.hint.on=logits)" in loss
    assert compile_text(text).spec.loss == Loss()
    paper = compile_text(text.replace("on: probs", "on: logits")).spec.loss
    assert paper == Loss.model_validate({"hint": {"on": "logits"}})


def test_init_writes_the_shipped_ctr_synthetic_spec(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    result = init_spec(
        "specs/data/ctr_synthetic.parquet",
        "click",
        group="user_id",
        weight="weight",
        name="ctr_synthetic",
        out="specs/ctr_synthetic.yaml",
    )
    shipped = (repo_root / "specs" / "ctr_synthetic.yaml").read_text(encoding="utf-8")
    # Its loss section is the one place the shipped spec departs from init: it came from
    # `rocketc tune` on this table (issue 8: shipped recipes from evidence), and says so.
    tuned = _loss_section(shipped)
    assert "rocketc tune" in tuned and "gradient_block:" in tuned
    written = result.text.replace(_loss_section(result.text), tuned)
    assert written == shipped, "rerun the command in the spec's header to refresh it"


def _loss_section(text: str) -> str:
    """The `loss:` block of a spec's text: from its line to the blank line that ends it."""
    start = text.index("\nloss:") + 1
    return text[start : text.index("\n\n", start)]


def test_the_shipped_table_is_what_its_generator_makes(repo_root):
    where = repo_root / "specs" / "data" / "make_ctr_synthetic.py"
    module_spec = importlib.util.spec_from_file_location("make_ctr_synthetic", where)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    made = module.make_table()
    shipped = pd.read_parquet(repo_root / "specs" / "data" / "ctr_synthetic.parquet")
    assert list(made.columns) == list(shipped.columns) and len(made) == len(shipped) == 20_000
    for column in made.columns:
        a, b = made[column].tolist(), shipped[column].tolist()
        if column == "genres":
            b = [list(v) for v in b]
        assert a == b or column == "promo", column


# --- --booster: an interaction layer beside the booster's deep tower (issue 23) --------------
INTERACTION_OP = {"mlp": None, "dcn": "cross", "deepfm": "fm", "autoint": "self_attention"}


@pytest.mark.parametrize("booster", list(INTERACTION_OP))
def test_each_booster_compiles_and_trains_one_epoch(booster, tmp_path, small_categorical_max):
    path = _write(hostile(300), tmp_path / "clicks.csv")
    out = tmp_path / "clicks.yaml"
    runner = CliRunner()
    argv = ["init", "--data", str(path), "--label", "clicked", "--group", "user_id", "-o", str(out)]
    result = runner.invoke(app, [*argv, "--booster", booster])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    compiled = compile_file(out)
    ops = {layer.op: layer for layer in compiled.spec.layers}
    op = INTERACTION_OP[booster]
    if op is None:
        assert "--booster" not in text and "# Booster:" not in text
        assert not {"cross", "fm", "self_attention", "flatten"} & set(ops)
    else:
        assert f"--booster {booster}" in text  # rerunning the header's command gives this spec
        assert "# Booster: " in text and ops[op].role == "booster"
        head = next(la for la in compiled.spec.layers if la.id == "booster_logit")
        assert head.in_ == ["booster_both"]
    stacked = booster in ("deepfm", "autoint")
    assert next(la for la in compiled.spec.layers if la.op == "field_embeddings").stack == stacked
    # The light net is the same whichever booster: the towers read the same features.
    light = compile_text(init_spec(path, "clicked", group="user_id", out=out).text)
    assert _light_layers(compiled) == _light_layers(light)
    runs = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(out), "-o", str(runs), "--epochs", "1"])
    assert trained.exit_code == 0, trained.output
    assert (runs / "light.onnx").is_file()


def _light_layers(compiled) -> list[tuple[str, str]]:
    return [la.model_dump() for la in compiled.spec.layers if la.role == "light"]


def test_booster_choices_and_a_table_without_fields(tmp_path):
    from rocketc.cli.training_commands import Booster
    from rocketc.init.render import BOOSTERS

    assert [b.value for b in Booster] == list(BOOSTERS)
    x = np.round(np.random.default_rng(0).normal(size=200), 1)
    numbers = pd.DataFrame({"x": x, "z": x**2 + 0.5, "y": np.arange(200) % 2})
    path = tmp_path / "numbers.csv"
    numbers.to_csv(path, index=False)
    for booster in ("deepfm", "autoint"):
        with pytest.raises(DataError, match=f"--booster {booster} works across embedded fields"):
            init_spec(path, "y", out=tmp_path / "s.yaml", booster=booster)
    assert "op: cross" in init_spec(path, "y", out=tmp_path / "s.yaml", booster="dcn").text
    bad = CliRunner().invoke(
        app, ["init", "--data", str(path), "--label", "y", "--booster", "xgb", "--dry-run"]
    )
    assert bad.exit_code == 2
