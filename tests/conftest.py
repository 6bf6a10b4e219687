"""Shared fixtures: where the repository is, compiling spec text, importing generated code.

Fixtures that hand out plain functions are session-scoped so hypothesis tests may use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rocketc.compiler import Compiled, compile_text

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def spec_paths() -> list[Path]:
    """Every shipped spec, in name order."""
    paths = sorted((ROOT / "specs").glob("*.yaml"))
    assert paths, "no specs/*.yaml found"
    return paths


@pytest.fixture(scope="session")
def spec_text() -> Callable[[str], str]:
    """The YAML text of a shipped spec, by name (`spec_text("quickstart")`)."""

    def read(name: str) -> str:
        return (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8")

    return read


@pytest.fixture(scope="session")
def compile_spec_text() -> Callable[..., Compiled]:
    """Compile YAML text in memory; `file` is the name diagnostics print."""

    def compile_(text: str, file: str = "spec.yaml") -> Compiled:
        return compile_text(text, file)

    return compile_


@pytest.fixture(scope="session")
def load_model(tmp_path_factory: pytest.TempPathFactory) -> Callable:
    """Render a Compiled to a fresh directory and import it: `load_model(c).model.RocketNet`.

    Imports torch (through the generated code), so only tests that run models use it.
    """
    from rocketc.train.generated import load_generated

    def load(compiled: Compiled):
        return load_generated(compiled, tmp_path_factory.mktemp(compiled.spec.name))

    return load


def replace_once(text: str, old: str, new: str) -> str:
    """`text.replace(old, new)`, failing loudly when `old` is not there exactly once.

    Spec variants are built by editing YAML text; a silent no-op would make a test vacuous.
    """
    count = text.count(old)
    assert count == 1, f"expected {old!r} once in the spec text, found it {count} times"
    return text.replace(old, new)


@pytest.fixture(scope="session")
def edit() -> Callable[[str, str, str], str]:
    """`edit(text, old, new)`: replace a snippet that must occur exactly once."""
    return replace_once
