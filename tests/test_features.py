"""Dense features (`rocketc.data.features.Dense`): standardisation that survives huge values, a
`fill` for missing values and a `log1p` transform, served as trained.

`{column: NAME, transform: log1p, fill: median}` in `data.dense`: a missing value takes the fill
(a number, zero, or the train split's mean or median, fitted once and saved as the number), then
log1p = sign(x) * log(1 + |x|), then the train split's standardisation. preprocess.json carries
all three, so predict and serve prepare a row exactly as training did; a streamed table takes a
number as its fill, and `init` proposes both with its reasons.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.data.dense import Dense
from rocketc.data.preprocess import Preprocessor
from rocketc.errors import DataError, RocketcError, SpecError
from rocketc.init import init_spec

SPEC = """\
version: 1
name: money
task: binary
inputs:
  - {name: job, kind: categorical, vocab: 8}
  - {name: numbers, kind: dense, shape: [3]}
layers:
  - {id: job_emb, op: embedding, in: job, dim: 4, role: shared}
  - {id: features, op: concat, in: [job_emb, numbers], role: shared}
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [8], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
train: {epochs: 1, batch_size: 64}
data:
  source: csv
  path: PATH
  label: y
  categorical: [job]
  dense:
    numbers:
      - age
      - {column: gains, transform: log1p, fill: FILL}
      - {column: hours, fill: 40}
"""


def _table(path, n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gains = np.where(rng.random(n) < 0.7, 0.0, np.round(np.exp(rng.normal(7, 1.5, n)), 2))
    gains[rng.random(n) < 0.1] = np.nan
    hours = rng.integers(10, 60, n).astype(float)
    hours[::17] = np.nan
    frame = pd.DataFrame(
        {
            "job": rng.choice(["a", "b", "c"], n),
            "age": rng.integers(18, 90, n),
            "gains": gains,
            "hours": hours,
            "y": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def _spec(path, fill="median", stream=False):
    text = SPEC.replace("PATH", str(path)).replace("FILL", fill)
    return compile_text(text + f"  stream: {str(stream).lower()}\n").spec


def test_a_fill_and_log1p_are_fitted_on_train_and_applied_in_order(tmp_path):
    frame = _table(tmp_path / "t.csv")
    dataset = load_data(_spec(tmp_path / "t.csv"))
    feature = dataset.preprocess.features[1]
    train = frame.iloc[np.sort(np.random.default_rng(0).permutation(len(frame))[:400])]
    gains = train["gains"].dropna().to_numpy()
    assert feature.fill == {"gains": float(np.median(gains)), "hours": 40}
    assert feature.transform == {"gains": "log1p"}
    # by hand: fill, then sign(x) log(1 + |x|), then the train split's mean and std
    x = np.sign(gains) * np.log1p(np.abs(gains))
    prepared = np.concatenate(
        [x, np.full(train["gains"].isna().sum(), np.log1p(feature.fill["gains"]))]
    )
    np.testing.assert_allclose(feature.mean[1], prepared.mean(), rtol=1e-12)
    np.testing.assert_allclose(feature.std[1], prepared.std(), rtol=1e-12)
    row = {"age": [30, 30, 30], "gains": [None, 0.0, -1000.0], "hours": [None, 40, 1]}
    encoded = feature.encode(row)[0]
    assert encoded[0, 2] == encoded[1, 2]  # a missing `hours` is its fill, 40
    expected = (np.log1p(feature.fill["gains"]) - feature.mean[1]) / feature.std[1]
    np.testing.assert_allclose(encoded[0, 1], expected, rtol=1e-6)
    negative = (-np.log1p(1000.0) - feature.mean[1]) / feature.std[1]
    np.testing.assert_allclose(encoded[2, 1], negative, rtol=1e-6)  # mirrored, no error


def test_preprocess_json_carries_fill_and_transform(tmp_path):
    _table(tmp_path / "t.csv")
    preprocess = load_data(_spec(tmp_path / "t.csv", "mean")).preprocess
    again = Preprocessor.from_dict(json.loads(preprocess.dumps()))
    rows = {"job": ["a", "b"], "age": [20, 70], "gains": [None, 5e4], "hours": [None, 12.0]}
    np.testing.assert_array_equal(
        preprocess.encode(rows).inputs["numbers"], again.encode(rows).inputs["numbers"]
    )
    saved = again.to_dict()["inputs"][1]
    assert saved["transform"] == {"gains": "log1p"} and isinstance(saved["fill"]["gains"], float)
    assert not preprocess.encode(rows).problems
    problems = preprocess.encode({**rows, "age": [None, 3]}).problems
    assert [(p.row, p.field, p.message) for p in problems] == [(0, "age", "is missing")]


def test_a_streamed_table_takes_a_number_and_matches_the_in_memory_fit(tmp_path):
    _table(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"gains: fill: median; give the number"):
        load_data(_spec(tmp_path / "t.csv", "median", stream=True))
    memory = load_data(_spec(tmp_path / "t.csv", "12.5")).preprocess.features[1]
    streamed = load_data(_spec(tmp_path / "t.csv", "12.5", stream=True)).preprocess.features[1]
    assert streamed.fill == memory.fill == {"gains": 12.5, "hours": 40}
    np.testing.assert_allclose(streamed.mean, memory.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.std, memory.std, rtol=1e-12)


def test_a_missing_value_without_fill_is_still_an_error(tmp_path):
    frame = _table(tmp_path / "t.csv")
    frame.loc[3, "age"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="column 'age' has 1 missing values"):
        load_data(_spec(tmp_path / "t.csv"))


def test_a_fill_that_is_no_number_or_rule_is_a_positioned_error(tmp_path):
    text = SPEC.replace("PATH", str(tmp_path / "t.csv")).replace("FILL", "avg")
    with pytest.raises(SpecError) as caught:
        compile_text(text, "money.yaml")
    message = str(caught.value)
    assert "money.yaml:23:" in message and "fill" in message


def test_a_fill_rule_needs_a_train_value(tmp_path):
    feature = Dense("x", (1,), columns=["g"], fill={"g": "median"})
    with pytest.raises(DataError, match="fill: median takes the median .* has none"):
        feature.fit({"g": np.array([np.nan, np.nan])})


def test_init_proposes_log1p_for_a_long_tail_and_a_median_fill(tmp_path):
    _table(tmp_path / "t.csv")
    result = init_spec(tmp_path / "t.csv", "y", out=tmp_path / "s.yaml")
    reasons = {c.name: c.reason for c in result.columns}
    assert "filled with the train median" in reasons["gains"]
    assert "a long tail (skewness" in reasons["gains"] and reasons["gains"].endswith(": log1p")
    assert "log1p" not in reasons["age"]
    assert "- {column: gains, transform: log1p, fill: median}" in result.text
    assert {c.name: c.role for c in result.columns}["hours"] == "categorical"  # 50 codes
    assert load_data(compile_text(result.text).spec).preprocess.features[-1].fill


# --- standardisation of huge finite values ---------------------------------------------------
def test_a_huge_finite_value_no_longer_zeroes_its_column():
    frame = {"a": np.array([1.0, 2.0, 1e300, 3.0]), "b": np.array([1.0, 2.0, 3.0, 4.0])}
    with np.errstate(all="raise"):
        feature = Dense("x", (2,), columns=["a", "b"]).fit(frame)
        x, problems = feature.encode(frame)
    assert not problems and np.isfinite(feature.std).all()
    assert np.unique(x[:, 0]).size == 2  # the outlier stands out; the rest are not zero
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-6)


def test_ordinary_columns_standardise_to_the_same_bits_as_before():
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=50) * 1e-3, rng.normal(size=20000) * 1e9 + 5):
        feature = Dense("x", (1,), columns=["a"]).fit({"a": values})
        assert feature.mean[0] == values.mean() or len(values) > 8192
        np.testing.assert_allclose(feature.std[0], values.std(), rtol=1e-12)


def test_values_beyond_float64_headroom_are_refused_naming_the_column():
    frame = {"a": np.array([1.0, 2.0]), "price": np.array([1.0, 1.7e308])}
    with pytest.raises(RocketcError, match=r"price: values as large as 1\.7e\+308"):
        Dense("x", (2,), columns=["a", "price"]).fit(frame)
