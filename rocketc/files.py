"""Every file rocketc writes goes through here: whole or not at all, and a full disk said plainly.

`write_atomic` writes a sibling temp file, fsyncs it and renames it over the target, so a kill,
a full disk or any error leaves the previous file whole (or no file) and never a torn one; the
temp file is removed on failure. An OSError becomes one line naming the file: for ENOSPC also
how much it needed (`rocketc: run/checkpoint.pt: no space left on the device (needs about 3 MB);
free some space or choose another disk`). Objects torch or matplotlib serialise are rendered
into memory first (`figure_bytes` here, `checkpoint.torch_bytes` for torch, whose own writer
reports a full disk as an unreadable RuntimeError) so that only this module touches the disk.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

from rocketc.errors import Diagnostic, RocketcError, os_advice


def write_atomic(path: str | os.PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
    """Replace `path` with `data` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # 0o666 less the umask: the file gets the permissions a plain open() would give it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as f:
            _write_all(f, raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc, len(raw)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
