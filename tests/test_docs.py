"""The README and the user guide in docs/ against the code they describe.

`mkdocs build --strict` (in .ci/run) checks the guide's links and anchors; these tests check what
MkDocs cannot: that every command and option has its place in docs/commands.md, that paths named
in the text exist, and that the README keeps the project's two set-up-and-go commands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from rocketc.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
SETUP_AND_GO = [
    "bash .ci/setup && .venv/bin/rocketc train specs/quickstart.yaml",
    "bash .ci/setup && .venv/bin/python -m pytest -q",
]
COMMANDS = typer.main.get_command(app).commands


def _fenced_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)]


def _sections(text: str) -> dict[str, str]:
    """`## rocketc <command>` heading -> the text up to the next `## ` heading."""
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.split("\n", 1)[0].strip(): p for p in parts[1:]}


def test_readme_gives_exactly_the_two_setup_and_go_commands():
    blocks = _fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [b for b in blocks if ".ci/setup" in b] == SETUP_AND_GO


def test_readme_stays_short():
    """The reference lives in docs/; the README is what it is, the commands and a tour."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 150, f"README.md has {lines} lines: move reference text into docs/"


def test_every_command_has_its_section_in_commands_md():
    sections = _sections((ROOT / "docs/commands.md").read_text(encoding="utf-8"))
    documented = {h.removeprefix("rocketc ") for h in sections if h.startswith("rocketc ")}
    assert documented == set(COMMANDS), "docs/commands.md: one `## rocketc <command>` each"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_documented(name):
    section = _sections((ROOT / "docs/commands.md").read_text(encoding="utf-8"))[f"rocketc {name}"]
    options = {
        opt
        for param in COMMANDS[name].params
        if not getattr(param, "hidden", False)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("-") and opt != "--help"
    }
    missing = sorted(o for o in options if not re.search(rf"`{re.escape(o)}[ `=]", section))
    assert not missing, f"docs/commands.md, `rocketc {name}`: document {', '.join(missing)}"


# A path in backticks that starts at a top-level folder of the repository: `specs/x.yaml`.
_PATH = re.compile(r"`((?:specs|rocketc|bench|examples|templates|generated|tests|docs)/[\w./-]+)`")


@pytest.mark.parametrize("doc", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_paths_named_in_the_docs_exist(doc):
    named = set(_PATH.findall(doc.read_text(encoding="utf-8")))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)}
    missing = sorted(t for t in targets if "://" not in t and not (ROOT / t).exists())
    assert not missing, f"README.md links to missing files: {missing}"
