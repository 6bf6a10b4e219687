"""`rocketc train` on a binary CTR spec from a CSV file: BCE, AUC/GAUC, categorical inputs
through the ONNX export. The data is synthetic but learnable (clicks depend on user x item)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from rich.console import Console

from rocketc.compiler import compile_text
from rocketc.train.run import train_run

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115

SPEC = """\
version: 1
name: ctr_csv
task: binary
inputs:
  - {name: user, kind: categorical, vocab: 64}
  - {name: item, kind: categorical, vocab: 32}
  - {name: numeric, kind: dense, shape: [2]}
layers:
  - {id: user_emb, op: embedding, in: user, dim: 8, role: shared}
  - {id: item_emb, op: embedding, in: item, dim: 8, role: shared}
  - {id: features, op: concat, in: [user_emb, item_emb, numeric], role: shared}
  - {id: light_tower, op: mlp, in: features, units: [16], role: light}
  - {id: light_logit, op: linear, in: light_tower, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [64, 32], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
loss: {hint: {weight: 0.5}, kd: {weight: 0.5, temperature: 2.0}}
train: {epochs: 4, batch_size: 128, optimizer: {name: adam, lr: 0.01}}
data:
  source: csv
  path: PATH
  label: clicked
  group: user
  categorical: [user, item]
  dense: {numeric: [price, age]}
  split_by: ts
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ctr")
    rng = np.random.default_rng(0)
    n = 4000
    user, item = rng.integers(0, 50, n), rng.integers(0, 25, n)
    taste = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 25))  # a low-rank user x item score
    price = rng.normal(10, 3, n)
    p = 1 / (1 + np.exp(-(2 * taste[user, item] - 0.2 * (price - 10))))
    frame = pd.DataFrame(
        {
            "user": user,
            "item": item,
            "price": price,
            "age": rng.integers(18, 70, n),
            "ts": np.arange(n),
            "clicked": (rng.random(n) < p).astype(int),
        }
    )
    path = tmp / "clicks.csv"
    frame.to_csv(path, index=False)
    compiled = compile_text(SPEC.replace("PATH", str(path)), str(tmp / "ctr_csv.yaml"))
    return train_run(compiled, tmp / "run", console=QUIET)


def test_binary_metrics_per_epoch_and_learning(run):
    record = json.loads((run.out_dir / "metrics.jsonl").read_text().splitlines()[-1])
    for net in ("light", "booster"):
        assert set(record["val"][net]) == {"auc", "logloss", "gauc"}
    assert {"light", "booster", "hint", "kd", "total"} == set(record["train_loss"])
    assert run.test["light"]["auc"] > 0.6  # chance is 0.5; the synthetic clicks are learnable
    assert run.test["light"]["gauc"] > 0.55


def test_onnx_export_takes_category_ids(run):
    session = ort.InferenceSession(str(run.out_dir / "light.onnx"))
    feeds = {i.name: i.type for i in session.get_inputs()}
    assert feeds == {"user": "tensor(int64)", "item": "tensor(int64)", "numeric": "tensor(float)"}
    out = session.run(
        None,
        {
            "user": np.array([1, 2, 3]),
            "item": np.array([0, 4, 5]),
            "numeric": np.zeros((3, 2), np.float32),
        },
    )[0]
    assert out.shape == (3, 1)
    report = json.loads((run.out_dir / "report.json").read_text())
    assert set(report["test"]["light"]) == {"auc", "logloss", "gauc"}
    # Embedding lookups are not multiply-accumulates; the towers are.
    assert report["macs_per_example"]["light"] == 18 * 16 + 16
