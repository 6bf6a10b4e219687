"""The op registry: every op is one registered model plus its macros, and nothing else lists ops.

A toy op registered here (with its macros in tests/toy_scale.jinja2, as a plugin would ship them)
compiles, draws and runs end to end without an edit to rocketc. Ties are checked on the built
model: each weight an op's tie rule names is the booster's own tensor, and no other is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

import pytest
import torch
from torch.nn import functional as F

from rocketc.backends.codegen import render
from rocketc.backends.templating import templates_dir
from rocketc.backends.viz import to_dot
from rocketc.compiler import Compiled, compile_file
from rocketc.compiler.ops import LayerBase, Port, TensorType, register_op, registered_ops
from rocketc.compiler.ops import registry as registry_module
from rocketc.compiler.ops.base import ACTIVATIONS, one_float, same_layout
from rocketc.compiler.spec import Spec, json_schema
from rocketc.errors import SpecError

TOY_MACROS = Path(__file__).with_name("toy_scale.jinja2")


def _macro_names(op: type[LayerBase]) -> set[str]:
    where = op.macros
    text = where.read_text() if isinstance(where, Path) else (templates_dir() / where).read_text()
    return set(re.findall(r"\{%-?\s*macro\s+(\w+)\(", text))


def _can_tie(op: type[LayerBase]) -> bool:
    return op.tie_paths is not LayerBase.tie_paths


def test_the_registry_is_the_catalogue():
    ops = registered_ops()
    assert list(ops)[:3] == ["linear", "mlp", "embedding"]  # module name order: dense first
    # + fm, cross, self_attention, layernorm (ops/interaction.py), target_attention
    # (ops/sequence.py), pooled_embedding, field_embeddings (ops/sparse.py)
    assert len(ops) == 19
    for name, op in ops.items():
        assert get_args(op.model_fields["op"].annotation) == (name,)


@pytest.mark.parametrize("name", sorted(registered_ops()))
def test_every_op_has_the_macros_its_model_promises(name):
    op = registered_ops()[name]
    macros = _macro_names(op)
    assert (name if op.stateful else f"call_{name}") in macros
    assert (f"tie_{name}" in macros) == _can_tie(op)
    assert set(op.helpers) <= macros


def test_one_list_of_activations():
    ops = registered_ops()
    assert get_args(ops["activation"].model_fields["fn"].annotation) == tuple(ACTIVATIONS)
    assert get_args(ops["mlp"].model_fields["activation"].annotation) == tuple(ACTIVATIONS)
    text = (templates_dir() / "ops.jinja2").read_text()
    for fn, spelled in ACTIVATIONS.items():
        assert spelled.module not in text, f"{fn}: the template decides instead of Python"


ACTIVATION_SPEC = """\
version: 1
name: act
task: multiclass
num_classes: 3
inputs: [{name: feats, kind: dense, shape: [5]}]
layers:
  - {id: light_act, op: activation, fn: @FN@, in: feats, role: light}
  - {id: light_out, op: linear, in: light_act, out_features: 3, role: light}
  - {id: booster_mlp, op: mlp, in: feats, units: [4], activation: @FN@, role: booster}
  - {id: booster_out, op: linear, in: booster_mlp, out_features: 3, role: booster}
heads: {light: light_out, booster: booster_out}
"""
TORCH_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


@pytest.mark.parametrize("fn", sorted(ACTIVATIONS))
def test_each_activation_computes_its_function(fn, compile_spec_text, load_model):
    assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS)
    model = load_model(compile_spec_text(ACTIVATION_SPEC.replace("@FN@", fn), "act.yaml")).model
    torch.manual_seed(0)
    rocket = model.RocketNet().eval()
    x = torch.randn(4, 5)
    want = TORCH_ACTIVATIONS[fn]
    with torch.no_grad():
        light, booster = rocket(x)
        assert torch.allclose(light, rocket.light.light_out(want(x)))
        first = rocket.booster.booster_mlp[0]
        assert torch.allclose(booster, rocket.booster.booster_out(want(first(x))))


def test_register_op_refuses_a_nameless_or_taken_op():
    class Nameless(LayerBase):
        pass

    with pytest.raises(TypeError, match="op: Literal"):
        register_op(Nameless)

    class Linear2(LayerBase):
        op: Literal["linear"]

    with pytest.raises(ValueError, match="already registered"):
        register_op(Linear2)
    assert registered_ops()["linear"] is not Linear2


# --- a toy op, defined outside rocketc ---------------------------------------------------------
@pytest.fixture
def toy_scale():
    """Register the `scale` op for one test, then restore the catalogue."""
    saved = dict(registry_module._OPS)

    @register_op
    class Scale(LayerBase):
        """y = x * s: a learned scale per feature."""

        op: Literal["scale"]

        macros = TOY_MACROS
        helpers = ("scale_class",)

        def infer(self, ins: list[Port]) -> TensorType:
            return one_float(self, ins)

        def num_params(self, ins: list[Port]) -> int:
            return ins[0].type.shape[-1]

        def init_args(self, ins: list[Port]) -> dict[str, Any]:
            return {"features": ins[0].type.shape[-1]}

        def tie_paths(self, ins, other, other_ins) -> list[tuple[str, int]]:
            width = ins[0].type.shape[-1]
            same_layout(self, other, features=(width, other_ins[0].type.shape[-1]))
            return [("scale", width)]

        def label(self, ins: list[Port]) -> str:
            return f"scale × {ins[0].type.shape[-1]}"

    yield Scale
    registry_module._OPS.clear()
    registry_module._OPS.update(saved)
    Spec.model_rebuild(force=True)


TOY_SPEC = """\
version: 1
name: toy
task: multiclass
num_classes: 3
inputs: [{name: feats, kind: dense, shape: [6]}]
layers:
  - {id: body, op: scale, in: feats, role: shared}
  - {id: booster_scale, op: scale, in: body, role: booster}
  - {id: light_scale, op: scale, in: body, role: light, tie: booster_scale}
  - {id: light_out, op: linear, in: light_scale, out_features: 3, role: light}
  - {id: booster_hidden, op: mlp, in: booster_scale, units: [16], role: booster}
  - {id: booster_out, op: linear, in: booster_hidden, out_features: 3, role: booster}
heads: {light: light_out, booster: booster_out}
"""


def test_a_registered_op_compiles_draws_and_runs_end_to_end(
    toy_scale, compile_spec_text, load_model
):
    assert "scale" in registered_ops()
    schema = json_schema()
    assert "Scale" in schema["$defs"]
    with pytest.raises(SpecError, match="'scale'"):  # the unknown-op message lists it
        compile_spec_text(TOY_SPEC.replace("op: scale, in: feats", "op: scal, in: feats"))

    compiled = compile_spec_text(TOY_SPEC, "toy.yaml")
    assert "scale × 6" in to_dot(compiled)
    text = render(compiled)["model.py"]
    assert text.count("class Scale(nn.Module):") == 1
    assert "self.light.light_scale.scale = self.booster.booster_scale.scale" in text

    model = load_model(compiled).model
    rocket = model.RocketNet()
    counts = compiled.param_counts()
    assert sum(p.numel() for p in rocket.parameters()) == counts["total"]
    assert rocket.light.light_scale.scale is rocket.booster.booster_scale.scale
    light = rocket.light_net().eval()
    assert sum(p.numel() for p in light.parameters()) == counts["light_net"]
    losses = model.compute_loss(*rocket(*model.example_inputs(4)), model.example_targets(4))
    losses["total"].backward()
    assert rocket.shared.body.scale.grad is not None
    torch.export.export(light, model.example_inputs(2))  # the served half exports alone


# --- ties ------------------------------------------------------------------------------------
TIES_SPEC = """\
version: 1
name: ties
task: multiclass
num_classes: 3
inputs:
  - {name: feats, kind: dense, shape: [6]}
  - {name: ids, kind: categorical, vocab: 11}
  - {name: image, kind: dense, shape: [2, 5, 5]}
layers:
  - {id: b_emb, op: embedding, in: ids, dim: 4, role: booster}
  - {id: l_emb, op: embedding, in: ids, dim: 4, role: light, tie: b_emb}
  - {id: b_conv, op: conv2d, in: image, out_channels: 3, kernel: 3, role: booster}
  - {id: l_conv, op: conv2d, in: image, out_channels: 3, kernel: 3, role: light, tie: b_conv}
  - {id: b_flat, op: flatten, in: b_conv, role: booster}
  - {id: l_flat, op: flatten, in: l_conv, role: light}
  - {id: b_cat, op: concat, in: [feats, b_emb, b_flat], role: booster}
  - {id: l_cat, op: concat, in: [feats, l_emb, l_flat], role: light}
  - {id: b_fc1, op: linear, in: b_cat, out_features: 8, role: booster}
  - {id: l_fc1, op: linear, in: l_cat, out_features: 8, role: light, tie: b_fc1}
  - {id: b_fc2, op: linear, in: b_fc1, out_features: 8, role: booster}
  - {id: l_fc2, op: linear, in: l_fc1, out_features: 8, role: light, tie: b_fc2}
  - {id: b_out, op: linear, in: b_fc2, out_features: 3, bias: false, role: booster}
  - {id: l_out, op: linear, in: l_fc2, out_features: 3, bias: false, role: light, tie: b_out}
heads: {light: l_out, booster: b_out}
"""


def _tied_pairs(compiled: Compiled) -> list[tuple[str, str]]:
    """(light parameter, booster parameter) for every weight the ops' tie rules name."""
    g = compiled.graph
    pairs = []
    for n in compiled.layers("light"):
        target = g.nodes[n]["layer"].tie
        for path, _ in g.nodes[n].get("tie_paths", []):
            dotted = re.sub(r"\[(\d+)\]", r"\1", path)  # "[0].conv1.weight" -> "0.conv1.weight"
            pairs.append((f"{n}.{dotted}", f"{target}.{dotted}"))
    return pairs


@pytest.mark.parametrize(
    ("name", "loops", "n_tied"),
    [("wrn16_1_interval", 1, 14), ("ties", 2, 8)],
)
def test_ties_reuse_exactly_the_weights_the_tie_rules_name(
    name, loops, n_tied, repo_root, compile_spec_text, load_model
):
    if name == "ties":
        compiled = compile_spec_text(TIES_SPEC, "ties.yaml")
    else:
        compiled = compile_file(repo_root / "specs" / f"{name}.yaml")
    text = render(compiled)["model.py"]
    # One short table per tie statement shape, not one line per weight.
    assert text.count("for light, booster in (") == loops
    rocket = load_model(compiled).model.RocketNet()
    pairs = _tied_pairs(compiled)
    assert len(pairs) == n_tied
    for light, booster in pairs:
        assert rocket.light.get_parameter(light) is rocket.booster.get_parameter(booster), light
    booster_ids = {id(p) for p in rocket.booster.parameters()}
    reused = {n for n, p in rocket.light.named_parameters() if id(p) in booster_ids}
    assert reused == {light for light, _ in pairs}
    assert sum(p.numel() for p in rocket.parameters()) == compiled.param_counts()["total"]


def test_wide_resnet_groups_are_built_in_a_loop(repo_root):
    text = render(compile_file(repo_root / "specs" / "wrn16_1_interval.yaml"))["model.py"]
    assert "self.booster_g2 = wide_group(16, 32, blocks=6, stride=2)" in text
    assert text.count("WideBasicBlock(") == 3  # the class, and wide_group's two
