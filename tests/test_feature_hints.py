"""Feature hints: what they train under each gradient_block, and that adapters never ship.

One tiny image spec carries four feature hints: `mse` through a 1x1-conv adapter, `attention`,
`mse` between equal-width vectors (no adapter) and `mse` from a light layer with no weights of
its own upstream. Which parameters each term may move is written out here by hand, parameter by
parameter, not derived from the loss registry.
"""

from __future__ import annotations

import re

import onnx
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rocketc.backends.codegen import render
from rocketc.backends.viz import to_dot
from rocketc.compiler import Compiled, compile_text
from rocketc.compiler.losses import graph_terms, loss_node
from rocketc.errors import GraphError, ShapeError
from rocketc.train.audit import run_audit
from rocketc.train.report import export_onnx

SPEC = """\
version: 1
name: fh
task: multiclass
num_classes: 3
inputs:
  - {name: image, kind: dense, shape: [1, 6, 6]}
layers:
  - {id: stem, op: conv2d, in: image, out_channels: 4, kernel: 3, padding: 1, role: shared}
  - {id: stem_act, op: activation, fn: relu, in: stem, role: shared}
  - {id: light_in, op: activation, fn: tanh, in: stem_act, role: light}
  - {id: light_conv, op: conv2d, in: light_in, out_channels: 2, kernel: 3, padding: 1, role: light}
  - {id: light_act, op: activation, fn: relu, in: light_conv, role: light}
  - {id: light_flat, op: flatten, in: light_act, role: light}
  - {id: light_hidden, op: linear, in: light_flat, out_features: 5, role: light}
  - {id: light_logits, op: linear, in: light_hidden, out_features: 3, role: light}
  - {id: booster_conv, op: conv2d, in: stem_act, out_channels: 8, kernel: 3, padding: 1,
     role: booster}
  - {id: booster_act, op: activation, fn: relu, in: booster_conv, role: booster}
  - {id: booster_flat, op: flatten, in: booster_act, role: booster}
  - {id: booster_hidden, op: linear, in: booster_flat, out_features: 5, role: booster}
  - {id: booster_logits, op: linear, in: booster_hidden, out_features: 3, role: booster}
heads: {light: light_logits, booster: booster_logits}
loss:
  hint: {weight: 1.0, on: logits, normalize: zscore}
  feature_hints:
    - {light: light_act, booster: booster_act, weight: 0.5}
    - {light: light_act, booster: booster_act, kind: attention}
    - {light: light_hidden, booster: booster_hidden, weight: 2.0, warmup_epochs: 2}
    - {light: light_in, booster: booster_act}
  gradient_block: booster
"""
MODES = ("booster", "shared", "none")
FEATURE_TERMS = ("feature_hint_0", "feature_hint_1", "feature_hint_2", "feature_hint_3")

# Modules whose parameters each term's gradient reaches, before any gradient block: the light
# side's upstream weights, its adapter, and (only without a block) the booster side's.
LIGHT_SIDE = {
    "feature_hint_0": {"shared.stem", "light.light_conv", "adapter.feature_hint_0"},
    "feature_hint_1": {"shared.stem", "light.light_conv"},
    "feature_hint_2": {"shared.stem", "light.light_conv", "light.light_hidden"},
    "feature_hint_3": {"shared.stem", "adapter.feature_hint_3"},  # light_in has no weights
}
BOOSTER_SIDE = {
    "feature_hint_0": {"shared.stem", "booster.booster_conv"},
    "feature_hint_1": {"shared.stem", "booster.booster_conv"},
    "feature_hint_2": {"shared.stem", "booster.booster_conv", "booster.booster_hidden"},
    "feature_hint_3": {"shared.stem", "booster.booster_conv"},
}


def reached_modules(mode: str, term: str) -> set[str]:
    if mode == "none":
        return LIGHT_SIDE[term] | BOOSTER_SIDE[term]
    if mode == "shared":  # the light branch reads the shared stem detached as well
        return LIGHT_SIDE[term] - {"shared.stem"}
    return LIGHT_SIDE[term]


@pytest.fixture(scope="module")
def built(compile_spec_text, load_model):
    cache: dict = {}

    def get(mode: str = "booster") -> tuple[Compiled, object]:
        if mode not in cache:
            text = SPEC.replace("gradient_block: booster", f"gradient_block: {mode}")
            compiled = compile_spec_text(text, "fh.yaml")
            cache[mode] = (compiled, load_model(compiled).model)
        return cache[mode]

    return get


def _modules_with_gradient(net) -> set[str]:
    return {
        name.rsplit(".", 1)[0]
        for name, p in net.named_parameters()
        if p.grad is not None and bool(p.grad.abs().sum() > 0)
    }


@pytest.mark.parametrize("mode", MODES)
def test_feature_hints_reach_exactly_their_side(built, mode):
    _, model = built(mode)
    torch.manual_seed(0)
    net = model.RocketNet().train()
    inputs, target = model.example_inputs(4), model.example_targets(4)
    for term in FEATURE_TERMS:
        net.zero_grad(set_to_none=True)
        model.compute_loss(*net(*inputs), target)[term].backward()
        assert _modules_with_gradient(net) == reached_modules(mode, term), (mode, term)


@pytest.mark.parametrize("mode", MODES)
def test_the_zscored_hint_never_reaches_booster_weights_under_the_block(built, mode):
    _, model = built(mode)
    torch.manual_seed(0)
    net = model.RocketNet().train()
    model.compute_loss(*net(*model.example_inputs(4)), model.example_targets(4))["hint"].backward()
    booster = {"booster.booster_conv", "booster.booster_hidden", "booster.booster_logits"}
    light = {"light.light_conv", "light.light_hidden", "light.light_logits"}
    stem = set() if mode == "shared" else {"shared.stem"}
    want = light | stem | (booster if mode == "none" else set())
    assert _modules_with_gradient(net) == want


@pytest.mark.parametrize("mode", MODES)
def test_the_audit_agrees(built, mode):
    """The audit's matrix, written out by hand: (shared, light, booster, adapter) per term."""
    compiled, _ = built(mode)
    result = run_audit(compiled, batch_size=4)
    Y, N = True, False
    block = mode != "none"
    shared = mode != "shared"
    want = {
        "light": (shared, Y, N, N),
        "booster": (Y, N, Y, N),
        "hint": (shared, Y, not block, N),
        "feature_hint_0": (shared, Y, not block, Y),
        "feature_hint_1": (shared, Y, not block, N),
        "feature_hint_2": (shared, Y, not block, N),
        "feature_hint_3": (shared, N, not block, Y),
    }
    groups = ("shared", "light", "booster", "adapter")
    got = {t: tuple(row[g] for g in groups) for t, row in result.matrix().items()}
    assert got == want
    assert result.ok, (result.flagged, result.problems)
    assert result.group_sizes["adapter"] == (2 * 8 + 8) + (4 * 8 + 8)


def test_adapters_are_trained_but_never_served(built, tmp_path):
    compiled, model = built()
    counts = compiled.param_counts()
    assert counts["adapter"] == 64
    torch.manual_seed(0)
    rocket = model.RocketNet()
    assert sum(p.numel() for p in rocket.parameters()) == counts["total"]
    assert set(rocket.param_roles().values()) == {"shared", "light", "booster", "adapter"}
    adapters = {id(p) for p in rocket.adapter.parameters()}
    light = rocket.light_net()
    assert not adapters & {id(p) for p in light.parameters()}
    assert sum(p.numel() for p in light.parameters()) == counts["light_net"]
    assert not any("adapter" in k for k in light.state_dict())
    assert sum(p.numel() for p in model.LightNet().parameters()) == counts["light_net"]

    # The served net computes what it computed without feature hints: the head's logits only.
    rocket.eval()
    inputs = model.example_inputs(3)
    with torch.no_grad():
        light_logits, booster_logits, features = rocket(*inputs)
        assert torch.equal(light(*inputs), light_logits)
        assert torch.equal(rocket.booster_net()(*inputs), booster_logits)
    assert list(features) == list(FEATURE_TERMS)
    assert (
        features["feature_hint_0"][0].shape == features["feature_hint_0"][1].shape == (3, 8, 6, 6)
    )

    path = tmp_path / "light.onnx"
    export_onnx(light.eval(), inputs, ["image"], path)
    graph = onnx.load(str(path)).graph
    shapes = [tuple(init.dims) for init in graph.initializer]
    for adapter in rocket.adapter.values():
        assert tuple(adapter.weight.shape) not in shapes
    assert [o.name for o in graph.output] == ["light_logits"]
    floats = sum(
        int(torch.tensor(init.dims).prod()) if init.dims else 1
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT
    )
    assert floats == counts["light_net"]


def test_the_diagram_and_the_graph_name_the_terms(built):
    compiled, _ = built()
    assert [t.name for t in graph_terms(compiled.graph)] == [
        "light",
        "booster",
        "hint",
        *FEATURE_TERMS,
    ]
    dot = to_dot(compiled)
    assert "MSE: light_act → 1×1 conv adapter 2 → 8 (24 params) vs booster_act" in dot
    assert "attention transfer: light_act vs booster_act" in dot
    assert "MSE: light_hidden vs booster_hidden, warm-up 2 epochs" in dot
    assert "MSE of z-scored logits (mean)" in dot
    assert "feature-hint adapters 64 (training only)" in dot
    assert 'booster_act -> "loss.feature_hint_0" [color="#d62728"' in dot  # stop-grad, red


def test_training_runs_with_feature_hints(built, load_model):
    """One epoch of the generated loop, and predict on RocketNet drops the features."""
    compiled, model = built()
    train = load_model(compiled).train
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(*model.example_inputs(16), model.example_targets(16))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    logged = []
    rocket = train.fit(
        model.RocketNet(),
        loader,
        train.Settings(epochs=1),
        on_epoch_end=lambda e, x: logged.append(x),
    )
    assert set(logged[0]) == {"light", "booster", "hint", *FEATURE_TERMS, "total"}
    light, booster = train.predict(rocket, loader, torch.device("cpu"))
    assert light.shape == booster.shape == (16, 3)


@pytest.mark.parametrize("mode", MODES)
def test_generated_code_detaches_the_booster_features_where_the_pass_says(built, mode):
    compiled, _ = built(mode)
    text = render(compiled)["model.py"]
    detached = re.findall(r"(feature_hint_\d)_booster\.detach\(\)", text)
    assert detached == ([] if mode == "none" else list(FEATURE_TERMS))
    assert ("read detached below" in text) == (mode != "none")


def test_specs_without_feature_hints_keep_the_plain_contract(compile_spec_text):
    text = SPEC.split("  feature_hints:")[0] + "  gradient_block: booster\n"
    files = render(compile_spec_text(text, "plain.yaml"))
    assert "features" not in files["model.py"] and "adapter" not in files["model.py"]
    assert (
        "def compute_loss(light_logits, booster_logits, target, weights=LOSS_WEIGHTS):"
        in (files["model.py"])
    )
    assert "light_logits, booster_logits = model(*inputs)" in files["train.py"]


def test_cli_audit_names_every_term_in_full(tmp_path):
    """The table keeps whole term names (they were cut to `feature_hin…` at 80 columns) and
    leaves out groups with no parameters (here: no tied weights)."""
    from typer.testing import CliRunner

    from rocketc.cli import app

    spec = tmp_path / "fh.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = CliRunner().invoke(app, ["audit", str(spec), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert set(FEATURE_TERMS) <= set(rows)
    assert "adapter" in result.stdout and "tied" not in result.stdout
    # shared, light, booster, adapter: a light side with no weights of its own, then an adapter.
    cells = rows["feature_hint_3"].split()[1:]
    assert (cells[0], cells[2], cells[3], cells[4]) == ("yes", "no", "no", "yes")


LAYER_IDS = [line.split("id: ")[1].split(",")[0] for line in SPEC.splitlines() if "{id: " in line]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    light=st.sampled_from([*LAYER_IDS, "image", "nope"]),
    booster=st.sampled_from([*LAYER_IDS, "image", "nope"]),
    kind=st.sampled_from(["mse", "attention"]),
)
@example(light="light_act", booster="booster_act", kind="mse")  # an adapter 2 -> 8
@example(light="light_hidden", booster="booster_hidden", kind="mse")  # equal widths: none
@example(light="light_hidden", booster="booster_hidden", kind="attention")  # vectors: error
@example(light="booster_act", booster="nope", kind="mse")  # wrong net, missing layer
def test_any_feature_hint_compiles_or_gets_a_positioned_error(light, booster, kind):
    """Whatever two names a user pairs, the compiler answers with an adapter decision or with
    errors at the hint's line, never a crash."""
    hints = f"    - {{light: {light}, booster: {booster}, kind: {kind}}}\n"
    text = SPEC.split("  feature_hints:\n")[0] + "  feature_hints:\n" + hints
    text += "  gradient_block: booster\n"
    line = text.splitlines().index(hints.rstrip("\n")) + 1
    try:
        compiled = compile_text(text, "fh.yaml")
    except (GraphError, ShapeError) as exc:
        assert all(d.pos is not None and d.pos.line == line for d in exc.diagnostics), str(exc)
        return
    g = compiled.graph
    assert g.nodes[light]["role"] == "light" and g.nodes[booster]["role"] == "booster"
    light_t, booster_t = g.nodes[light]["type"].shape, g.nodes[booster]["type"].shape
    assert len(light_t) == len(booster_t) and light_t[1:] == booster_t[1:]
    adapter = g.nodes[loss_node("feature_hint_0")]["adapter"]
    assert (adapter is not None) == (kind == "mse" and light_t[0] != booster_t[0])
    if adapter is not None:
        assert (adapter.in_width, adapter.out_width) == (light_t[0], booster_t[0])
