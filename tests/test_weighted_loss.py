"""Sample weights in the generated loss: every registered term is weighted, none changes without.

With `data.weight` each term is computed per example and averaged with the weights. Three
checks need no hand-written formula per term: unit weights give the unweighted spec's loss,
integer weights equal repeating rows, and a row of weight 0 sends no gradient anywhere.
"""

from __future__ import annotations

import pytest
import torch

from rocketc.backends.codegen import render
from rocketc.compiler.losses import LOSS_KINDS, LossKind, graph_terms

SPEC = """\
version: 1
name: weighted
task: @TASK@
num_classes: 4
inputs:
  - {name: image, kind: dense, shape: [2, 6, 6]}
layers:
  - {id: stem, op: conv2d, in: image, out_channels: 4, kernel: 3, padding: 1, role: shared}
  - {id: light_conv, op: conv2d, in: stem, out_channels: 4, kernel: 3, padding: 1, role: light}
  - {id: light_flat, op: flatten, in: light_conv, role: light}
  - {id: light_out, op: linear, in: light_flat, out_features: 4, role: light}
  - {id: booster_conv, op: conv2d, in: stem, out_channels: 6, kernel: 3, padding: 1, role: booster}
  - {id: booster_flat, op: flatten, in: booster_conv, role: booster}
  - {id: booster_out, op: linear, in: booster_flat, out_features: 4, role: booster}
heads: {light: light_out, booster: booster_out}
loss:
  hint: @HINT@
  kd: {weight: 0.5, temperature: 2.0}
  feature_hints:
    - {light: light_conv, booster: booster_conv, kind: mse}
    - {light: light_conv, booster: booster_conv, kind: attention}
data: {source: npz, path: unused.npz@WEIGHT@}
"""

HINTS = [
    "{weight: 1.0, on: logits, reduction: mean}",
    "{weight: 1.0, on: logits, reduction: sum}",
    "{weight: 1.0, on: probs, temperature: 2.0}",
]


def _spec(task: str, hint: str, weighted: bool) -> str:
    text = SPEC.replace("@TASK@", task).replace("@HINT@", hint)
    text = text.replace("@WEIGHT@", ", weight: w" if weighted else "")
    if task == "binary":
        text = text.replace("num_classes: 4\n", "").replace("out_features: 4", "out_features: 1")
    return text


def _batch(model, task: str, n: int, seed: int):
    torch.manual_seed(seed)
    (image,) = model.example_inputs(n)
    target = torch.randint(0, 4, (n,)) if task == "multiclass" else torch.randint(0, 2, (n,))
    return image, target if task == "multiclass" else target.float()


def _losses(model, net, image, target, **kwargs):
    return model.compute_loss(*net(image), target, **kwargs)


def test_every_registered_term_has_a_per_example_form():
    for name, kind in LOSS_KINDS.items():
        assert type(kind).per_example is not LossKind.per_example, name


@pytest.mark.parametrize("task", ["multiclass", "binary"])
@pytest.mark.parametrize("hint", HINTS)
def test_unit_weights_give_the_unweighted_loss(task, hint, compile_spec_text, load_model):
    plain = compile_spec_text(_spec(task, hint, weighted=False), "plain.yaml")
    weighted = compile_spec_text(_spec(task, hint, weighted=True), "weighted.yaml")
    names = [t.name for t in graph_terms(weighted.graph)]
    assert names == ["light", "booster", "hint", "kd", "feature_hint_0", "feature_hint_1"]
    assert "sample_weight=None" in render(weighted)["model.py"]
    assert "sample_weight" not in render(plain)["model.py"]
    a, b = load_model(plain).model, load_model(weighted).model
    torch.manual_seed(0)
    net = a.RocketNet()
    other = b.RocketNet()
    other.load_state_dict(net.state_dict())
    image, target = _batch(a, task, 16, 1)
    want = _losses(a, net, image, target)
    for sample_weight in (None, torch.ones(16), torch.full((16,), 2.5)):
        got = _losses(b, other, image, target, sample_weight=sample_weight)
        assert set(got) == set(want)
        for k in want:
            assert torch.allclose(got[k], want[k], atol=1e-6, rtol=1e-5), (k, sample_weight)


@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_integer_weights_equal_repeated_rows(task, compile_spec_text, load_model):
    model = load_model(compile_spec_text(_spec(task, HINTS[1], weighted=True))).model
    torch.manual_seed(0)
    net = model.RocketNet().eval()
    image, target = _batch(model, task, 12, 2)
    counts = torch.tensor([0, 1, 2, 3, 1, 1, 0, 2, 1, 4, 1, 1])
    rows = torch.repeat_interleave(torch.arange(12), counts)
    got = _losses(model, net, image, target, sample_weight=counts.float())
    want = _losses(model, net, image[rows], target[rows])
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6, rtol=1e-5), k


def test_a_row_of_weight_zero_sends_no_gradient(compile_spec_text, load_model):
    model = load_model(compile_spec_text(_spec("binary", HINTS[0], weighted=True))).model
    torch.manual_seed(0)
    net = model.RocketNet()
    image, target = _batch(model, "binary", 10, 3)
    weight = torch.ones(10)
    weight[[2, 7]] = 0.0
    _losses(model, net, image, target, sample_weight=weight)["total"].backward()
    with_zeros = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    kept = weight > 0
    _losses(model, net, image[kept], target[kept])["total"].backward()
    for name, p in net.named_parameters():
        assert torch.allclose(with_zeros[name], p.grad, atol=1e-6), name
