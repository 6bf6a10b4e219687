"""Where the jinja2 templates live, and the one Environment that renders them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """Installed wheels carry templates inside the package; a source checkout has them on top."""
    package = Path(__file__).resolve().parent.parent  # rocketc/
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("rocketc's templates/ directory is missing from this installation")


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """jinja2's file cache of compiled templates, except that a failed write (a full disk, a
    read-only temp directory) costs only the speed-up, never the compile."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs, so `rocketc compile` does not parse them again
    (about 40 ms of its start-up). They live in jinja2's per-user temp directory, which jinja2
    creates 0700 and checks is this user's before it trusts it; each entry is dropped when its
    template's source changes. None where no such directory can be had."""
    try:
        return _QuietBytecodeCache()
    except (OSError, RuntimeError):  # no safe temp directory: compile without the cache
        return None


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        bytecode_cache=bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
