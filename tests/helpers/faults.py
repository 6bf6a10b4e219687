"""A disk that fills at the k-th write, and what a run directory must look like afterwards.

Every byte rocketc writes goes through `rocketc.files._write_all` (whole files, streamed files
and exports alike), so replacing it injects the fault wherever a write happens. Used by
`tests/test_files.py` (a run being extended) and `tests/test_faults.py` (train, checkpoint,
export and predict through the command line).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

from rocketc import files
from rocketc.train import checkpoint


class FullDiskAt:
    """Replaces `files._write_all`: the k-th write (1-based) raises ENOSPC; counts writes.
    With k None it only counts."""

    def __init__(self, k: int | None):
        self.k, self.calls = k, 0
        self.real = files._write_all

    def __call__(self, f, raw):
        self.calls += 1
        if self.calls == self.k:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real(f, raw)


def temp_files(directory: Path) -> list[Path]:
    """What a failed write might leave behind: rocketc's temp files (`.NAME.PID.tmp`)."""
    return [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def all_files_read(run: Path) -> None:
    """No temp file left; run.json and metrics.jsonl parse; checkpoints pass their checksum."""
    assert not temp_files(run), "a temp file was left"
    json.loads((run / "run.json").read_text())
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    for name in ("checkpoint.pt", "best.pt"):
        if (run / name).exists():
            checkpoint.load(run / name, "")
