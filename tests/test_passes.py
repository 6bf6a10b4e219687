"""Per-pass fixtures: each tests/fixtures/<stage>/<case>.yaml against <case>.expected.

For the failing stages (load, spec, validate, infer_shapes) <case>.expected holds the
diagnostics, one `file:line:col: message` per line, the file name relative to the stage
directory exactly as `rocketc check` prints it when run there. For the good-path stage
insert_stop_gradients it holds the edges that get `.detach()`, one `u -> v` per line.

After a deliberate change of messages, refresh the expected files and review the diff:

    ROCKETC_UPDATE_FIXTURES=1 .venv/bin/pytest -q tests/test_passes.py
"""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import pytest

from rocketc.compiler import compile_file
from rocketc.compiler.losses import loss_node
from rocketc.compiler.passes import PASSES, infer_shapes, insert_stop_gradients, validate
from rocketc.compiler.passes.insert_stop_gradients import stop_gradient_edges
from rocketc.errors import GraphError, LoadError, RocketcError, ShapeError, SpecError

FIXTURES = Path(__file__).parent / "fixtures"
ERROR_STAGES = {
    "load": LoadError,
    "spec": SpecError,
    "validate": GraphError,
    "infer_shapes": ShapeError,
}
GOOD_STAGES = ("insert_stop_gradients",)
UPDATE = os.environ.get("ROCKETC_UPDATE_FIXTURES") == "1"


def _cases(stages) -> list:
    return [
        pytest.param(path, id=f"{path.parent.name}/{path.stem}")
        for stage in stages
        for path in sorted((FIXTURES / stage).glob("*.yaml"))
    ]


def _check_expected(case: Path, lines: list[str]) -> None:
    expected = case.with_suffix(".expected")
    text = "".join(f"{line}\n" for line in lines)
    if UPDATE:
        expected.write_text(text, encoding="utf-8")
        return
    assert expected.exists(), f"{expected} is missing; see this module's docstring"
    assert text.splitlines() == expected.read_text(encoding="utf-8").splitlines()


def test_every_stage_has_fixtures():
    for stage in (*ERROR_STAGES, *GOOD_STAGES):
        assert len(list((FIXTURES / stage).glob("*.yaml"))) >= 3, stage
    # viz/ holds inputs of the back end's tests (tests/test_viz.py), not of a pass.
    stray = {p.parent.name for p in FIXTURES.glob("*/*")} - {*ERROR_STAGES, *GOOD_STAGES, "viz"}
    assert not stray, f"fixture directories no test reads: {stray}"
    for expected in FIXTURES.glob("*/*.expected"):
        assert expected.with_suffix(".yaml").exists(), f"{expected} has no spec"


@pytest.mark.parametrize("case", _cases(ERROR_STAGES))
def test_bad_spec_fixture(case: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(case.parent)  # diagnostics then name the file as a user would see it
    with pytest.raises(RocketcError) as info:
        compile_file(case.name)
    error = info.value
    # The exact class proves the earlier stages passed: the fixture tests the stage it is in.
    assert type(error) is ERROR_STAGES[case.parent.name], str(error)

    source_lines = case.read_text(encoding="utf-8").splitlines()
    positions = []
    for d in error.diagnostics:
        assert d.file == case.name
        assert d.pos is not None, f"no position: {d}"
        assert 1 <= d.pos.line <= len(source_lines) + 1, d
        if d.pos.line <= len(source_lines):
            assert 1 <= d.pos.col <= len(source_lines[d.pos.line - 1]) + 1, d
        positions.append((d.pos.line, d.pos.col))
    assert positions == sorted(positions), "diagnostics must come sorted by position"
    assert str(error).splitlines() == [str(d) for d in error.diagnostics]
    _check_expected(case, [str(d) for d in error.diagnostics])


@pytest.mark.parametrize("case", _cases(GOOD_STAGES))
def test_stop_gradient_fixture(case: Path):
    compiled = compile_file(case)
    _check_expected(case, [f"{u} -> {v}" for u, v in stop_gradient_edges(compiled.graph)])


REQUIRED = {
    "load": {"bad_yaml_syntax", "duplicate_key"},
    "spec": {
        "unknown_op",
        "missing_field",
        "extra_field",
        "bad_role",
        "bad_identifier",
        "reserved_ids",
        "multiclass_without_num_classes",
        "wrong_data_source",
        "wrong_schedule_name",
        "several_errors",
        "hint_temperature_on_logits",
        "zscore_on_binary",
        "feature_hint_bad_fields",
    },
    "validate": {
        "duplicate_id",
        "unknown_reference",
        "wrong_arity",
        "cycle",
        "self_loop",
        "light_reads_booster",
        "shared_reads_light",
        "head_missing",
        "head_wrong_role",
        "heads_same",
        "layer_feeds_no_head",
        "shared_feeds_only_booster",
        "shared_feeds_only_light",
        "tie_on_non_light",
        "tie_target_missing",
        "tie_target_not_booster",
        "tie_different_op",
        "two_layers_tie_one_target",
        "several_errors",
        "feature_hint_unknown_layer",
        "feature_hint_wrong_roles",
    },
    "infer_shapes": {
        "linear_fed_image",
        "conv_on_vector",
        "mlp_on_image",
        "concat_mismatch",
        "add_mismatch",
        "embedding_on_dense",
        "linear_on_categorical",
        "kernel_too_big",
        "head_width",
        "binary_head_with_10_outputs",
        "tie_width_mismatch",
        "tie_more_blocks",
        "several_errors",
        "feature_hint_spatial_mismatch",
        "feature_hint_attention_on_vectors",
    },
    "insert_stop_gradients": {
        "booster",
        "shared",
        "none",
        "feature_hints_booster",
        "feature_hints_shared",
        "feature_hints_none",
    },
}


def test_the_catalogue_of_mistakes_is_complete():
    for stage, names in REQUIRED.items():
        present = {p.stem for p in (FIXTURES / stage).glob("*.yaml")}
        assert names <= present, f"{stage}: missing fixtures {sorted(names - present)}"


def test_several_errors_are_reported_together():
    """The several_errors fixtures really hold several diagnostics, all at once."""
    for stage in ("spec", "validate", "infer_shapes"):
        lines = (FIXTURES / stage / "several_errors.expected").read_text().splitlines()
        assert len(lines) >= 3, stage


# --- the pipeline and the passes on shipped specs --------------------------------------------
def test_pass_order():
    assert PASSES == (validate, infer_shapes, insert_stop_gradients)


@pytest.fixture(scope="module")
def shipped(spec_paths):
    return {p.stem: compile_file(p) for p in spec_paths}


def test_infer_shapes_annotates_every_layer(shipped):
    for compiled in shipped.values():
        g = compiled.graph
        for n in compiled.layers():
            assert "type" in g.nodes[n] and "params" in g.nodes[n], n
        want = (compiled.spec.out_features,)
        for head in (compiled.spec.heads.light, compiled.spec.heads.booster):
            assert g.nodes[head]["type"].shape == want


def test_layer_order_is_topological_and_stable(shipped):
    for compiled in shipped.values():
        order = compiled.layers()
        position = {n: i for i, n in enumerate(order)}
        for u, v in compiled.graph.edges:
            if u in position and v in position:
                assert position[u] < position[v]
        assert order == compiled.layers()
        assert nx.is_directed_acyclic_graph(compiled.graph)


@pytest.mark.parametrize("mode", ["booster", "shared", "none"])
def test_stop_gradient_edges_follow_the_mode(shipped, spec_text, compile_spec_text, edit, mode):
    """On every shipped spec: exactly the edges the mode names are cut, nothing else."""
    for name, compiled in shipped.items():
        text = spec_text(name)
        old = f"gradient_block: {compiled.spec.loss.gradient_block}"
        variant = compile_spec_text(edit(text, old, f"gradient_block: {mode}"), f"{name}.yaml")
        g = variant.graph
        booster_head = variant.spec.heads.booster
        want = set()
        if mode != "none":
            want |= {
                (booster_head, loss_node(t))
                for t in ("hint", "kd")
                if g.has_edge(booster_head, loss_node(t))
            }
        if mode == "shared":
            want |= {
                (u, v)
                for u, v in g.edges
                if g.nodes[u]["role"] == "shared" and g.nodes[v]["role"] == "light"
            }
        assert set(stop_gradient_edges(g)) == want, name
        assert want or mode == "none", f"{name}: mode {mode} cuts nothing"
