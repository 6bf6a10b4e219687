"""Every user-caused failure on the command line: one line naming the thing and what to do.

Each case used to end in a Python traceback (or click's bare "Aborted!"). Now: exit code 1 (2
for usage errors), the last line of stderr names the file, directory or spec position at fault,
and no traceback anywhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file
from rocketc.train import rundir
from rocketc.train.run import train_run
from tests.helpers.tiny_runs import write_tiny

QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (lives for the session)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("cli-tiny"))


@pytest.fixture(scope="module")
def run(tiny, tmp_path_factory) -> Path:
    """A finished (not exported) run of the tiny spec."""
    out = tmp_path_factory.mktemp("cli-run") / "run"
    train_run(compile_file(tiny), out, console=QUIET, launch=False)
    return out


def fails(args: list[str], *expected: str, code: int = 1) -> str:
    """Invoke rocketc; the exit code and the last stderr line (holding `expected`) are checked."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    output = result.output + result.stderr
    assert result.exit_code == code, output
    assert "Traceback" not in output and "Aborted" not in output, output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    last = result.stderr.strip().splitlines()[-1]
    for text in expected:
        assert text in (last if code == 1 else result.stderr), output
    return last


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a directory")
    return path


# --- I/O: a path in the way, no permission ---------------------------------------------------
def test_train_into_a_path_under_a_file(tiny, a_file):
    fails(["train", tiny, "-o", a_file / "run"], f"{a_file / 'run'}: cannot create the run")


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a directory nobody may write to")
def test_train_into_an_unwritable_directory(tiny):
    line = fails(["train", tiny, "-o", "/sys/rocketc-test-run"], "/sys/rocketc-test-run:")
    assert "choose a place you can write to" in line


def test_compile_schema_viz_ablate_under_a_file(tiny, a_file):
    fails(["compile", tiny, "-o", a_file / "gen"], "a part of the path is a file")
    fails(["schema", "-o", a_file / "schema.json"], f"{a_file / 'schema.json'}: a part")
    fails(["viz", tiny, "-o", a_file / "x.dot"], "a part of the path is a file")
    fails(["ablate", tiny, "--seeds", "1", "-o", a_file / "abl"], "a part of the path is a file")


# --- data files ------------------------------------------------------------------------------
def _spec_reading(tiny: Path, data: Path, tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(tiny.read_text().replace(str(tiny.with_suffix(".npz")), str(data)))
    return spec


def test_a_npy_where_a_npz_is_expected(tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 4), np.float32))
    spec = _spec_reading(tiny, tmp_path / "x.npy", tmp_path)
    fails(["train", spec, "-o", tmp_path / "r"], "x.npy: one .npy array, not a .npz archive")


def test_an_empty_npz(tiny, tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    spec = _spec_reading(tiny, tmp_path / "empty.npz", tmp_path)
    fails(["train", spec, "-o", tmp_path / "r"], "empty.npz: the file is empty")


def test_labels_of_the_wrong_rank(tmp_path):
    y = np.zeros((120, 3), np.int64)  # one-hot instead of class indices
    y[:, 0] = 1
    spec = write_tiny(tmp_path, labels=y)
    fails(["train", spec, "-o", tmp_path / "r"], "labels have shape (N, 3); expected (N,)")


# --- numbers out of range ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_out_of_range_seed_is_a_usage_error(tiny, tmp_path, seed):
    fails(["train", tiny, "--seed", seed, "-o", tmp_path / "r"], "--seed", code=2)


def test_out_of_range_seed_in_the_spec(tiny, tmp_path):
    fails(["train", tiny, "--set", "train.seed=-3", "-o", tmp_path / "r"], "train.seed")


def test_absurd_layer_sizes_are_refused_before_allocating(tmp_path):
    spec = write_tiny(tmp_path, booster_width=10**12)
    line = fails(["train", spec, "-o", tmp_path / "r"], f"{spec}:10:5:", "layer 'b' alone holds")
    assert "make it smaller" in line and not (tmp_path / "r").exists()
    fails(["audit", spec], f"{spec}:10:5:", "more than this machine's")


def test_a_validation_split_its_metric_cannot_score_is_refused_before_training(tmp_path):
    """One validation row has one class: its AUC is NaN every epoch, and the shipped epoch was
    chosen on NaN without a word (issue 21). Now one line before the first step."""
    spec = write_tiny(tmp_path, val_fraction=0.005)  # 120 rows: one validation row
    text = spec.read_text(encoding="utf-8").replace(
        "task: multiclass\nnum_classes: 3", "task: binary"
    )
    spec.write_text(text.replace("out_features: 3", "out_features: 1"), encoding="utf-8")
    np.savez(tmp_path / "tiny.npz", feat=np.ones((120, 4), np.float32), label=np.arange(120) % 2)
    line = fails(["train", spec, "-o", tmp_path / "r"], "the validation split has 1 row(s) and no")
    assert "its auc is undefined" in line and "data.val_fraction" in line
    assert not (tmp_path / "r" / "checkpoint.pt").exists()  # refused before training


# --- run directories and checkpoints ---------------------------------------------------------
def test_a_second_train_into_a_run(tiny, run):
    fails(["train", tiny, "-o", run], f"{run}: already holds a run", "--overwrite")


def test_a_resume_or_overwrite_while_another_writes_the_run_is_refused(tiny, run):
    """`--resume` and `--overwrite` started together on one directory both exited 0, leaving
    the other's run (issue 21): the run lock refuses the second, naming the first."""
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    with rundir.locked(run):
        pid = (run / rundir.LOCK).read_text().strip()
        for flag in ("--resume", "--overwrite"):
            fails(["train", tiny, "-o", run, flag], f"{run}: another rocketc process (pid {pid})")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "run.lock"}
    assert after == before  # the run being written is untouched


def test_resume_and_overwrite_together_is_a_usage_error(tiny, run):
    fails(["train", tiny, "-o", run, "--resume", "--overwrite"], "--overwrite", code=2)


def test_resume_with_another_seed(tiny, run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    line = fails(["train", tiny, "-o", copy, "--resume", "--seed", "5"], "cannot resume")
    assert "train.seed 0 -> 5" in line


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_bytes(b""), "checkpoint.pt: cannot be read (truncated or damaged"),
        (lambda p: torch.save({"weights": 1}, p), "checkpoint.pt: is not a rocketc checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "checkpoint.pt: cannot be read"),
    ],
)
def test_corrupt_or_foreign_checkpoints(tiny, run, tmp_path, damage, expected):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damage(copy / "checkpoint.pt")
    line = fails(["train", tiny, "-o", copy, "--resume"], expected)
    assert line.endswith("train again with --overwrite (or into a new --out)")


def test_a_damaged_run_json(tiny, run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "run.json").write_text('{"state": "tr')
    fails(["train", tiny, "-o", copy, "--resume"], "run.json: is damaged")


@pytest.mark.parametrize("width", ["100000000000", "9" * 400])
def test_check_refuses_what_train_could_not_hold(tmp_path, repo_root, width):
    """`check` applies train's memory budget: a 10^11-wide or 400-digit layer is a positioned
    error there (it passed check and crashed train with an OverflowError, issue 21)."""
    text = (repo_root / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "wide.yaml"
    spec.write_text(text.replace("units: [32]", f"units: [{width}]", 1), encoding="utf-8")
    for command in (["check", str(spec)], ["train", str(spec), "-o", str(tmp_path / "run")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, result.output
        assert f"{spec}:23:5: training this model needs " in result.stderr
        assert "layer 'light_hidden' alone holds" in result.stderr
        assert "Traceback" not in result.output
