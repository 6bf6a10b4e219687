"""Every file rocketc writes goes through here: whole or not at all, and a full disk said plainly.

`write_atomic` writes a sibling temp file, fsyncs it and renames it over the target, so a kill,
a full disk or any error leaves the previous file whole (or no file) and never a torn one; the
temp file is removed on failure. `AtomicFile` (and `open_atomic`, its `with` form) is the same
for a file written piece by piece, such as predict's scores: a file object on the temp file,
renamed over the target by `commit`. `write_atomic_all` replaces several files together (an
export): all written first, then all renamed, so a full disk replaces none of them.

An OSError becomes one line naming the file: for ENOSPC also how much it needed (`rocketc:
run/checkpoint.pt: no space left on the device (needs about 3 MB); free some space or choose
another disk`). Objects torch or matplotlib serialise are rendered
into memory first (`figure_bytes` here, `checkpoint.torch_bytes` for torch, whose own writer
reports a full disk as an unreadable RuntimeError) so that only this module touches the disk.

`locked` holds a directory's advisory lock (`run.lock`), so that one process at a time writes it
(`train`'s run directory, `tune`'s output directory).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rocketc.errors import Diagnostic, RocketcError, os_advice

LOCK = "run.lock"


def write_atomic(path: str | os.PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
    """Replace `path` with `data` atomically (temp file in the same directory, fsync, rename)."""
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with open_atomic(path) as f:
        f.write(raw)


def write_atomic_all(contents: dict[Path, bytes | str], encoding: str = "utf-8") -> None:
    """Replace several files together: every one is written and synced to a temp file first,
    then they are renamed in order, so a full disk (or any write error) replaces none of them.
    (The renames need no space; only a kill between them can leave some renamed.)"""
    pending: list[AtomicFile] = []
    try:
        for path, data in contents.items():
            pending.append(f := AtomicFile(path))
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.sync()
        for f in pending:
            f.commit()
    finally:
        for f in pending:
            f.discard()


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike) -> Iterator[AtomicFile]:
    """A binary file object that replaces `path` when the block ends, or leaves it as it was
    (and no temp file) when the block raises."""
    f = AtomicFile(path)
    try:
        yield f
        f.commit()
    finally:
        f.discard()


class AtomicFile(io.RawIOBase):
    """A binary file object writing a sibling temp file of `path`; `commit` fsyncs it and
    renames it over `path`, `discard` removes it. A failed write or commit removes it too and
    raises `write_error`'s one line, counting the bytes written so far in what it needed."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.size = 0
        self._file: Any = None
        self._synced = False
        try:
            # 0o666 less the umask: the file gets the permissions a plain open() would give it.
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            self._file = os.fdopen(fd, "wb")
        except OSError as exc:
            raise self._failed(exc) from None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if self._file is None:
            raise ValueError(f"{self.path}: written after commit or discard")
        try:
            _write_all(self._file, data)
        except OSError as exc:
            raise self._failed(exc, size) from None
        self.size += size
        return size

    def sync(self) -> None:
        """Flush the temp file to the disk and close it: `commit` then only renames it."""
        if self._synced:
            return
        if self._file is None:
            raise ValueError(f"{self.path}: committed after discard")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise self._failed(exc) from None
        self._synced = True

    def commit(self) -> None:
        self.sync()
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise self._failed(exc) from None
        self._file, self._synced = None, False

    def discard(self) -> None:
        """Remove the temp file (nothing to do after `commit`)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file, self._synced = None, False
            self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(OSError):  # e.g. never made: a part of the path is a file
            self.tmp.unlink(missing_ok=True)

    def _failed(self, exc: OSError, pending: int = 0) -> RocketcError:
        self.discard()
        self._remove_tmp()
        return write_error(self.path, exc, self.size + pending)


def _write_all(f, raw: bytes) -> None:
    """The one place bytes reach a file (tests inject disk faults here)."""
    f.write(raw)


def write_error(path: Path, exc: OSError, size: int) -> RocketcError:
    """One line for a failed write of `size` bytes to `path`."""
    advice = os_advice(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        need = f"{max(size / 2**20, 0.1):,.1f} MB"
        advice = advice.replace(";", f" (needs about {need});", 1)
    return RocketcError([Diagnostic(advice, str(path))])


def figure_bytes(fig: Any, **options: Any) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **options)
    return buffer.getvalue()


@contextlib.contextmanager
def locked(directory: Path, advice: str) -> Iterator[None]:
    """Hold `directory`'s advisory lock (LOCK, flock) for the block: a second writer is refused
    at once, naming the process that holds it, then `advice`. The OS releases the lock when
    the holder exits, however it exits; the file stays (it holds the last holder's pid)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no advisory locks
        yield
        return
    fd = os.open(Path(directory) / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RocketcError(
                [
                    Diagnostic(
                        f"another rocketc process (pid {holder}) is writing this directory; "
                        + advice,
                        str(directory),
                    )
                ]
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
