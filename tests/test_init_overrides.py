"""`rocketc init` on what its rules get wrong: per-column overrides and name hints.

A user who disagrees with one decision says so on the command line (`--categorical`, `--dense`,
`--ignore`, `--list`, `--bucket`, each repeatable or comma-separated) instead of editing the
spec, which names each column once; whole numbers named like codes (`industry_code`, 52 codes)
are categorical like their sibling with fewer codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.errors import DataError
from rocketc.init import init_spec


def survey(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "industry_code": rng.integers(1, 53, n),  # 52 codes: over the 50 of plain numbers
            "occupation_code": rng.integers(1, 48, n),
            "age": rng.integers(18, 90, n),
            "wage": rng.normal(20, 5, n).round(2),
            "education": rng.choice(["HS", "BA", "MA", "PhD"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def _roles(result) -> dict[str, str]:
    return {c.name: c.role for c in result.columns}


def test_whole_numbers_named_like_codes_are_categorical(tmp_path):
    path = tmp_path / "t.csv"
    frame = survey().assign(job_type=lambda f: f["age"] * 3, barcode=lambda f: f["age"] * 7)
    frame.to_csv(path, index=False)
    result = init_spec(path, "y", out=tmp_path / "s.yaml")
    roles = _roles(result)
    assert roles["industry_code"] == roles["occupation_code"] == "categorical"
    assert roles["job_type"] == "categorical"  # 72 values, named like a type
    assert roles["age"] == "dense" and roles["barcode"] == "dense"  # 'barcode' is no '_code'
    reasons = {c.name: c.reason for c in result.columns}
    assert reasons["industry_code"] == "whole numbers named like codes: 52 distinct values"
    assert "{name: industry_code, kind: categorical, vocab: 53}" in result.text


def test_many_codes_are_hashed_and_amounts_stay_numbers(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "zip_code": rng.integers(0, 5000, 4000),
            "income": rng.integers(0, 5000, 4000),
            "y": rng.integers(0, 2, 4000),
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    roles = _roles(init_spec(path, "y", out=tmp_path / "s.yaml"))
    assert roles == {"zip_code": "hashed", "income": "dense", "y": "label"}


def test_overrides_replace_the_decision_and_say_so(tmp_path):
    path = tmp_path / "t.csv"
    survey().assign(tags=lambda f: f["education"]).to_csv(path, index=False)
    result = init_spec(
        path,
        "y",
        out=tmp_path / "s.yaml",
        overrides={
            "categorical": ["age"],
            "dense": ["occupation_code"],
            "ignore": ["wage"],
            "list": ["tags"],
        },
    )
    by_name = {c.name: c for c in result.columns}
    assert _roles(result) == {
        "industry_code": "categorical",
        "occupation_code": "dense",
        "age": "categorical",
        "wage": "ignore",
        "education": "categorical",
        "tags": "list",
        "y": "label",
    }
    for name in ("occupation_code", "age", "wage", "tags"):
        assert by_name[name].reason.startswith("you said so (--"), name
    assert by_name["age"].reason == "you said so (--categorical): 72 distinct values"
    text = result.text
    assert "--categorical age --dense occupation_code --ignore wage --list tags" in text
    assert "{name: tags, kind: categorical_list, vocab: 5, max_len: 1}" in text
    assert "#   wage  you said so (--ignore)" in text
    spec = compile_text(text).spec
    assert spec.data.dense_columns() == ["occupation_code"]


def test_override_mistakes_are_named_together(tmp_path):
    path = tmp_path / "t.csv"
    survey().to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        init_spec(
            path,
            "y",
            overrides={"categorical": ["agee", "wage"], "dense": ["y", "wage"], "ignore": ["zz"]},
        )
    text = str(caught.value)
    assert "--categorical agee: no such column; did you mean 'age'?" in text
    assert "--dense y: that is the --label column" in text
    assert "--dense wage: also given as --categorical; pick one" in text
    assert "--ignore zz: no such column; its columns: ['industry_code'" in text
    with pytest.raises(DataError, match="--dense education: the column holds str values like"):
        init_spec(path, "y", overrides={"dense": ["education"]})
    with pytest.raises(DataError, match="--list age: the column holds int64 values"):
        init_spec(path, "y", overrides={"list": ["age"]})


def test_cli_overrides_take_commas_and_repeats(tmp_path):
    path = tmp_path / "t.csv"
    survey().to_csv(path, index=False)
    runner = CliRunner()
    base = ["init", "--data", str(path), "--label", "y", "--dry-run"]
    done = runner.invoke(app, [*base, "--ignore", "wage,age", "--categorical", "industry_code"])
    assert done.exit_code == 0, done.output
    assert "age              ignore" in done.stderr and "you said so (--ignore)" in done.stderr
    assert "--ignore wage,age" in done.stdout
    bad = runner.invoke(app, [*base, "--ignore", "wage", "--ignore", "nope"])
    assert bad.exit_code == 1
    assert "--ignore nope: no such column" in bad.stderr and "Traceback" not in bad.output


def test_bucket_cuts_a_number_into_quantile_ids_and_trains(tmp_path):
    path = tmp_path / "t.csv"
    frame = survey()
    frame.loc[::9, "wage"] = np.nan
    frame.to_csv(path, index=False)
    result = init_spec(path, "y", out=tmp_path / "s.yaml", overrides={"bucket": ["wage", "age"]})
    by_name = {c.name: c for c in result.columns}
    assert by_name["wage"].role == by_name["age"].role == "bucket"
    assert by_name["wage"].reason.startswith("you said so (--bucket): 16 quantile buckets of ")
    assert by_name["wage"].reason.endswith("edges from the train split, 67 missing (id 0)")
    text = result.text
    assert "{name: wage, kind: categorical, vocab: 17}" in text
    assert "    - {column: age, buckets: 16}\n    - {column: wage, buckets: 16}\n" in text
    assert "--bucket wage,age" in text  # rerunning the header's command gives this spec
    data = load_data(compile_text(text).spec)
    assert data.train.inputs["wage"].max() == 16 and (data.train.inputs["wage"] == 0).any()
    with pytest.raises(DataError, match="--bucket education: the column holds str values"):
        init_spec(path, "y", overrides={"bucket": ["education"]})


def test_init_names_each_column_once(tmp_path):
    """No data.categorical list when every input reads the column of its name; a wide table's
    spec is shorter by that list."""
    path = tmp_path / "t.parquet"
    rng = np.random.default_rng(0)
    wide = {f"feature_code_{k:02d}": rng.integers(0, 40, 500) for k in range(30)}
    pd.DataFrame({**wide, "y": rng.integers(0, 2, 500)}).to_parquet(path)
    text = init_spec(path, "y", out=tmp_path / "s.yaml").text
    data_section = text[text.index("\ndata:") :]
    assert "categorical" not in data_section and "feature_code_00" not in data_section
    spec = compile_text(text).spec
    assert spec.data.categorical == [] and len(load_data(spec).train.inputs) == 30
