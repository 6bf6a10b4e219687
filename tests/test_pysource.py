"""Hostile text in a spec never yields a generated file that does not compile, or that hides code.

Whatever a spec's description, file name or names hold, `rocketc compile` either refuses it with
a positioned error or writes model.py/train.py that compile, encode as UTF-8, hold no NUL, lone
surrogate or bidi control (Trojan Source), and whose docstring still says the description.
"""

from __future__ import annotations

import ast
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocketc.backends.codegen import render, write
from rocketc.backends.pysource import BIDI, check_source, docstring_text
from rocketc.compiler import compile_text
from rocketc.compiler.load import load_text
from rocketc.errors import CodegenError, RocketcError, SpecError

# ROCKETC_FUZZ_EXAMPLES=20000 runs the campaign SECURITY.md quotes; the suite runs a sample.
EXAMPLES = int(os.environ.get("ROCKETC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every code point, surrogates and controls included: what a YAML "\u..." escape can hold.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar of escapes only: any code point travels intact."""
    return '"' + "".join(f"\\U{ord(ch):08x}" for ch in text) + '"'


def spec_with(description: str = "", input_name: str = "pixels") -> str:
    """A small spec as JSON (valid YAML) whose description is `yaml_string(description)`."""
    spec = {
        "version": 1,
        "name": "hostile",
        "description": "DESCRIPTION",
        "task": "multiclass",
        "num_classes": 3,
        "inputs": [{"name": input_name, "kind": "dense", "shape": [4]}],
        "layers": [
            {"id": "light_logits", "op": "linear", "in": input_name, "out_features": 3,
             "role": "light"},
            {"id": "booster_logits", "op": "linear", "in": input_name, "out_features": 3,
             "role": "booster"},
        ],
        "heads": {"light": "light_logits", "booster": "booster_logits"},
    }  # fmt: skip
    return json.dumps(spec).replace('"DESCRIPTION"', yaml_string(description))


def assert_safe(files: dict[str, str]) -> None:
    for name, text in files.items():
        compile(text, name, "exec", dont_inherit=True)
        text.encode("utf-8")  # no lone surrogate
        assert "\x00" not in text and not (set(text) & BIDI), name


def words(text: str) -> str:
    return " ".join(text.split())


@FUZZ
@given(ANY_TEXT)
def test_any_description_renders_safe_code_that_keeps_the_text(description):
    files = render(compile_text(spec_with(description), "hostile.yaml"))
    assert_safe(files)
    docstring = ast.get_docstring(ast.parse(files["model.py"]), clean=False)
    assert words(description) in words(docstring)


@FUZZ
@given(ANY_TEXT.filter(lambda s: "/" not in s and s not in ("", ".", "..")))
def test_any_spec_file_name_renders_safe_code(file_name):
    files = render(compile_text(spec_with(), file_name))
    assert_safe(files)
    docstring = ast.get_docstring(ast.parse(files["train.py"]), clean=False)
    assert words(file_name) in words(docstring)


@FUZZ
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
def test_any_identifier_as_input_name_is_refused_or_compiles(name):
    try:
        compiled = compile_text(spec_with(input_name=name), "hostile.yaml")
    except RocketcError as exc:
        assert not isinstance(exc, CodegenError)
        assert all(d.file == "hostile.yaml" and d.pos is not None for d in exc.diagnostics)
        return
    assert_safe(render(compiled))


def test_debug_cannot_be_a_parameter_so_the_compiler_refuses_it():
    with pytest.raises(SpecError, match=r"inputs\[0\]\.name: '__debug__' is reserved") as info:
        compile_text(spec_with(input_name="__debug__"), "hostile.yaml")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.pos is not None


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("nul\x00here", "nul\\x00here"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("isolate\u2066x\u2069", "isolate\\u2066x\\u2069"),
        ("lone\ud800", "lone\\ud800"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\u2028sep\x85next\ttab", "line sep next tab"),
        ('"""; import os; """', '\\"\\""; import os; \\"\\""'),
        ("ends in a backslash \\", "ends in a backslash \\\\"),
    ],
)
def test_docstring_text_escapes_what_a_literal_cannot_hold(text, escaped):
    assert docstring_text(text) == escaped
    assert ast.literal_eval(f'"""{escaped} """') == " ".join(text.split()) + " "


def test_a_trojan_source_description_stays_out_of_the_files(tmp_path):
    evil = 'access = "user" \u202e \u2066# admin\u2069 \u2066'
    written = write(compile_text(spec_with(evil), "hostile.yaml"), tmp_path)
    for path in written:
        raw = path.read_bytes()
        assert "\u202e".encode() not in raw and "\u2066".encode() not in raw
        assert b"\\u202e" in raw or path.name == "train.py"


def test_check_source_refuses_what_would_not_import():
    with pytest.raises(CodegenError, match=r"model\.py line 1 is not valid Python"):
        check_source("model.py", "def f(a, a):\n    pass\n")
    with pytest.raises(CodegenError, match=r"line 2 holds the character \\u202e"):
        check_source("model.py", "x = 1\ny = '\u202e'\n")
    with pytest.raises(CodegenError, match=r"holds the character \\x00"):
        check_source("model.py", "x = 1  # \x00\n")


def test_load_keeps_escaped_surrogates_and_nul_as_text():
    # The YAML escapes reach the spec as the characters themselves; only codegen escapes them.
    data = load_text('{"description": "a\\u0000b\\ud800"}', "x.yaml").data
    assert data["description"] == "a\x00b\ud800"
