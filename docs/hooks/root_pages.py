"""MkDocs hook: the repository's top-level documents become pages of the user guide.

ARCHITECTURE.md, BENCHMARKS.md and SECURITY.md stay at the repository root, where GitHub shows
them and where `python -m bench` regenerates BENCHMARKS.md; MkDocs reads only docs/. Each is
read at build time (so the site never holds a stale copy) and added as a page, with the images
it shows, so that `mkdocs build --strict` checks links to it like any other page.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "ARCHITECTURE.md": "architecture.md",
    "BENCHMARKS.md": "benchmarks.md",
    "SECURITY.md": "security.md",
}
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")  # ![alt, maybe over lines](path)


def on_files(files: Files, config) -> Files:
    for source, page in PAGES.items():
        text = (ROOT / source).read_text(encoding="utf-8")
        files.append(File.generated(config, page, content=text))
        for image in dict.fromkeys(_IMAGE.findall(text)):
            files.append(File.generated(config, image, abs_src_path=str(ROOT / image)))
    return files
