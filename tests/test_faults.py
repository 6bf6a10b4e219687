"""Fault injection (issue 21, item 7): the disk fills at the k-th write of `rocketc train` (its
checkpoints and its export) and of `rocketc predict`, run as a user runs them, for every k.

For every k: exit 1, one line naming the file and what it needed (never a traceback), no temp
file left, every file still reads, and what was there before is intact: an exported run being
extended keeps its earlier bundle byte for byte (the export writes all its files or none) and
stays servable; predict leaves the earlier scores and rejects files as they were.
`tests/test_files.py` fills the disk at each write of an in-process extension without export
and then resumes it; the faults come from `tests/helpers/faults.py`, shared with it.
"""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rocketc import files
from rocketc.cli import app
from rocketc.serve.bundle import load_bundle
from rocketc.train import report, rundir
from tests.helpers.faults import FullDiskAt, all_files_read, temp_files
from tests.helpers.tiny_runs import write_tiny

BUNDLE = (
    "light.pt2",
    "light.onnx",
    "light.int8.onnx",
    "report.json",
    "report.md",
    "preprocess.json",
)
FULL = "no space left on the device (needs about"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny run trained for 1 epoch and exported by `rocketc train`."""
    base = tmp_path_factory.mktemp("faults")
    spec = write_tiny(base / "spec")
    run = base / "run"
    result = CliRunner().invoke(app, ["train", str(spec), "-o", str(run), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    return spec, run


@pytest.fixture
def onnx_once(monkeypatch):
    """Each net's ONNX export computed once (2.5 s each), then reused: the same weights give
    the same bytes, and what is under test is how they are written."""
    real, cache = report.onnx_bytes, {}

    def cached(net, rows, names, output="light_logits", verify=True):
        weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters()))
        key = (output, weights.hexdigest())
        if key not in cache:
            cache[key] = real(net, rows, names, output, verify)
        return cache[key]

    monkeypatch.setattr(report, "onnx_bytes", cached)


def invoke(args, fault, monkeypatch):
    monkeypatch.setattr(files, "_write_all", fault)
    try:
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        monkeypatch.setattr(files, "_write_all", fault.real)


def one_line(result, k) -> str:
    assert result.exit_code == 1, (k, result.output)
    assert "Traceback" not in result.output, (k, result.output)
    lines = result.stderr.strip().splitlines()  # train's progress, then the error, last
    assert [line for line in lines if FULL in line] == lines[-1:], (k, result.stderr)
    return lines[-1]


def snapshot(run) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in BUNDLE if (run / name).exists()}


def test_a_full_disk_at_any_write_of_train_or_its_export_is_one_line(
    exported, tmp_path, monkeypatch, onnx_once
):
    """`train --resume --epochs 2` of an exported run: run.json, audit, metrics, checkpoints,
    curves, then the export, then run.json again; the disk fills at each of those writes."""
    spec, done = exported
    before = snapshot(done)
    assert "light.int8.onnx" in before  # the INT8 model is part of the bundle kept whole
    extend = ["train", spec, "--epochs", "2", "--resume", "-o"]
    counter = FullDiskAt(None)
    result = invoke([*extend, shutil.copytree(done, tmp_path / "count")], counter, monkeypatch)
    assert result.exit_code == 0, result.output
    writes = counter.calls
    assert writes >= 12  # run.json, audit, metrics x2, checkpoints, curves, 6 export files...
    for k in range(1, writes + 1):
        run = shutil.copytree(done, tmp_path / f"k{k}")
        line = one_line(invoke([*extend, run], FullDiskAt(k), monkeypatch), k)
        assert re.search(r"/\S+: no space left", line), (k, line)  # it names the file
        all_files_read(run)
        if k < writes:  # the export wrote all its files or none: the earlier bundle, whole
            assert snapshot(run) == before, k
        load_bundle(run)  # servable, never a mix of two exports
        # The first write (run.json) changed nothing; after it, --resume finishes the run.
        assert rundir.read_manifest(run)["state"] == ("complete" if k == 1 else "training"), k
    # With room again, the run whose export failed exports (the last of its files, first).
    result = invoke([*extend, tmp_path / f"k{writes - 1}"], FullDiskAt(None), monkeypatch)
    assert result.exit_code == 0, result.output
    assert rundir.read_manifest(tmp_path / f"k{writes - 1}")["state"] == "complete"


@pytest.mark.parametrize("name", ["scores.csv", "scores.parquet"])
def test_a_full_disk_at_any_write_of_predict_keeps_the_old_files(
    exported, tmp_path, monkeypatch, name
):
    """`predict --on-error skip` in chunks of 8 rows, two of them with a bad row: the scores
    and the rejects file are written piece by piece; the disk fills at each piece."""
    _, run = exported
    rng = np.random.default_rng(1)
    rows = pd.DataFrame(rng.normal(size=(40, 4)), columns=[f"feat_{i}" for i in range(4)])
    rows.loc[[3, 20], "feat_2"] = None
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    out, rejects = tmp_path / name, tmp_path / f"{name.split('.')[0]}.rejects.csv"
    args = ["predict", run, "--data", data, "-o", out, "--on-error", "skip", "--chunk-rows", "8"]
    counter = FullDiskAt(None)
    result = invoke(args, counter, monkeypatch)
    assert result.exit_code == 0 and "rejected 2 rows" in result.stdout, result.output
    writes = counter.calls
    assert writes >= 6  # five chunks of scores, two of rejects
    for k in range(1, writes + 1):
        out.write_bytes(b"the scores of an earlier predict\n")
        rejects.write_bytes(b"its rejects\n")
        line = one_line(invoke(args, FullDiskAt(k), monkeypatch), k)
        assert line.startswith((f"{out}: ", f"{rejects}: ")), (k, line)
        assert out.read_bytes() == b"the scores of an earlier predict\n", k
        assert rejects.read_bytes() == b"its rejects\n", k
        assert not temp_files(tmp_path), k
