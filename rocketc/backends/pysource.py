"""What user text may put into a generated file, and the check every generated file passes.

User text reaches `model.py`/`train.py` in two ways only. Names (inputs, layers, the spec) are
Python identifiers by the schema, which also refuses the ones Python cannot bind. Free text (the
spec's `description`, its file name) is printed inside docstrings, through `docstring_text`:
backslashes doubled, no run of quotes, whitespace of any kind made a space, and every character
that a string literal cannot hold or that changes how a reader sees the file escaped: NUL and
other controls, lone surrogates, line/paragraph separators and the invisible format characters,
among them the bidi controls of "Trojan Source" (CVE-2021-42574). The docstring's value keeps
the text; the file holds only the escape.

`check_source` is the last step before a file is written: it must compile (syntax and scopes,
so a duplicate parameter or `__debug__` counts) and hold none of those characters. A failure
here is a rocketc bug, reported as a CodegenError, never a file that does not import.
"""

from __future__ import annotations

import re
import unicodedata

from rocketc.errors import CodegenError

# Bidi controls: embeddings/overrides (U+202A-202E), isolates (U+2066-2069), marks.
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Categories escaped in docstrings: controls, format (bidi, zero width, BOM), surrogates,
# private use, unassigned; line and paragraph separators never reach this (they are spaces).
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def docstring_text(text: str) -> str:
    """`text` made safe inside a triple-quoted docstring (the caller wraps the lines)."""
    out = []
    for ch in text.replace("\\", "\\\\"):
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) in _ESCAPED:
            out.append(_escape(ch))
        else:
            out.append(ch)
    # A run of quotes would end the docstring: escape every quote that another one follows.
    return re.sub(r'"(?=")', r'\\"', "".join(out))


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def check_source(name: str, text: str) -> None:
    """Raise CodegenError unless `text` compiles and holds no control or bidi character."""
    for line_no, line in enumerate(text.split("\n"), 1):
        for ch in line:
            if ch in BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
                raise CodegenError(
                    f"internal error: generated {name} line {line_no} holds the character "
                    f"{_escape(ch)}; please report this spec"
                )
    try:
        compile(text, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        message = getattr(exc, "msg", None) or str(exc)
        raise CodegenError(
            f"internal error: generated {name}{where} is not valid Python ({message}); "
            "please report this spec"
        ) from None
