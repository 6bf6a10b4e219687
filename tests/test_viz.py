"""The sharing diagram: golden DOT text per shipped spec, rendering, and the missing-`dot` path.

The DOT text of every `specs/<name>.yaml` is committed as `tests/golden/viz/<name>.dot`; a
mismatch fails with a unified diff. After an intended change (to the diagram or to a spec),
refresh the golden files and review their diff:

    ROCKETC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_viz.py
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rocketc.backends.viz
from rocketc.backends.viz import to_dot
from rocketc.backends.viz_fold import FOLD_MIN, find_folds
from rocketc.cli import app
from rocketc.compiler import compile_file, compile_text
from rocketc.compiler.passes.insert_stop_gradients import stop_gradient_edges

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden" / "viz"
UPDATE = os.environ.get("ROCKETC_UPDATE_GOLDEN") == "1"
HAVE_DOT = shutil.which("dot") is not None
EDGE = re.compile(r'^\s*"?([\w.]+)"? -> "?([\w.]+)"?(?: \[(.*)\])?$')


def quickstart(mode: str = "booster", kd: float = 0.0):
    text = (ROOT / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
    text = text.replace("gradient_block: booster", f"gradient_block: {mode}")
    text = text.replace("kd: {weight: 0.0}", f"kd: {{weight: {kd}}}")
    return compile_text(text, str(ROOT / "specs" / "quickstart.yaml"))


def edges(dot_text: str, marker: str) -> set[tuple[str, str]]:
    """(tail, head) of every DOT edge whose attributes contain `marker`."""
    found = set()
    for line in dot_text.splitlines():
        m = EDGE.match(line)
        if m and marker in (m.group(3) or ""):
            found.add((m.group(1), m.group(2)))
    return found


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_dot_matches_golden(spec: Path):
    text = to_dot(compile_file(spec))
    golden = GOLDEN / f"{spec.stem}.dot"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}; run with ROCKETC_UPDATE_GOLDEN=1"
    want = golden.read_text(encoding="utf-8")
    if text != want:
        diff = "".join(
            difflib.unified_diff(
                want.splitlines(True), text.splitlines(True), str(golden), f"to_dot({spec.name})"
            )
        )
        pytest.fail(f"DOT differs from {golden.name} (ROCKETC_UPDATE_GOLDEN=1 refreshes):\n" + diff)


def test_every_golden_file_has_a_spec():
    assert sorted(p.stem for p in GOLDEN.glob("*.dot")) == [p.stem for p in SPECS]


def test_dot_is_deterministic():
    spec = ROOT / "specs" / "ctr_movielens.yaml"
    assert to_dot(compile_file(spec)) == to_dot(compile_file(spec))


@pytest.mark.parametrize(
    "mode, kd, expected",
    [
        ("booster", 0.5, {("booster_logits", "loss.hint"), ("booster_logits", "loss.kd")}),
        (
            "shared",
            0.5,
            {
                ("booster_logits", "loss.hint"),
                ("booster_logits", "loss.kd"),
                ("embed_act", "light_hidden"),
            },
        ),
        ("none", 0.5, set()),
        ("booster", 0.0, {("booster_logits", "loss.hint")}),
    ],
)
def test_stop_gradient_edges_exactly_where_the_pass_put_them(mode, kd, expected):
    compiled = quickstart(mode, kd)
    drawn = edges(to_dot(compiled), "stop-grad")
    assert drawn == expected
    from_pass = {(u, v.replace("loss:", "loss.")) for u, v in stop_gradient_edges(compiled.graph)}
    assert drawn == from_pass


def test_shared_mode_marks_every_shared_to_light_edge_of_ctr():
    text = (ROOT / "specs" / "ctr_movielens.yaml").read_text(encoding="utf-8")
    compiled = compile_text(text.replace("gradient_block: booster", "gradient_block: shared"))
    assert ("features", "light_tower") in edges(to_dot(compiled), "stop-grad")
    assert ("features", "booster_tower") not in edges(to_dot(compiled), "stop-grad")


def test_tie_links_of_the_interval_spec():
    dot_text = to_dot(compile_file(ROOT / "specs" / "wrn16_1_interval.yaml"))
    assert edges(dot_text, "tied weights") == {
        ("light_g1", "booster_g1"),
        ("light_g2", "booster_g2"),
        ("light_g3", "booster_g3"),
    }
    tie_line = next(line for line in dot_text.splitlines() if "tied weights" in line)
    assert "dotted" in tie_line and "constraint=false" in tie_line
    assert "9,216 tied" in dot_text  # the light node says how much of it is tied
    assert (
        edges(to_dot(compile_file(ROOT / "specs" / "wrn16_1_bottom.yaml")), "tied weights") == set()
    )


def test_nodes_show_op_shape_params_and_the_summary():
    compiled = compile_file(ROOT / "specs" / "quickstart.yaml")
    dot_text = to_dot(compiled)
    counts = compiled.param_counts()
    assert f"light net <b>{counts['light_net']:,}</b>" in dot_text
    assert f"<b>{counts['booster_net']:,}</b>" in dot_text
    ratio = counts["booster_net"] / counts["light_net"]
    assert f"({ratio:.1f}× light)" in dot_text
    assert "<b>booster_hidden</b><br/>mlp 512 → 256, dropout 0.1" in dot_text
    assert "(B, 256)<br/>164,608 params" in dot_text
    # Loss terms by their one name (as in LOSS_WEIGHTS and the audit), then what they compute.
    assert "<b>light</b> × 1<br/><font point-size='9'>cross-entropy, light logits" in dot_text
    assert "<b>booster</b> × 1<br/><font point-size='9'>cross-entropy, booster logits" in dot_text
    assert "<b>hint</b> × 1<br/><font point-size='9'>MSE of probs (mean)" in dot_text
    for role in ("shared", "light", "booster"):
        assert f"subgraph cluster_{role} " in dot_text


def test_renders_svg(tmp_path, monkeypatch):
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot is not installed")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["viz", str(ROOT / "specs" / "wrn16_1_interval.yaml")])
    assert result.exit_code == 0, result.output
    svg = (tmp_path / "wrn16_1_interval.svg").read_text(encoding="utf-8")  # default name
    assert "<svg" in svg and "booster_g3" in svg and "tied weights" in svg
    assert "wrote wrn16_1_interval.svg" in result.stdout


def test_dot_suffix_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(rocketc.backends.viz.shutil, "which", lambda name: None)
    out = tmp_path / "sub" / "pair.dot"
    result = CliRunner().invoke(
        app, ["viz", str(ROOT / "specs" / "quickstart.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == to_dot(compile_file(ROOT / "specs/quickstart.yaml"))


@pytest.mark.parametrize("how", ["which", "path"])
def test_missing_dot_writes_the_dot_file_and_says_how_to_install(tmp_path, monkeypatch, how):
    if how == "which":  # the up-front check
        monkeypatch.setattr(rocketc.backends.viz.shutil, "which", lambda name: None)
    else:  # dot vanished between the check and the call: graphviz.ExecutableNotFound
        monkeypatch.setattr(rocketc.backends.viz.shutil, "which", lambda name: "/usr/bin/dot")
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "sharing.png"
    result = CliRunner().invoke(
        app, ["viz", str(ROOT / "specs" / "quickstart.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 1
    assert not out.exists()
    assert (tmp_path / "sharing.dot").read_text(encoding="utf-8").startswith("digraph")
    assert "apt-get install graphviz" in result.stderr
    assert "brew install graphviz" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_suffix_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(
        app, ["viz", str(ROOT / "specs" / "quickstart.yaml"), "-o", str(tmp_path / "x.jpeg")]
    )
    assert result.exit_code == 1
    assert "use one of .svg, .png, .pdf, .dot" in result.stderr


def test_building_the_diagram_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rocketc.cli import app\n"
        f"r = CliRunner().invoke(app, ['viz', {str(ROOT / 'specs' / 'ctr_movielens.yaml')!r},"
        f" '-o', {str(tmp_path / 'ctr.dot')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'rocketc viz imported torch'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ctr.dot").is_file()


# --- folding wide fans (rocketc.backends.viz_fold) ----------------------------------------------
WIDE = ROOT / "tests" / "fixtures" / "viz" / "ctr_wide.yaml"
HEADS = """
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_hidden, op: mlp, in: features, units: [32], role: booster}
  - {id: booster_logit, op: linear, in: booster_hidden, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
"""


def fan_spec(fields: int, dims: list[int] | None = None) -> str:
    """`fields` categorical inputs, each embedded (shared) and concatenated under two heads."""
    dims = dims or [8] * fields
    inputs = "".join(
        f"  - {{name: f{i}, kind: categorical, vocab: {10 + i}}}\n" for i in range(fields)
    )
    layers = "".join(
        f"  - {{id: f{i}_emb, op: embedding, in: f{i}, dim: {dims[i]}, role: shared}}\n"
        for i in range(fields)
    )
    concat = ", ".join(f"f{i}_emb" for i in range(fields))
    return (
        f"version: 1\nname: fan\ntask: binary\ninputs:\n{inputs}layers:\n{layers}"
        f"  - {{id: features, op: concat, in: [{concat}], role: shared}}{HEADS}"
    )


def node_lines(dot_text: str) -> dict[str, str]:
    """DOT node id -> its statement, for every node (not edge, not attribute) statement."""
    found = {}
    for line in dot_text.splitlines():
        m = re.match(r'^\s*"?([\w.]+)"? \[label=', line)
        if m:
            found[m.group(1)] = line
    return found


def test_wide_ctr_folds_36_embeddings_into_one_node():
    compiled = compile_file(WIDE)
    dot_text = to_dot(compiled)
    (fold,) = find_folds(compiled)
    assert len(fold.layers) == 36 and fold.consumer == "features"
    nodes = node_lines(dot_text)
    label = nodes[fold.id]
    total = sum(compiled.graph.nodes[n]["params"] for n in fold.layers)
    assert f"<b>36 embeddings</b>  ·  {total:,} params  ·  each (B, 16)" in label
    assert label.count("→</font>") == 36  # one row per embedding, the header has no arrow
    assert "user_id</font>" in label and "50,000 × 16</font>" in label
    # Neither the folded layers nor their inputs are drawn on their own; one edge leaves the fold.
    hidden = set(fold.layers + fold.inputs)
    assert not hidden & set(nodes)
    drawn = edges(dot_text, "")
    assert not {end for edge in drawn for end in edge} & hidden
    assert {u for u, v in drawn if v == "features"} == {fold.id}
    assert to_dot(compile_file(WIDE)) == dot_text  # deterministic


def test_wide_ctr_renders_narrow(tmp_path):
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot is not installed")
    svg = rocketc.backends.viz.render(compile_file(WIDE), tmp_path / "wide.svg").read_text("utf-8")
    width = float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))
    assert width < 1000, f"{width}pt wide; unfolded, the 36 fields took 5,464pt"


def test_ctr_movielens_folds_its_embeddings_and_keeps_the_genre_projection():
    compiled = compile_file(ROOT / "specs" / "ctr_movielens.yaml")
    (fold,) = find_folds(compiled)
    assert fold.layers == (
        "user_emb",
        "item_emb",
        "age_emb",
        "gender_emb",
        "occupation_emb",
        "zip_emb",
        "decade_emb",
    )
    assert fold.inputs[5] == "zipcode"  # the rows name the inputs, which are not drawn
    nodes = node_lines(to_dot(compiled))
    assert "<b>7 embeddings</b>  ·  172,288 params" in nodes[fold.id]
    assert {"genre", "genre_proj", "features"} <= set(nodes)  # a linear: another op, not folded


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_shipped_specs_fold_only_ctr(spec: Path):
    # ctr_movielens folds its 7 embeddings; ctr_synthetic's field group is one table node.
    assert bool(find_folds(compile_file(spec))) == spec.stem.startswith("ctr_")


def test_nothing_folds_below_the_threshold():
    below = to_dot(compile_text(fan_spec(FOLD_MIN - 1)))
    assert "fold." not in below
    assert {f"f{i}" for i in range(FOLD_MIN - 1)} <= set(node_lines(below))
    at = compile_text(fan_spec(FOLD_MIN))
    assert [len(f.layers) for f in find_folds(at)] == [FOLD_MIN]


def test_a_fold_of_mixed_shapes_gives_each_row_its_shape():
    label = node_lines(to_dot(compile_text(fan_spec(4, dims=[8, 8, 8, 4]))))["fold.f0_emb"]
    assert "each (B," not in label
    assert "13 × 4  (B, 4)</font>" in label and "10 × 8  (B, 8)</font>" in label


def test_an_input_read_twice_keeps_its_readers_out_of_the_fold():
    text = (
        fan_spec(5)
        .replace("in: [f0_emb,", "in: [f0_id, f0_emb,")
        .replace(
            "  - {id: features",
            "  - {id: f0_id, op: embedding, in: f0, dim: 2, role: shared}\n  - {id: features",
        )
    )
    (fold,) = find_folds(compile_text(text))
    assert fold.layers == ("f1_emb", "f2_emb", "f3_emb", "f4_emb")


def test_tied_layers_and_their_targets_stay_out_of_folds():
    inputs, layers = [], []
    for role in ("light", "booster"):
        for i in range(5):
            inputs.append(f"  - {{name: {role}_f{i}, kind: categorical, vocab: 10}}")
            tie = ", tie: booster_e0" if (role, i) == ("light", 0) else ""
            layers.append(
                f"  - {{id: {role}_e{i}, op: embedding, in: {role}_f{i}, dim: 4, "
                f"role: {role}{tie}}}"
            )
        cat = ", ".join(f"{role}_e{i}" for i in range(5))
        layers += [
            f"  - {{id: {role}_cat, op: concat, in: [{cat}], role: {role}}}",
            f"  - {{id: {role}_logit, op: linear, in: {role}_cat, out_features: 1, role: {role}}}",
        ]
    compiled = compile_text(
        "version: 1\nname: tied\ntask: binary\ninputs:\n"
        + "\n".join(inputs)
        + "\nlayers:\n"
        + "\n".join(layers)
        + "\nheads: {light: light_logit, booster: booster_logit}\n"
    )
    folds = find_folds(compiled)
    assert [f.layers for f in folds] == [
        tuple(f"{role}_e{i}" for i in range(1, 5)) for role in ("light", "booster")
    ]
    dot_text = to_dot(compiled)
    assert edges(dot_text, "tied weights") == {("light_e0", "booster_e0")}
    assert {"light_e0", "booster_e0", "light_f0", "booster_f0"} <= set(node_lines(dot_text))
    assert edges(dot_text, "") >= {
        ("fold.light_e1", "light_cat"),
        ("fold.booster_e1", "booster_cat"),
    }


def test_a_spec_without_description_renders(tmp_path):
    if not HAVE_DOT:
        pytest.skip("Graphviz's dot is not installed")
    compiled = compile_text(fan_spec(2))  # no `description:`; its empty <font> broke `dot`
    assert "<svg" in rocketc.backends.viz.render(compiled, tmp_path / "fan.svg").read_text("utf-8")
