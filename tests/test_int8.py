"""The INT8 light net: light.int8.onnx beside light.onnx, its bill, and which one is served.

One quickstart run (2 epochs, shared with tests/test_serving.py) is trained with its INT8 export;
the tests that change a run work on copies of it and re-quantize with `rocketc export --int8`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from starlette.testclient import TestClient
from typer.testing import CliRunner

from rocketc.cli import app as cli
from rocketc.compiler import compile_file, embedded_spec
from rocketc.errors import BundleError, RocketcError
from rocketc.serve.app import create_app
from rocketc.serve.bundle import load_bundle
from rocketc.train import int8
from rocketc.train.requantize import requantize
from tests.helpers.serving_runs import QUIET, trained_run

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples/digits.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory, "quickstart")


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("run.lock"))
    return to


def report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


def bundle_json(run: Path) -> dict:
    return json.loads((run / "preprocess.json").read_text())


def scores(run: Path, tmp_path: Path, *options: str) -> tuple[pd.DataFrame, str]:
    out = tmp_path / f"scores{'_'.join(options)}.parquet"
    result = CliRunner().invoke(cli, ["predict", str(run), "--data", str(DIGITS), "-o", str(out),
                                      *options])  # fmt: skip
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out), result.stdout


def probabilities(frame: pd.DataFrame) -> np.ndarray:
    return frame[[f"prob_{k}" for k in range(10)]].to_numpy()


def test_int8_scores_within_tolerance_of_fp32_on_real_rows(run, tmp_path):
    """The raw rows of examples/ (quickstart test rows) and the run's whole test split."""
    int8_scores, _ = scores(run, tmp_path, "--model", "int8")
    fp32_scores, _ = scores(run, tmp_path, "--model", "fp32")
    assert np.abs(probabilities(int8_scores) - probabilities(fp32_scores)).max() < 0.05
    agree = (int8_scores["predicted"] == fp32_scores["predicted"]).mean()
    assert agree >= 0.9
    section = report(run)["int8"]
    test = section["test"]
    assert test["metric"] == "accuracy" and test["rows"] == 270
    assert test["difference"] == pytest.approx(test["int8"] - test["fp32"])
    assert abs(test["difference"]) <= 0.02
    assert test["predictions_changed"] <= 0.03 * test["rows"]
    # The bill beside FP32: size on disk and both latencies, measured in the same run.
    assert section["size_bytes"]["int8"] == (run / "light.int8.onnx").stat().st_size
    assert section["size_bytes"]["int8"] < section["size_bytes"]["fp32"]
    for model in ("fp32", "int8"):
        assert set(section["latency_ms"][model]) == {"batch_1", "batch_100"}
    assert section["method"].startswith("static QDQ: MatMul, Gemm")
    markdown = (run / "report.md").read_text()
    assert "## INT8: `light.int8.onnx`" in markdown and "Served by default: **INT8**" in markdown


def test_predict_and_serve_choose_the_model_as_documented(run, tmp_path):
    section = report(run)["int8"]
    assert section["status"] == "default" and section["default"] == "int8"
    assert bundle_json(run)["default_model"] == "int8"
    default, said = scores(run, tmp_path)
    assert "scored by light.int8.onnx" in said
    int8_scores, _ = scores(run, tmp_path, "--model", "int8")
    pd.testing.assert_frame_equal(default, int8_scores)
    _, said = scores(run, tmp_path, "--model", "fp32")
    assert "scored by light.onnx" in said
    for asked, model, file, chosen_by in (
        (None, "int8", "light.int8.onnx", "the bundle's default"),
        ("fp32", "fp32", "light.onnx", "--model"),
        ("int8", "int8", "light.int8.onnx", "--model"),
    ):
        client = TestClient(create_app(load_bundle(run, model=asked)))
        meta = client.get("/v1/metadata").json()
        assert meta["served"] == {
            "model": model,
            "file": file,
            "default": "int8",
            "chosen_by": chosen_by,
        }
        assert meta["model"] == file
        assert meta["int8"]["status"] == "default"


def test_the_bundle_hashes_cover_both_models(run, tmp_path):
    manifest = bundle_json(run)["manifest"]
    for name in ("light.onnx", "light.int8.onnx", "report.json"):
        assert manifest[name] == hashlib.sha256((run / name).read_bytes()).hexdigest()
    assert bundle_json(run)["models"] == {"fp32": "light.onnx", "int8": "light.int8.onnx"}
    copy = tmp_path / "tampered"
    copy.mkdir()
    for name in ("light.onnx", "light.int8.onnx", "preprocess.json", "report.json"):
        shutil.copy(run / name, copy / name)
    with open(copy / "light.int8.onnx", "ab") as f:
        f.write(b"\0")
    for model in (None, "fp32", "int8"):  # every file the manifest lists, whichever is served
        with pytest.raises(BundleError, match=r"light\.int8\.onnx: SHA-256 .* does not match"):
            load_bundle(copy, model=model)
    result = CliRunner().invoke(cli, ["predict", str(copy), "--data", str(DIGITS), "--model",
                                      "fp32"])  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "light.int8.onnx: SHA-256" in lines[0], lines


def test_a_bar_failure_keeps_the_file_and_fp32_as_default(run, tmp_path, monkeypatch):
    copy = copy_run(run, tmp_path / "run")
    measured = int8._paired_test

    def worse(*args, **kwargs):  # INT8 a full point below FP32 on the same rows
        test = measured(*args, **kwargs)
        return {**test, "int8": test["fp32"] - 0.01, "difference": -0.01, "drop": 0.01}

    monkeypatch.setattr(int8, "_paired_test", worse)
    compiled = compile_file(embedded_spec("quickstart"), ["export.int8.max_drop=0.005"])
    section = requantize(compiled, copy, QUIET)
    assert section["status"] == "not_default" and section["default"] == "fp32"
    assert "beyond export.int8.max_drop 0.005" in section["why"]
    assert (copy / "light.int8.onnx").is_file()
    assert report(copy)["int8"] == section
    assert "FP32 stays the default" in (copy / "report.md").read_text()
    assert bundle_json(copy)["default_model"] == "fp32"
    assert load_bundle(copy).served["model"] == "fp32"
    assert load_bundle(copy, model="int8").served["model"] == "int8"  # kept, on request


def test_an_int8_model_that_is_not_faster_is_not_the_default(run, tmp_path):
    """Within the quality bar but above the speed bar (set impossibly low): FP32 is served."""
    copy = copy_run(run, tmp_path / "run")
    sets = ["export.int8.max_drop=1", "export.int8.max_latency_ratio=1e-9"]
    section = requantize(compile_file(embedded_spec("quickstart"), sets), copy, QUIET)
    assert section["status"] == "not_default" and section["default"] == "fp32"
    assert "within export.int8.max_drop 1" in section["why"]
    assert "above export.int8.max_latency_ratio 1e-09" in section["why"]
    assert bundle_json(copy)["default_model"] == "fp32"


def test_failed_quantization_is_one_warning_and_fp32_only(run, tmp_path, monkeypatch):
    copy = copy_run(run, tmp_path / "run")

    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported op: NonMaxSuppression\nmore detail")

    monkeypatch.setattr(int8, "quantize", unsupported)
    result = CliRunner().invoke(cli, ["export", str(copy), "--int8"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "warning: INT8 quantization failed (RuntimeError: Unsupported op: NonMaxSuppression); "
        "serving FP32 only"
    ]
    assert not (copy / "light.int8.onnx").exists()
    section = report(copy)["int8"]
    assert section["status"] == "failed" and section["default"] == "fp32"
    assert "light.int8.onnx" not in report(copy)["files"]
    assert bundle_json(copy)["models"] == {"fp32": "light.onnx"}
    assert load_bundle(copy).served["model"] == "fp32"
    with pytest.raises(BundleError, match="holds no INT8 model"):
        load_bundle(copy, model="int8")
    result = CliRunner().invoke(cli, ["serve", str(copy), "--model", "int8", "--port", "1"])
    assert result.exit_code == 1
    assert "light.int8.onnx: this bundle holds no INT8 model" in result.stderr


def test_export_int8_requantizes_only_the_runs_own_spec(run, tmp_path):
    copy = copy_run(run, tmp_path / "run")
    result = CliRunner().invoke(cli, ["export", str(copy)])
    assert result.exit_code == 2 and "--int8" in result.output
    result = CliRunner().invoke(cli, ["export", str(copy), "--int8", "--set", "train.seed=1"])
    assert result.exit_code == 1
    assert "trained with other settings: train.seed 0 -> 1" in result.stderr
    # The export section is no part of the run's fingerprint: another bar is accepted.
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(copy),
            "--int8",
            "--set",
            "export.int8.max_drop=0.02",
            "--set",
            "export.int8.max_latency_ratio=1000",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "served by default: light.int8.onnx" in result.stdout
    assert "within export.int8.max_drop 0.02" in report(copy)["int8"]["why"]
    load_bundle(copy, model="int8")  # the rewritten manifest holds


def test_int8_off_in_the_spec_writes_no_file(tmp_path):
    compiled = compile_file(embedded_spec("quickstart"), ["export.int8.enabled=false"])
    (tmp_path / "light.int8.onnx").write_bytes(b"stale")
    section = int8.int8_export(compiled.spec, tmp_path, None, Console(file=None))
    assert section == {"status": "off", "default": "fp32", "why": "export.int8.enabled is false"}
    assert not (tmp_path / "light.int8.onnx").exists()


def test_a_full_disk_while_quantizing_is_the_exports_error_not_a_warning(
    run, tmp_path, monkeypatch
):
    """Only onnxruntime's failures become a warning; the run directory's own (a full disk
    under rocketc's atomic writes) stays the one-line error it is everywhere else."""
    copy = copy_run(run, tmp_path / "run")

    def full_disk(fp32, out, calibration):
        out.write_bytes(b"partial")
        raise RocketcError(f"{out}: no space left on the device (needs about 14 kB)")

    monkeypatch.setattr(int8, "quantize", full_disk)
    with pytest.raises(RocketcError, match="no space left"):
        requantize(compile_file(embedded_spec("quickstart")), copy, QUIET)
    assert not (copy / "light.int8.onnx").exists()


def test_a_streamed_test_split_is_scored_block_by_block(tmp_path):
    """A streamed table's test rows are read from the file for both models: the FP32 metric
    of the paired test equals the one training measured with PyTorch on the same rows."""
    from rocketc.compiler import compile_text
    from rocketc.train.run import train_run
    from tests.test_stream import SPEC, table, write

    path = write(tmp_path, table(600), "parquet")
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    compiled = compile_text(text.replace("@STREAM@", "true"))
    result = train_run(compiled, tmp_path / "run", console=QUIET)
    test = result.report["int8"]["test"]
    assert test["metric"] == "gauc" and test["rows"] == 60  # test_fraction 0.1 of 600 rows
    assert test["fp32"] == pytest.approx(result.test["light"]["gauc"], abs=1e-6)
