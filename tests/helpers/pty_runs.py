"""Running a command in a pseudo-terminal, as a user's shell would, for the terminal tests.

Pipes (CliRunner, subprocess.run with capture) make rich switch its live display off, so a
progress bar that crashes on its first redraw passes every such test (issue 19: `rocketc train`
died with KeyError 'rate' in a real terminal only). `run_in_pty` gives the command a terminal
of 100 columns with TERM=xterm on stdin, stdout and stderr, and returns what it drew.

    code, text = run_in_pty([*ROCKETC, "predict", str(run), "--data", "x.csv"], tmp_path, 120)
    assert code == 0 and "Traceback" not in text and BAR in text

`text` is the raw terminal output: ANSI escapes, carriage returns, CRLF line ends (the terminal
translates "\\n"); `plain(text)` strips the escapes when a test reads words.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

ROCKETC = [sys.executable, "-m", "rocketc"]  # this interpreter's rocketc, whatever PATH says
BAR = "━"  # rich's progress bars are drawn with this character
COLUMNS, LINES = 100, 30

# Variables that would make rich (or the command) act otherwise than in a plain terminal.
_UNSET = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]")


def run_in_pty(
    argv: Sequence[str | os.PathLike], cwd: str | os.PathLike, timeout: float = 300
) -> tuple[int, str]:
    """Run `argv` in `cwd` with a pseudo-terminal as its stdin/stdout/stderr; return
    (exit code, everything it wrote). A command still running after `timeout` seconds is
    killed (with its process group) and the test fails with a TimeoutError showing its output.
    A command killed by a signal returns -signal, as subprocess does."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update(TERM="xterm", COLUMNS=str(COLUMNS), LINES=str(LINES), PYTHONUNBUFFERED="1")
    try:
        process = subprocess.Popen(
            [os.fspath(a) for a in argv],
            cwd=Path(cwd),
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,  # its own process group, killed as one on timeout
            close_fds=True,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # the child holds it now; EOF (EIO) comes when every holder is gone
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(process)
                text = _decode(chunks)
                raise TimeoutError(
                    f"{' '.join(map(str, argv))} still running after {timeout:g} s; "
                    f"its output so far:\n{text[-4000:]}"
                )
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError as exc:  # EIO: the terminal's other side is closed
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break  # exited, nothing more to read (a leftover child may hold the slave)
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if process.poll() is None:
            _kill(process)
    return code, _decode(chunks)


def plain(text: str) -> str:
    """Terminal output without its ANSI escapes and carriage returns."""
    return _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def _decode(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", errors="replace")


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
