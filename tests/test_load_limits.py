"""Hostile spec files: alias bombs, oversized text and deep nesting stop with a positioned error.

Each limit is checked on input just past it and on a billion-laughs style bomb, which would
expand to 9**9 values (hundreds of millions) without the cap.
"""

from __future__ import annotations

import pytest

from rocketc.compiler import load
from rocketc.compiler.load import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES, load_file, load_text
from rocketc.errors import LoadError, Position


def _bomb(levels: int) -> str:
    names = "abcdefghijk"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(levels):
        refs = ", ".join([f"*{names[i]}"] * 9)
        lines.append(f"{names[i + 1]}: &{names[i + 1]} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_expansion_bomb_is_refused_at_the_cap():
    with pytest.raises(LoadError) as err:
        load_text(_bomb(8), "bomb.yaml")  # 9**9 values once expanded
    (diagnostic,) = err.value.diagnostics
    assert f"more than {MAX_NODES:,} values" in diagnostic.message
    assert diagnostic.file == "bomb.yaml" and diagnostic.pos is not None


def test_aliases_below_the_cap_still_load():
    source = load_text(_bomb(3), "ok.yaml")  # 9**4 = 6,561 leaves
    assert len(source.data["d"]) == 9 and source.data["d"][0][0][0] == ["x"] * 9


def test_oversized_spec_is_refused_before_parsing(tmp_path):
    text = "a: 1\n" + "# padding\n" * (MAX_SPEC_BYTES // 10 + 1)
    path = tmp_path / "big.yaml"
    path.write_text(text)
    with pytest.raises(LoadError) as err:
        load_file(path)
    (diagnostic,) = err.value.diagnostics
    assert "bytes; the limit is" in diagnostic.message and diagnostic.pos == Position(1, 1)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_flow_nesting_is_refused_with_its_position(depth):
    text = "name: x\nlayers: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(LoadError) as err:
        load_text(text, "deep.yaml")
    (diagnostic,) = err.value.diagnostics
    assert f"nested more than {MAX_DEPTH} levels" in diagnostic.message
    assert diagnostic.pos == Position(2, 9 + MAX_DEPTH)


def test_deep_block_nesting_is_refused():
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 2)) + "  " * 40 + "v: 1\n"
    with pytest.raises(LoadError) as err:
        load_text(text, "block.yaml")
    assert "levels deep" in err.value.diagnostics[0].message
    assert err.value.diagnostics[0].pos is not None


def test_brackets_in_strings_and_comments_do_not_count():
    opened = "[" * (MAX_DEPTH + 5)
    text = f"a: '{opened}'\nb: \"{opened}\"\n# {opened}\nc: [1, [2]]\n"
    assert load_text(text).data["c"] == [1, [2]]


def test_limits_are_far_above_the_shipped_specs(spec_paths):
    from ruamel.yaml import YAML

    for path in spec_paths:
        text = path.read_text()
        assert len(text.encode()) * 20 < MAX_SPEC_BYTES
        walk = load._Walk(str(path), load.SourceMap(str(path)))
        walk.plain(YAML(typ="rt").load(text), (), None)
        assert 50 < walk.nodes and walk.nodes * 20 < MAX_NODES
