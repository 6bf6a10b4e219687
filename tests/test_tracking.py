"""Experiment tracking read back: TensorBoard event files and an MLflow store (on disk, no
network) for `train`, `tune` (a nested run per trial, the verdict on the parent), `ablate`,
under `--nproc 2` (rank 0 alone logs), and the one-line error without the optional package."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rocketc.cli import app
from tests.helpers.tiny_runs import write_tiny

tensorboard = pytest.importorskip("tensorboard", reason="pip install 'rocketc[track]'")
mlflow = pytest.importorskip("mlflow", reason="pip install 'rocketc[track]'")

ROOT = Path(__file__).resolve().parents[1]


def events(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def invoke(*args: str):
    result = CliRunner().invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    return result


def test_train_writes_tensorboard_events_for_every_epoch_and_the_result(tmp_path):
    spec = write_tiny(tmp_path)
    run = tmp_path / "run"
    invoke("train", str(spec), "-o", str(run), "--track", "tensorboard")
    acc = events(run / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    for key in ("train/total", "train/light", "train/hint", "lr", "val/light/accuracy"):
        assert key in scalars, sorted(scalars)
    assert {"val/booster/accuracy", "test/light/accuracy", "shipped_epoch"} <= scalars
    assert [e.step for e in acc.Scalars("val/light/accuracy")] == [1, 2]  # both epochs
    assert set(acc.Tags()["images"]) == {"diagram", "curves"}
    assert "spec/text_summary" in acc.Tags()["tensors"]


def _runs(store: Path, experiment: str):
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[experiment])


def test_train_logs_an_mlflow_run_with_params_metrics_tags_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default store: mlruns/ in the working directory
    spec = write_tiny(tmp_path)
    invoke("train", str(spec), "-o", str(tmp_path / "run"), "--track", "mlflow")
    runs = _runs(tmp_path / "mlruns", "tiny")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED"
    assert run["params.loss.hint.weight"] == "1.0"  # the spec, flattened
    assert run["params.layers.light_logits.out_features"] == "3"
    assert run["tags.rocketc.version"] and run["tags.rocketc.data_sha256"]
    assert run["metrics.shipped_epoch"] in (1, 2)
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run["run_id"], "val/light/accuracy")
    assert [m.step for m in history] == [1, 2]
    files = {a.path for a in client.list_artifacts(run["run_id"])}
    assert {"report.md", "curves.png", "audit.json", "light.onnx", "preprocess.json"} <= files


def test_tune_logs_each_trial_as_a_nested_run_and_the_verdict_on_the_parent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a given store's artifacts in ./mlruns
    spec = write_tiny(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["tune", str(spec), "--trials", "3", "--seeds", "1", "--epochs", "2"]
    args += ["--verdict-seeds", "2", "-o", str(tmp_path / "tune"), "--track", "mlflow"]
    invoke(*args, "--set", f"train.track_uri={uri}")
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    parent = runs[runs["tags.mlflow.runName"] == "tune"]
    assert len(parent) == 1
    parent_id = parent.iloc[0]["run_id"]
    trials = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    assert sorted(trials["tags.mlflow.runName"]) == ["trial 0", "trial 1", "trial 2"]
    assert trials["metrics.objective"].notna().sum() >= 1
    assert "metrics.seed0/val/light/accuracy" in trials.columns
    assert not parent[["metrics.verdict/mean", "metrics.verdict/low"]].isna().any(axis=None)


def test_ablate_logs_a_nested_run_per_training(tmp_path):
    spec = write_tiny(tmp_path)
    out = tmp_path / "ablation"
    args = ["ablate", str(spec), "--seeds", "1", "--variant", "light_alone"]
    invoke(*args, "--variant", "rocket", "-o", str(out), "--track", "tensorboard")
    nested = sorted(p.name for p in (out / "tensorboard").iterdir() if p.is_dir())
    assert nested == ["light_alone_seed_0", "rocket_seed_0"]
    acc = events(out / "tensorboard" / "rocket_seed_0")
    assert "val/light/accuracy" in acc.Tags()["scalars"]


def test_under_two_processes_only_rank_0_logs(tmp_path):
    spec = write_tiny(tmp_path)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rocketc", "train", str(spec), "--nproc", "2", "-o", str(run)]
    done = subprocess.run(
        [*cmd, "--track", "tensorboard"], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    files = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    assert [e.step for e in events(run / "tensorboard").Scalars("val/light/accuracy")] == [1, 2]


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec

    def no_mlflow(name, *args, **kwargs):
        return None if name == "mlflow" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_mlflow)
    spec = write_tiny(tmp_path)
    args = ["train", str(spec), "-o", str(tmp_path / "run"), "--track", "mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "needs the 'mlflow' package: pip install 'rocketc[track]'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before training


def test_a_store_that_cannot_be_opened_stops_the_run_with_one_line(tmp_path):
    """The back end starts on a thread of its own; its failure reaches the user anyway, as the
    positioned one-line error, before the run is over."""
    spec = write_tiny(tmp_path)
    (tmp_path / "a_file").write_text("not a directory")
    uri = f"sqlite:///{tmp_path / 'a_file' / 'mlflow.db'}"
    args = ["train", str(spec), "-o", str(tmp_path / "run"), "--track", "mlflow"]
    result = CliRunner().invoke(app, [*args, "--set", f"train.track_uri={uri}"])
    assert result.exit_code == 1, result.output
    assert f"train.track_uri {uri}: cannot open the MLflow store" in result.output
    assert "Traceback" not in result.output
