"""Every write whole or not at all (`rocketc.files`), a full disk said in one line, and one
writer per run directory.

The fault test fills the disk at the k-th write of a run being extended (`--resume --epochs`),
for every k the run makes: each time the error is one line naming the file and what it needed,
no temp file is left, every file in the run directory still reads (JSON parses, checkpoints
pass their checksum), and the run resumes to the end once the disk has room again.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import threading

import pytest
from rich.console import Console

from rocketc import files
from rocketc.compiler import compile_file
from rocketc.errors import RocketcError
from rocketc.train import rundir
from rocketc.train.run import train_run
from tests.helpers.faults import FullDiskAt, all_files_read
from tests.helpers.tiny_runs import write_tiny

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def test_write_atomic_replaces_whole_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    files.write_atomic(target, '{"old": 1}\n')
    assert target.read_text() == '{"old": 1}\n'

    def full(f, raw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_write_all", full)
    with pytest.raises(RocketcError) as caught:
        files.write_atomic(target, "x" * 3_000_000)
    (d,) = caught.value.diagnostics
    assert d.file == str(target)
    assert d.message.startswith("no space left on the device (needs about 2.9 MB);")
    assert target.read_text() == '{"old": 1}\n'  # the previous file, whole
    assert list(tmp_path.iterdir()) == [target]  # no temp file left


def test_a_file_written_in_pieces_is_whole_or_not_at_all(tmp_path, monkeypatch):
    """`open_atomic`/`AtomicFile`, the streaming form (predict's scores): the same promises."""
    target = tmp_path / "scores.csv"
    with files.open_atomic(target) as f:
        f.write(b"row,score\n")
        f.write(b"1,0.5\n")
        assert target.exists() is False  # nothing at the target until the block ends
    assert target.read_bytes() == b"row,score\n1,0.5\n"
    with pytest.raises(KeyError), files.open_atomic(target) as f:
        f.write(b"half")
        raise KeyError("a failure of the caller")
    monkeypatch.setattr(files, "_write_all", FullDiskAt(2))
    with pytest.raises(RocketcError) as caught, files.open_atomic(target) as f:
        f.write(b"x" * 2_000_000)
        f.write(b"y" * 1_000_000)  # the disk fills here: 3 MB needed in all
    assert str(caught.value) == (
        f"{target}: no space left on the device (needs about 2.9 MB); free some space or "
        "choose another disk"
    )
    assert target.read_bytes() == b"row,score\n1,0.5\n"  # the previous file, whole
    assert list(tmp_path.iterdir()) == [target]  # no temp file left


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny 2-epoch run, complete."""
    base = tmp_path_factory.mktemp("faults")
    spec = write_tiny(base / "spec")
    run = base / "run"
    train_run(compile_file(spec, ["train.epochs=2"]), run, console=QUIET, launch=False)
    return spec, run


def _extend(spec, run, fault, monkeypatch):
    monkeypatch.setattr(files, "_write_all", fault)
    try:
        return train_run(
            compile_file(spec, ["train.epochs=3"]), run, resume=True, console=QUIET, launch=False
        )
    finally:
        monkeypatch.setattr(files, "_write_all", fault.real)


def test_a_full_disk_at_any_write_is_one_line_and_tears_nothing(finished, tmp_path, monkeypatch):
    spec, done = finished
    counter = FullDiskAt(None)
    _extend(spec, shutil.copytree(done, tmp_path / "count"), counter, monkeypatch)
    writes = counter.calls
    assert writes >= 5  # run.json, audit.json, metrics x2, checkpoint, best...
    for k in range(1, writes + 1):
        run = shutil.copytree(done, tmp_path / f"k{k}")
        with pytest.raises(RocketcError) as caught:
            _extend(spec, run, FullDiskAt(k), monkeypatch)
        (d,) = caught.value.diagnostics
        # The file: the run's, or one in a temp directory of rocketc's (the audit's code).
        assert d.file is not None and d.file.startswith((str(run), tempfile.gettempdir())), (k, d)
        assert "no space left on the device (needs about" in d.message, (k, d)
        all_files_read(run)
        result = _extend(spec, run, FullDiskAt(None), monkeypatch)  # room again: it finishes
        assert [r["epoch"] for r in result.history] == [1, 2, 3], k


def test_a_second_writer_of_a_run_directory_is_refused_naming_the_first(tmp_path):
    run = tmp_path / "run"
    with rundir.locked(run):
        pid = (run / rundir.LOCK).read_text().strip()
        errors = []

        def second():
            try:
                with rundir.locked(run):
                    pass
            except RocketcError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=second)  # flock is per open file: a thread will do
        thread.start()
        thread.join()
    assert (
        errors and f"another rocketc process (pid {pid}) is writing this directory" in (errors[0])
    )
    with rundir.locked(run):  # released on exit
        pass
