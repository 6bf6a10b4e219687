"""Run directories: nothing lost, nothing mixed, nothing trusted that was not checked.

A second run into a run directory is refused (or replaces it with --overwrite, never leaving
old and new files side by side); `--resume` continues only the very same run (spec after
overrides, seed, data, rocketc version) and touches nothing when it refuses; checkpoints carry a
checksum; an export failure keeps the trained weights. The property test damages a killed run's
files one way or another and checks that resuming either ends exactly like an uninterrupted
run or refuses with an error naming the damaged directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from rocketc.compiler import compile_file
from rocketc.compiler.load import load_file
from rocketc.compiler.overrides import apply_overrides
from rocketc.compiler.pipeline import compile_source
from rocketc.errors import RocketcError, TrainError
from rocketc.train import checkpoint, rundir
from rocketc.train.run import TrainRecipe, train_run
from tests.helpers.tiny_runs import write_tiny

QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (lives for the session)


class Killed(Exception):
    """Stands in for a kill: nothing after the raise runs."""


class KilledAfterFirstEpoch(TrainRecipe):
    def end_epoch(self, epoch, train_losses):
        super().end_epoch(epoch, train_losses)
        raise Killed


def compiled(spec: Path, *sets: str):
    return compile_source(apply_overrides(load_file(spec), list(sets)))


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the run under `directory`: its bytes and modification time (ns). The lock
    file is not the run's: each attempt takes the lock (and records its pid) before it decides."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != rundir.LOCK
    }


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(run / "checkpoint.pt", "")["model"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run (not exported)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train_run(compile_file(tiny), out, console=QUIET, launch=False)
    return out


@pytest.fixture(scope="module")
def killed(tiny, tmp_path_factory) -> Path:
    """The same run, killed after its first epoch."""
    out = tmp_path_factory.mktemp("killed") / "run"
    with pytest.raises(Killed):
        KilledAfterFirstEpoch(compile_file(tiny), out, console=QUIET).run(launch=False)
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run, target)
    return target


# --- a second run ----------------------------------------------------------------------------
def test_a_second_train_is_refused_and_overwrite_replaces_only_the_run(tiny, finished, tmp_path):
    run = copy_of(finished, tmp_path)
    before = snapshot(run)
    with pytest.raises(TrainError, match="already holds a run; continue it with --resume"):
        train_run(compile_file(tiny), run, console=QUIET, launch=False)
    assert snapshot(run) == before
    (run / "tune").mkdir()
    (run / "tune" / "study.db").write_text("another command's file")
    (run / "notes.txt").write_text("mine")
    train_run(compiled(tiny, "train.epochs=1"), run, overwrite=True, console=QUIET, launch=False)
    manifest = rundir.read_manifest(run)
    assert manifest["fingerprint"]["spec"]["train.epochs"] == 1
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").open()] == [1]
    assert (run / "tune" / "study.db").exists() and (run / "notes.txt").read_text() == "mine"


def test_a_kill_while_overwriting_leaves_a_replacing_run_never_a_mixed_one(
    tiny, finished, tmp_path, monkeypatch
):
    run = copy_of(finished, tmp_path)
    for name in ("preprocess.json", "light.onnx", "report.json"):  # as if it had been exported
        (run / name).write_text("old run")
    removed = []

    def remove_then_die(path: Path) -> None:
        if removed:
            raise Killed
        removed.append(path.name)
        path.unlink()

    monkeypatch.setattr(rundir, "_remove", remove_then_die)
    with pytest.raises(Killed):
        train_run(compile_file(tiny), run, overwrite=True, console=QUIET, launch=False)
    assert removed == ["preprocess.json"]  # the serving bundle goes first
    assert rundir.read_manifest(run)["state"] == "replacing"
    with pytest.raises(TrainError, match="killed while an earlier run in it was being replaced"):
        train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)
    monkeypatch.undo()
    train_run(compile_file(tiny), run, overwrite=True, console=QUIET, launch=False)
    assert not (run / "light.onnx").exists() and not (run / "report.json").exists()


def test_a_damaged_run_json_is_refused_unless_overwritten(tiny, finished, tmp_path):
    run = copy_of(finished, tmp_path)
    (run / "run.json").write_text("{not json")
    for flags in ({}, {"resume": True}):
        with pytest.raises(TrainError, match="run.json: is damaged"):
            train_run(compile_file(tiny), run, console=QUIET, launch=False, **flags)
    train_run(compile_file(tiny), run, overwrite=True, console=QUIET, launch=False)
    assert rundir.read_manifest(run)["state"] == "training"


def test_a_directory_of_other_files_is_never_taken_for_a_run(tiny, tmp_path):
    (tmp_path / "code").mkdir()
    with pytest.raises(TrainError, match="holds code but no rocketc run"):
        train_run(compile_file(tiny), tmp_path, overwrite=True, console=QUIET, launch=False)


# --- resume checks the fingerprint, touching nothing -------------------------------------------
@pytest.mark.parametrize(
    ("sets", "named"),
    [
        (["train.seed=1"], ["train.seed 0 -> 1", "the data"]),  # the seed also re-draws splits
        (["train.schedule={name: cosine}"], ['train.schedule.name "constant" -> "cosine"']),
        (["train.optimizer.name=sgd"], ['train.optimizer.name "adam" -> "sgd"']),
        (["layers.2.out_features=32"], ["layers[2].out_features 16 -> 32"]),
        (["train.clip_grad_norm=1.0"], ["train.clip_grad_norm null -> 1.0"]),
    ],
)
def test_resume_with_other_settings_is_refused_naming_them(killed, tiny, tmp_path, sets, named):
    run = copy_of(killed, tmp_path)
    before = snapshot(run)
    with pytest.raises(
        TrainError, match="cannot resume: the run was made with other settings"
    ) as e:
        train_run(compiled(tiny, *sets), run, resume=True, console=QUIET, launch=False)
    message = str(e.value)
    assert all(n in message for n in named), message
    assert "--overwrite" in message
    assert snapshot(run) == before  # not even code/ or audit.json was rewritten


def test_resume_with_other_data_is_refused(killed, tiny, tmp_path):
    run = copy_of(killed, tmp_path)
    other = write_tiny(tmp_path / "other", data_seed=7)
    text = tiny.read_text().replace(str(tiny.with_suffix(".npz")), str(other.with_suffix(".npz")))
    moved = tmp_path / "moved.yaml"
    moved.write_text(text)
    with pytest.raises(TrainError, match=r"the data \(another file"):
        train_run(compile_file(moved), run, resume=True, console=QUIET, launch=False)


def test_resume_of_a_run_without_run_json_is_refused(killed, tiny, tmp_path):
    run = copy_of(killed, tmp_path)
    (run / "run.json").unlink()
    with pytest.raises(TrainError, match="has no run.json"):
        train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)


def test_resume_with_nothing_there_starts_a_new_run(tiny, tmp_path):
    result = train_run(
        compile_file(tiny), tmp_path / "new", resume=True, console=QUIET, launch=False
    )
    assert len(result.history) == 2


def test_a_torn_metrics_jsonl_is_rebuilt_from_the_checkpoint(killed, finished, tiny, tmp_path):
    run = copy_of(killed, tmp_path)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[: len(text) // 2])  # killed mid-line
    train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)
    records = [
        [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in open(path)]
        for path in (run / "metrics.jsonl", finished / "metrics.jsonl")
    ]
    assert records[0] == records[1] and len(records[0]) == 2


# --- checkpoints carry a checksum ------------------------------------------------------------
def test_flipped_bytes_in_a_checkpoint_are_refused(killed, tiny, tmp_path):
    run = copy_of(killed, tmp_path)
    path = run / "checkpoint.pt"
    state = checkpoint.load(path, "")
    raw = bytearray(path.read_bytes())
    weight = state["model"]["light.light_logits.weight"].numpy().tobytes()
    at = bytes(raw).index(weight)  # a byte of a weight: the archive still reads
    raw[at + 1] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(TrainError, match="fails its checksum: it was damaged or edited"):
        train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)


def test_edited_weights_are_refused(killed, tmp_path):
    run = copy_of(killed, tmp_path)
    path = run / "best.pt"
    state = torch.load(path, weights_only=True)
    state["model"]["light.light_logits.weight"] += 1e6  # saved again, the old digest kept
    torch.save(state, path)
    with pytest.raises(TrainError, match="best.pt: fails its checksum"):
        checkpoint.load(path, "train again")


def test_foreign_checkpoints_are_refused(killed, tiny, finished, tmp_path):
    run = copy_of(killed, tmp_path)
    torch.save({"model": {}}, run / "checkpoint.pt")
    with pytest.raises(TrainError, match="not a rocketc checkpoint"):
        train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)
    other = tmp_path / "other"
    train_run(compiled(tiny, "train.seed=3"), other, console=QUIET, launch=False)
    shutil.copy(other / "checkpoint.pt", run / "checkpoint.pt")  # sound, but another run's
    with pytest.raises(TrainError, match="belongs to another run"):
        train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)


def test_digest_is_the_same_after_a_round_trip(tmp_path):
    state = {
        "w": torch.randn(3, 2).to(torch.bfloat16),
        "step": 3,
        "lrs": [0.1, float("nan"), -0.0],
        "betas": (0.9, 0.999),
        "nested": {1: {"flag": True, "none": None}, "s": "é\ud800"[:1]},
    }
    checkpoint.save(state, tmp_path / "c.pt")
    loaded = checkpoint.load(tmp_path / "c.pt", "")
    assert checkpoint.digest(loaded) == checkpoint.digest(state)
    state["w"] = state["w"] * 2
    assert checkpoint.digest(loaded) != checkpoint.digest(state)


# --- the property: damage anything, resume continues exactly or refuses clearly ---------------
MUTATIONS = st.sampled_from(["delete", "truncate", "flip", "empty", "garbage"])


def _mutate(path: Path, how: str, where: float, value: int) -> None:
    raw = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(raw[: int(len(raw) * where)])
    elif how == "flip" and raw:
        at = min(int(len(raw) * where), len(raw) - 1)
        path.write_bytes(raw[:at] + bytes([raw[at] ^ value]) + raw[at + 1 :])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(bytes([value]) * 64)


@settings(
    max_examples=int(os.environ.get("ROCKETC_FUZZ_RUNS", "24")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    which=st.integers(0, 100),
    how=MUTATIONS,
    where=st.floats(0, 1),
    value=st.integers(1, 255),
)
def test_resume_after_any_damage_continues_exactly_or_refuses(
    killed, finished, tiny, tmp_path, which, how, where, value
):
    run = copy_of(killed, tmp_path)
    files = sorted(p for p in run.rglob("*") if p.is_file())
    target = files[which % len(files)]
    _mutate(target, how, where, value)
    try:
        result = train_run(compile_file(tiny), run, resume=True, console=QUIET, launch=False)
    except RocketcError as exc:
        assert isinstance(exc, TrainError)
        (diagnostic,) = exc.diagnostics
        assert diagnostic.file is not None and diagnostic.file.startswith(str(run)), diagnostic
        assert "--overwrite" in diagnostic.message
        return
    reference = final_weights(finished)
    resumed = final_weights(run)
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), (target.name, how, key)
    want = [json.loads(line)["val"] for line in (finished / "metrics.jsonl").open()]
    assert [r["val"] for r in result.history] == want


# --- export failures keep the weights; a one-row validation split exports --------------------
def test_export_failure_keeps_the_weights_and_resume_exports_them(tmp_path, monkeypatch):
    spec = write_tiny(tmp_path, val_fraction=0.005)  # 120 rows: one validation row
    run = tmp_path / "run"

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded\nsecond line")

    monkeypatch.setattr("rocketc.train.report.export_program", broken)
    with pytest.raises(TrainError, match="export failed: RuntimeError: exporter exploded") as e:
        train_run(compile_file(spec), run, console=QUIET)
    message = str(e.value)
    assert str(run / "best.pt") in message and str(run / "light_state_dict.pt") in message
    assert "--resume" in message and "second line" not in message
    assert "exporter exploded" in (run / "export_error.log").read_text()
    trained = checkpoint.load(run / "checkpoint.pt", "")
    monkeypatch.undo()
    result = train_run(compile_file(spec), run, resume=True, console=QUIET)
    assert checkpoint.load(run / "checkpoint.pt", "")["epoch"] == trained["epoch"]  # no training
    assert result.report["onnx_max_abs_diff"] < 1e-4 and (run / "light.onnx").exists()
    assert rundir.read_manifest(run)["state"] == "complete"
