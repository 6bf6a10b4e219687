"""The specs shipped with rocketc: inside the wheel (`rocketc/specs/`) or `specs/` of a checkout."""

from __future__ import annotations

from pathlib import Path

from rocketc.errors import RocketcError


def embedded_spec(name: str) -> Path:
    """The path of shipped spec `name` (e.g. "quickstart", the default of `rocketc train`)."""
    here = Path(__file__).resolve().parent.parent  # rocketc/
    for candidate in (here / "specs" / f"{name}.yaml", here.parent / "specs" / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise RocketcError(f"embedded spec '{name}' is missing from this installation")
