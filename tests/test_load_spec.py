"""Stages 1 and 2: YAML to data with positions (rocketc.compiler.load), data to a Spec
(rocketc.compiler.spec).

Bad specs with their exact diagnostics live in tests/fixtures/{load,spec}/ (tests/test_passes.py);
this module checks the machinery those diagnostics rest on.
"""

from __future__ import annotations

import re

import pytest

from rocketc.compiler.load import SourceMap, load_file, load_text
from rocketc.compiler.ops import registered_ops
from rocketc.compiler.ops.base import MODULE_ATTRS, RESERVED
from rocketc.compiler.spec import Spec, json_schema, parse_spec
from rocketc.errors import LoadError, Position, RocketcError, SpecError

SMALL = """\
version: 1
name: small
task: binary
inputs:
  - {name: feats, kind: dense, shape: [4]}
layers:
  - {id: light_out, op: linear, in: feats, out_features: 1, role: light}
  - id: booster_out
    op: linear
    in: [feats]
    out_features: 1
    role: booster
heads: {light: light_out, booster: booster_out}
"""


def test_positions_of_scalars_point_at_values_and_containers_at_keys():
    source = load_text(SMALL, "small.yaml")
    sm = source.source_map
    assert sm.pos(("name",)) == Position(2, 7)  # the value `small`
    assert sm.pos(("inputs",)) == Position(4, 1)  # the key of a block sequence
    assert sm.pos(("inputs", 0)) == Position(5, 5)  # the flow mapping of the item
    assert sm.pos(("inputs", 0, "shape")) == Position(5, 32)  # a list: its key
    assert sm.pos(("inputs", 0, "shape", 0)) == Position(5, 40)
    assert sm.pos(("layers", 1)) == Position(8, 5)
    assert sm.pos(("layers", 1, "out_features")) == Position(11, 19)
    assert sm.pos(("layers", 1, "in", 0)) == Position(10, 10)


def test_document_position_skips_the_header_comment():
    """A missing top-level field is reported where the spec starts, not at its comment."""
    assert load_text("# header\n\nversion: 1\n").source_map.pos(()) == Position(3, 1)
    assert load_text("").source_map.pos(()) == Position(1, 1)
    assert load_text("# only a comment\n").source_map.pos(()) == Position(1, 1)


def test_source_map_falls_back_to_the_nearest_enclosing_path():
    sm = SourceMap("x.yaml", {(): Position(1, 1), ("a",): Position(2, 3)})
    assert sm.pos(("a", "b", 7)) == Position(2, 3)
    assert sm.pos(("zzz",)) == Position(1, 1)
    assert SourceMap("x.yaml").pos(("a",)) is None


def test_scalars_are_plain_python_types():
    data = load_text("a: 1\nb: 1.5\nc: true\nd: text\ne: ~\nf: [1, 2.0]\n").data
    assert [type(v) for v in data.values()] == [int, float, bool, str, type(None), list]
    assert [type(v) for v in data["f"]] == [int, float]


def test_merge_keys_and_omap_do_not_crash():
    """Merged keys and !!omap entries carry no ruamel position (a KeyError/TypeError before)."""
    merged = load_text("base: &b {k: 1}\nother:\n  <<: *b\n  j: 2\n", "m.yaml")
    assert merged.data["other"] == {"j": 2, "k": 1}
    # A merged key falls back to its mapping's position.
    assert merged.source_map.pos(("other", "k")) == merged.source_map.pos(("other",))
    omap = load_text("!!omap [a: 1, b: [2]]\n", "o.yaml")
    assert omap.data == {"a": 1, "b": [2]}


def test_spec_with_merge_keys_compiles(spec_text, compile_spec_text, edit):
    text = edit(
        spec_text("quickstart"),
        "  - {id: light_logits, op: linear,",
        "  - &logits {id: light_logits, op: linear,",
    )
    text = edit(
        text,
        "  - {id: booster_logits, op: linear, in: booster_hidden, out_features: 10, role: booster}",
        "  - {<<: *logits, id: booster_logits, in: booster_hidden, role: booster}",
    )
    compiled = compile_spec_text(text)
    assert compiled.graph.nodes["booster_logits"]["layer"].out_features == 10
    # A bad merged value is reported at the mapping it was merged into.
    bad = edit(text, "out_features: 10, role: light}", "out_features: 0, role: light}")
    with pytest.raises(SpecError) as info:
        compile_spec_text(bad)
    lines = [str(d) for d in info.value.diagnostics]
    assert any("layers[5].out_features" in line for line in lines), lines


def test_load_errors_carry_positions():
    with pytest.raises(LoadError) as info:
        load_text("a: 1\nb: [1, 2\n", "bad.yaml")
    (d,) = info.value.diagnostics
    assert d.file == "bad.yaml" and d.pos is not None and d.pos.line >= 2
    with pytest.raises(LoadError, match="duplicate key"):
        load_text("a: 1\na: 2\n")
    with pytest.raises(LoadError, match="single document"):
        load_text("a: 1\n---\nb: 2\n")


def test_load_file_errors(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load_file(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(LoadError, match="cannot read spec"):
        load_file(latin)
    with pytest.raises(LoadError):
        load_file(tmp_path)  # a directory


def test_every_shipped_spec_parses_and_opens_with_a_header(spec_paths):
    for path in spec_paths:
        text = path.read_text(encoding="utf-8")
        # torchtune's habit: a comment header saying what it is and how to run it.
        assert text.startswith(f"# {path.stem}: "), path
        header = text.split("\nversion:", 1)[0]
        assert "rocketc " in header, f"{path}: the header should say how to run it"
        spec = parse_spec(load_file(path))
        assert spec.name == path.stem


def test_in_takes_one_name_or_a_list():
    spec = parse_spec(load_text(SMALL))
    assert [layer.in_ for layer in spec.layers] == [["feats"], ["feats"]]
    assert spec.out_features == 1


def test_numbers_must_be_finite():
    text = SMALL + "loss:\n  hint: {weight: .inf}\n"
    with pytest.raises(SpecError, match="loss.hint.weight: Input should be a finite number"):
        parse_spec(load_text(text))


@pytest.mark.parametrize(
    "name", sorted(RESERVED | {"class", "def", "train", "to", "training", "__dunder", "_private"})
)
def test_reserved_layer_ids_are_refused(name):
    text = SMALL.replace("id: light_out", f"id: {name}").replace(
        "light: light_out", f"light: {name}"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(load_text(text, "r.yaml"))
    assert any(
        "layers[0].id" in str(d) and d.pos == Position(7, 10) for d in info.value.diagnostics
    ), str(info.value)


def test_module_attrs_are_identifiers():
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) for name in MODULE_ATTRS)


def test_every_error_is_a_rocketc_error():
    for cls in (LoadError, SpecError):
        assert issubclass(cls, RocketcError)
    err = SpecError("plain message")
    assert str(err) == "rocketc: plain message"


def test_json_schema_describes_the_spec():
    schema = json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(Spec.model_fields) <= set(schema["properties"])
    layer_refs = schema["properties"]["layers"]["items"]["oneOf"]
    assert len(layer_refs) == len(registered_ops())
    in_schema = schema["$defs"]["Linear"]["properties"]["in"]
    # `in:` takes a single name too, as every shipped spec writes it.
    assert {"type": "string"} in in_schema["anyOf"]
