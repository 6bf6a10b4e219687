"""The one error hierarchy of rocketc.

Every error a user can cause is a `RocketcError`. It carries one or more `Diagnostic`s, each with
the spec file and the 1-based line/column of the YAML text it is about, so the CLI prints
`specs/x.yaml:14:7: message` and exits 1 instead of showing a traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based


@dataclass(frozen=True)
class Diagnostic:
    message: str
    file: str | None = None
    pos: Position | None = None
    # The spec path it is about (("inputs", 3)), for a stage that does not hold the spec's
    # text, such as a data loader: whoever holds it fills in file and pos (`placed`).
    at: tuple = ()

    def placed(self, source_map) -> Diagnostic:
        """This diagnostic at its spec path's place in `source_map`'s file (or the --set that
        wrote the value); unchanged when it has no path or a place already."""
        if not self.at or self.file is not None:
            return self
        file, pos = source_map.where(self.at)
        return Diagnostic(self.message, file, pos, self.at)

    def __str__(self) -> str:
        where = self.file or "rocketc"
        if self.pos is not None:
            where = f"{where}:{self.pos.line}:{self.pos.col}"
        return f"{where}: {self.message}"

    def sort_key(self) -> tuple:
        pos = self.pos or Position(0, 0)
        return (self.file or "", pos.line, pos.col, self.message)


class RocketcError(Exception):
    """Base class: a problem the user can fix. Holds every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic] | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class LoadError(RocketcError):
    """The file is missing or is not YAML."""


class SpecError(RocketcError):
    """The YAML does not fit the spec schema (pydantic validation)."""


class GraphError(RocketcError):
    """The layers do not form a valid twin graph (references, cycles, roles, heads, ties)."""


class ShapeError(RocketcError):
    """Shape inference failed: a layer cannot take what its inputs give."""


class CodegenError(RocketcError):
    """The back end could not render the model (a bug in rocketc, not in the spec)."""


class DataError(RocketcError):
    """The data named by the spec is missing or does not fit the spec's inputs."""


class TrainError(RocketcError):
    """Training could not go on (non-finite loss, bad resume state)."""


class BundleError(RocketcError):
    """A run directory cannot be served: preprocess.json or light.onnx missing, changed or unfit."""


class VizError(RocketcError):
    """The diagram could not be rendered (e.g. Graphviz's `dot` is not installed)."""


class TuneError(RocketcError):
    """`rocketc tune` cannot run: a bad --space file, storage URL or study to resume."""


# What an OSError means for the user, by errno; the path itself is said by `os_error`.
_OS_ADVICE = {
    errno.ENOTDIR: "a part of the path is a file, not a directory; choose another path",
    errno.EEXIST: "a part of the path is a file, not a directory; choose another path",
    errno.EISDIR: "is a directory, not a file; choose a file name",
    errno.ENOENT: "no such file or directory",
    errno.EACCES: "permission denied; choose a place you can write to",
    errno.EPERM: "operation not permitted; choose a place you can write to",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOSPC: "no space left on the device; free some space or choose another disk",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another disk",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def os_advice(exc: OSError) -> str:
    return _OS_ADVICE.get(exc.errno, exc.strerror or str(exc))  # type: ignore[arg-type]


def os_error(exc: OSError, doing: str = "") -> RocketcError:
    """An OSError (a path in the way, no permission, a full disk) as one line naming the path."""
    where = exc.filename if exc.filename is not None else None
    doing = f"{doing}: " if doing else ""
    return RocketcError([Diagnostic(f"{doing}{os_advice(exc)}", str(where) if where else None)])


class Collector:
    """Gathers diagnostics during a pass so all of them are reported together."""

    def __init__(self, file: str | None):
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def add(self, message: str, pos: Position | None = None) -> None:
        self.diagnostics.append(Diagnostic(message, self.file, pos))

    def raise_if_any(self, error_type: type[RocketcError]) -> None:
        if self.diagnostics:
            raise error_type(self.diagnostics)
