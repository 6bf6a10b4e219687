"""The loss-term registry and the hint recipes: one set of names, warm-up, z-score, temperature.

Every value the generated code computes is checked against a formula written out here by hand
(not taken from the registry), on tiny tensors.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.nn import functional as F

from rocketc.backends.codegen import render
from rocketc.backends.viz import to_dot
from rocketc.compiler import compile_text
from rocketc.compiler.losses import LOSS_KINDS, graph_terms, loss_node, spec_terms
from rocketc.compiler.spec import Loss
from rocketc.experiments.variants import VARIANTS
from rocketc.train.audit import run_audit

TINY = """\
version: 1
name: tiny
task: @TASK@
num_classes: 4
inputs:
  - {name: feats, kind: dense, shape: [6]}
layers:
  - {id: body, op: linear, in: feats, out_features: 8, role: shared}
  - {id: body_act, op: activation, fn: tanh, in: body, role: shared}
  - {id: light_out, op: linear, in: body_act, out_features: 4, role: light}
  - {id: booster_hidden, op: mlp, in: body_act, units: [16], role: booster}
  - {id: booster_out, op: linear, in: booster_hidden, out_features: 4, role: booster}
heads: {light: light_out, booster: booster_out}
loss:
  hint: @HINT@
  kd: @KD@
  gradient_block: booster
"""


def tiny(hint="{weight: 1.0}", kd="{weight: 0.0}", task="multiclass") -> str:
    text = TINY.replace("@HINT@", hint).replace("@KD@", kd).replace("@TASK@", task)
    if task == "binary":
        text = text.replace("num_classes: 4\n", "").replace("out_features: 4", "out_features: 1")
    return text


def test_the_registry_names_the_four_classic_terms_in_order():
    assert list(LOSS_KINDS) == ["light", "booster", "hint", "kd", "feature_hint"]
    compiled = compile_text(tiny(kd="{weight: 0.5}"))
    assert [t.name for t in spec_terms(compiled.spec)] == ["light", "booster", "hint", "kd"]


def test_one_name_everywhere(compile_spec_text, load_model):
    """Graph nodes, LOSS_WEIGHTS, compute_loss keys, audit rows and diagram nodes agree."""
    compiled = compile_spec_text(tiny(kd="{weight: 0.5, warmup_epochs: 1}"))
    names = ["light", "booster", "hint", "kd"]
    assert [t.name for t in graph_terms(compiled.graph)] == names
    assert all(loss_node(n) in compiled.graph for n in names)
    model = load_model(compiled).model
    assert list(model.LOSS_WEIGHTS) == names
    light, booster = model.RocketNet()(*model.example_inputs(3))
    assert list(model.compute_loss(light, booster, model.example_targets(3))) == [*names, "total"]
    assert run_audit(compiled, batch_size=3).terms == names
    dot = to_dot(compiled)
    assert sorted(re.findall(r'^\s+"loss\.(\w+)" \[label=<<b>(\w+)</b>', dot, re.M)) == sorted(
        (n, n) for n in names
    )


def test_a_weight_of_zero_drops_the_term_everywhere(compile_spec_text):
    compiled = compile_spec_text(tiny(hint="{weight: 0.0}", kd="{weight: 1.0}"))
    assert [t.name for t in graph_terms(compiled.graph)] == ["light", "booster", "kd"]
    assert '"hint"' not in render(compiled)["model.py"]
    assert "loss.hint" not in to_dot(compiled)


# --- warm-up ---------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [1, 4])
def test_warmup_values_per_epoch(compile_spec_text, load_model, epochs):
    """Epoch e (0-based) trains the hint at weight * min(1, e / W); other terms are untouched."""
    text = tiny(hint=f"{{weight: 2.0, warmup_epochs: {epochs}}}", kd="{weight: 0.5}")
    model = load_model(compile_spec_text(text)).model
    assert model.WARMUP_EPOCHS == {"hint": epochs}
    want = {1: [0.0, 2.0, 2.0, 2.0], 4: [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]}[epochs]
    for epoch, hint in enumerate(want):
        weights = model.loss_weights(epoch)
        assert weights == {"light": 1.0, "booster": 1.0, "hint": hint, "kd": 0.5}, epoch
    assert model.loss_weights(100) == model.LOSS_WEIGHTS


def test_kd_warms_up_on_its_own_schedule(compile_spec_text, load_model):
    text = tiny(hint="{weight: 1.0, warmup_epochs: 2}", kd="{weight: 3.0, warmup_epochs: 3}")
    model = load_model(compile_spec_text(text)).model
    assert [(w["hint"], w["kd"]) for w in map(model.loss_weights, range(4))] == [
        (0.0, 0.0),
        (0.5, 1.0),
        (1.0, 2.0),
        (1.0, 3.0),
    ]


def test_without_warmup_the_weights_are_constant(compile_spec_text, load_model):
    model = load_model(compile_spec_text(tiny())).model
    assert not hasattr(model, "WARMUP_EPOCHS")
    assert all(model.loss_weights(e) == model.LOSS_WEIGHTS for e in range(3))


def test_the_training_loop_passes_the_epoch(compile_spec_text, load_model):
    """Each epoch's logged total is the sum of its terms at that epoch's weights."""
    generated = load_model(compile_spec_text(tiny(hint="{weight: 2.0, warmup_epochs: 2}")))
    model, train = generated.model, generated.train
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(*model.example_inputs(32), model.example_targets(32))
    loader = torch.utils.data.DataLoader(data, batch_size=32)
    logged = []
    settings = train.Settings(epochs=3, lr=0.0)  # lr 0: the terms stay put
    train.fit(model.RocketNet(), loader, settings, on_epoch_end=lambda e, x: logged.append(x))
    for epoch, losses in enumerate(logged):
        weights = model.loss_weights(epoch)
        total = sum(weights[k] * losses[k] for k in weights)
        assert math.isclose(losses["total"], total, rel_tol=1e-6), epoch
    assert logged[0]["hint"] > 0  # computed, and logged, even while its weight is 0
    assert math.isclose(logged[0]["total"], logged[0]["light"] + logged[0]["booster"], rel_tol=1e-6)


# --- z-score and temperature -------------------------------------------------------------------
def _zscore(z: torch.Tensor) -> torch.Tensor:
    return (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, keepdim=True) + 1e-7)


@pytest.mark.parametrize(
    ("hint", "formula"),
    [
        ("{on: logits, normalize: zscore}", lambda s, t: F.mse_loss(_zscore(s), _zscore(t))),
        (
            "{on: probs, normalize: zscore, temperature: 2.0, reduction: sum}",
            lambda s, t: (
                ((F.softmax(_zscore(s) / 2, 1) - F.softmax(_zscore(t) / 2, 1)) ** 2).sum(1).mean()
            ),
        ),
        (
            "{on: probs, temperature: 3.0}",
            lambda s, t: F.mse_loss(F.softmax(s / 3, 1), F.softmax(t / 3, 1)),
        ),
    ],
)
def test_hint_recipes_compute_the_formula(compile_spec_text, load_model, hint, formula):
    model = load_model(compile_spec_text(tiny(hint=hint))).model
    torch.manual_seed(0)
    light, booster = torch.randn(5, 4), 7 * torch.randn(5, 4)
    got = model.compute_loss(light, booster, torch.tensor([0, 1, 2, 3, 0]))["hint"]
    assert math.isclose(got.item(), formula(light, booster).item(), rel_tol=1e-5)


def test_zscore_ignores_the_teachers_scale(compile_spec_text, load_model):
    """The point of the recipe: a booster with 10x larger logits gives the same hint."""
    model = load_model(compile_spec_text(tiny(hint="{on: logits, normalize: zscore}"))).model
    torch.manual_seed(0)
    light, booster, target = torch.randn(6, 4), torch.randn(6, 4), torch.zeros(6).long()
    small = model.compute_loss(light, booster, target)["hint"]
    large = model.compute_loss(light, 10 * booster + 3, target)["hint"]
    assert torch.allclose(small, large, atol=1e-6)


def test_binary_temperature_is_a_sigmoid_of_z_over_t(compile_spec_text, load_model):
    text = tiny(hint="{on: probs, temperature: 2.0}", task="binary")
    model = load_model(compile_spec_text(text)).model
    light, booster = torch.tensor([[0.5], [-1.0]]), torch.tensor([[4.0], [2.0]])
    got = model.compute_loss(light, booster, torch.tensor([1.0, 0.0]))["hint"]
    want = F.mse_loss(torch.sigmoid(light / 2), torch.sigmoid(booster / 2))
    assert math.isclose(got.item(), want.item(), rel_tol=1e-6)


def test_defaults_print_the_same_code_as_before(compile_spec_text):
    """normalize: none and temperature 1 add nothing to the expression."""
    text = render(compile_spec_text(tiny(hint="{on: probs}")))["model.py"]
    assert '"hint": F.mse_loss(F.softmax(light_logits, dim=1), F.softmax(teacher, dim=1))' in text
    assert "zscore" not in text and "attention_distance" not in text


# --- the default recipe ------------------------------------------------------------------------
def test_the_default_loss_is_the_probability_hint_and_the_paper_one_setting_away():
    """rocketc's default (issue 19) is ablate's `rocket_hint_probs` row, level with the light net
    alone in every ablation of BENCHMARKS.md; `hint.on: logits` alone gives the paper's recipe,
    every key ablate's `rocket` row fixes."""
    default = Loss()
    hint = default.hint
    assert (hint.on, hint.weight, hint.temperature, hint.reduction) == ("probs", 1.0, 1.0, "mean")
    assert (hint.normalize, hint.warmup_epochs, default.kd.weight) == ("none", 0, 0.0)
    assert (default.light, default.booster, default.gradient_block) == (1.0, 1.0, "booster")
    assert default.feature_hints == []
    variants = {v.name: v for v in VARIANTS}
    paper = Loss.model_validate({"hint": {"on": "logits"}})
    for key, value in variants["rocket"].resolved({}).items():
        assert _at(paper, key) == value, key
    for key, value in variants["rocket_hint_probs"].resolved({}).items():
        assert _at(default, key) == value, key


def _at(loss: Loss, key: str):
    """The value of a dotted `loss.` key as `--set` writes it (`loss.hint.on`)."""
    value = loss
    for part in key.split(".")[1:]:
        value = getattr(value, part)
    return value
