"""The PyTorch back end: what codegen prints, and that the printed code computes the right thing.

Byte-for-byte output of the shipped specs is tests/test_golden.py's job; gradients are
tests/test_gradients.py's. These tests run generated models on tiny inputs.
"""

from __future__ import annotations

import ast
import inspect
import math
import re

import jinja2
import pytest
import torch
from torch.nn import functional as F

from rocketc.backends.codegen import render, write
from rocketc.backends.templating import environment
from rocketc.compiler.ops.base import MODULE_ATTRS

TINY = """\
# tiny: a spec small enough to build in a blink.
version: 1
name: tiny
description: @DESCRIPTION@
task: @TASK@
num_classes: 3
inputs:
  - {name: feats, kind: dense, shape: [6]}
layers:
  - {id: body, op: linear, in: feats, out_features: 8, role: shared}
  - {id: body_act, op: activation, fn: tanh, in: body, role: shared}
  - {id: light_out, op: linear, in: body_act, out_features: 3, role: light}
  - {id: booster_hidden, op: mlp, in: body_act, units: [16], norm: layernorm, role: booster}
  - {id: booster_out, op: linear, in: booster_hidden, out_features: 3, role: booster}
heads: {light: light_out, booster: booster_out}
loss:
  light: 0.5
  booster: 2.0
  hint: {weight: 1.5, on: @ON@, reduction: @REDUCTION@}
  kd: {weight: 0.25, temperature: 3.0}
  gradient_block: @MODE@
"""


def tiny(task="multiclass", on="logits", reduction="mean", mode="booster", description="x"):
    text = (
        TINY.replace("@TASK@", task)
        .replace("@ON@", on)
        .replace("@REDUCTION@", reduction)
        .replace("@MODE@", mode)
        .replace("@DESCRIPTION@", description)
    )
    if task == "binary":
        text = text.replace("num_classes: 3\n", "").replace("out_features: 3", "out_features: 1")
    return text


def test_templates_fail_loudly_on_missing_variables():
    assert environment().undefined is jinja2.StrictUndefined


@pytest.mark.parametrize(
    "description",
    [
        '\'three quotes """ inside\'',
        "'C:\\Users\\me and \\N{BULLET} and a trailing backslash \\'",
        '\'""""""\'',
        "'ends with a quote\"'",
    ],
)
def test_description_cannot_break_the_docstring(compile_spec_text, description):
    """A user's description is text, not code (it was pasted into the docstring raw)."""
    compiled = compile_spec_text(tiny(description=description), 'we"""ird\\.yaml')
    files = render(compiled)
    for name, text in files.items():
        tree = ast.parse(text)  # was a CodegenError or a SyntaxError before
        assert 'we"""ird\\.yaml' in ast.get_docstring(tree, clean=False), name
    doc = ast.get_docstring(ast.parse(files["model.py"]), clean=False)
    assert compiled.spec.description.strip() in " ".join(doc.split("\n"))


def test_module_attrs_cover_installed_torch():
    """Layer ids become nn.Module attributes; MODULE_ATTRS must name all of torch's own."""
    public = {n for n in dir(torch.nn.Module) if not n.startswith("_")}
    public |= {n for n in vars(torch.nn.Module()) if not n.startswith("_")}
    assert public <= MODULE_ATTRS, (
        f"add to rocketc.compiler.ops.base.MODULE_ATTRS: {public - MODULE_ATTRS}"
    )


def test_write_creates_the_directory(compile_spec_text, tmp_path):
    out = tmp_path / "a" / "b"
    written = write(compile_spec_text(tiny()), out)
    assert sorted(p.name for p in written) == ["model.py", "train.py"]
    assert all(p.parent == out and p.read_text() for p in written)


@pytest.mark.parametrize("mode", ["booster", "shared", "none"])
def test_detach_goes_exactly_where_the_mode_says(compile_spec_text, mode):
    text = render(compile_spec_text(tiny(mode=mode)))["model.py"]
    detaches = re.findall(r"^.*\.detach\(\).*$", text, flags=re.M)
    if mode == "none":
        assert detaches == []
        assert "teacher = booster_logits\n" in text
        return
    assert "    teacher = booster_logits.detach()" in detaches
    shared_read = "return self.light(body_act.detach()), self.booster(body_act)"
    assert (shared_read in text) == (mode == "shared")
    assert len(detaches) == (2 if mode == "shared" else 1)


def _expected_losses(task, on, reduction, light, booster, target):
    t = 3.0
    if task == "multiclass":
        light_ce, booster_ce = F.cross_entropy(light, target), F.cross_entropy(booster, target)
        s, b = (light, booster) if on == "logits" else (light.softmax(1), booster.softmax(1))
        kd = (
            F.kl_div(F.log_softmax(light / t, 1), F.softmax(booster / t, 1), reduction="batchmean")
            * t
            * t
        )
    else:
        light_ce = F.binary_cross_entropy_with_logits(light[:, 0], target)
        booster_ce = F.binary_cross_entropy_with_logits(booster[:, 0], target)
        s, b = (light, booster) if on == "logits" else (light.sigmoid(), booster.sigmoid())
        kd = F.binary_cross_entropy_with_logits(light / t, torch.sigmoid(booster / t)) * t * t
    hint = ((s - b) ** 2).mean() if reduction == "mean" else ((s - b) ** 2).sum(1).mean()
    total = 0.5 * light_ce + 2.0 * booster_ce + 1.5 * hint + 0.25 * kd
    return {"light": light_ce, "booster": booster_ce, "hint": hint, "kd": kd, "total": total}


@pytest.mark.parametrize("task", ["multiclass", "binary"])
@pytest.mark.parametrize(("on", "reduction"), [("logits", "mean"), ("probs", "sum")])
def test_compute_loss_matches_the_paper_formulas(
    compile_spec_text, load_model, task, on, reduction
):
    model = load_model(compile_spec_text(tiny(task, on, reduction))).model
    assert model.LOSS_WEIGHTS == {"light": 0.5, "booster": 2.0, "hint": 1.5, "kd": 0.25}
    torch.manual_seed(0)
    width = 3 if task == "multiclass" else 1
    light, booster = torch.randn(5, width), torch.randn(5, width)
    target = model.example_targets(5)
    got = model.compute_loss(light, booster, target)
    want = _expected_losses(task, on, reduction, light, booster, target)
    assert set(got) == set(want)
    for key in want:
        assert math.isclose(got[key].item(), want[key].item(), rel_tol=1e-5), key


def test_zero_weight_terms_are_not_computed(compile_spec_text, load_model):
    text = tiny().replace("kd: {weight: 0.25, temperature: 3.0}", "kd: {weight: 0}")
    text = text.replace("booster: 2.0", "booster: 0.0")
    model = load_model(compile_spec_text(text)).model
    assert model.LOSS_WEIGHTS == {"light": 0.5, "hint": 1.5}
    losses = model.compute_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]))
    assert set(losses) == {"light", "hint", "total"}


def test_inputs_and_shared_layers_may_be_named_like_the_logits(compile_spec_text, load_model):
    """RocketNet.forward once assigned `light_logits` before the booster read a shared output
    of that name, so the booster got the light net's logits."""
    text = (
        tiny()
        .replace("id: body_act", "id: light_logits")
        .replace("in: body_act", "in: light_logits")
    )
    text = text.replace("name: feats", "name: booster_logits").replace(
        "in: feats", "in: booster_logits"
    )
    generated = load_model(compile_spec_text(text))
    net = generated.model.RocketNet().eval()
    (x,) = generated.model.example_inputs(4)
    light, booster = net(x)
    shared = net.shared(x)
    assert torch.equal(booster, net.booster(shared))
    assert torch.equal(light, net.light(shared))


def test_train_script_settings_follow_the_spec(compile_spec_text, load_model):
    text = tiny() + (
        "train:\n  epochs: 3\n  batch_size: 7\n  clip_grad_norm: 2.5\n"
        "  optimizer: {name: sgd, lr: 0.05, nesterov: true}\n"
        "  schedule: {name: step, milestones: [1, 2], gamma: 0.5}\n"
    )
    settings = load_model(compile_spec_text(text)).train.Settings()
    assert (settings.epochs, settings.batch_size, settings.clip_grad_norm) == (3, 7, 2.5)
    assert (settings.lr, settings.nesterov, settings.milestones, settings.gamma) == (
        0.05,
        True,
        (1, 2),
        0.5,
    )
    # train.py prints only what the spec uses: SGD and the step schedule, no Adam, no cosine.
    assert not hasattr(settings, "betas") and not hasattr(settings, "min_lr")


# --- the compiled-template cache -------------------------------------------------------------
def test_cached_templates_render_byte_for_byte_what_fresh_ones_do(repo_root, tmp_path, monkeypatch):
    """Templates loaded from jinja2's bytecode cache give the same files as templates parsed
    from source, on the first run (cache written) and the next (cache read)."""
    from rocketc.backends import templating
    from rocketc.compiler import compile_file

    compiled = compile_file(repo_root / "specs" / "fashion_mnist_small.yaml")
    monkeypatch.setattr(templating, "bytecode_cache", lambda: None)
    environment.cache_clear()
    fresh = render(compiled)
    monkeypatch.setattr(
        templating, "bytecode_cache", lambda: templating._QuietBytecodeCache(str(tmp_path))
    )
    try:
        for _ in range(2):  # writes the cache, then reads it
            environment.cache_clear()
            assert render(compiled) == fresh
        assert list(tmp_path.glob("__jinja2_*.cache"))
    finally:
        environment.cache_clear()


def test_a_cache_that_cannot_be_written_costs_only_the_speed_up(repo_root, tmp_path, monkeypatch):
    from rocketc.backends import templating
    from rocketc.compiler import compile_file

    compiled = compile_file(repo_root / "specs" / "quickstart.yaml")
    missing = str(tmp_path / "missing")
    monkeypatch.setattr(
        templating, "bytecode_cache", lambda: templating._QuietBytecodeCache(missing)
    )
    environment.cache_clear()
    try:
        assert "class LightNet" in render(compiled)["model.py"]
    finally:
        environment.cache_clear()


# --- alike per-field embeddings: one ModuleDict built in a loop --------------------------------
FIELDS = """\
version: 1
name: fields
task: binary
inputs:
  - {name: user, kind: categorical, vocab: 50}
  - {name: item, kind: categorical, vocab: 40}
  - {name: city, kind: categorical, vocab: 9}
  - {name: price, kind: dense, shape: [3]}
layers:
@EMB@
  - {id: feats, op: concat, in: [@CAT@, price], role: shared}
  - {id: light_logit, op: linear, in: feats, out_features: 1, role: light}
  - {id: booster_logit, op: linear, in: feats, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
"""


def _fields(names: list[str]) -> str:
    emb = "\n".join(
        f"  - {{id: {n}_emb, op: embedding, in: {n}, dim: 4, role: shared}}" for n in names
    )
    return FIELDS.replace("@EMB@", emb).replace("@CAT@", ", ".join(f"{n}_emb" for n in names))


def test_three_alike_embeddings_are_one_module_dict(compile_spec_text, load_model):
    gen = load_model(compile_spec_text(_fields(["user", "item", "city"])))
    text = inspect.getsource(gen.model)
    assert (
        'SHARED_EMBEDDINGS = {\n    "user_emb": 50,\n    "item_emb": 40,\n    "city_emb": 9,\n}'
        in (text)
    )
    assert "self.embeddings = nn.ModuleDict(" in text and "self.user_emb" not in text
    torch.manual_seed(0)
    model = gen.model.RocketNet()
    keys = [k for k in model.state_dict() if "embeddings" in k]
    assert keys == [f"shared.embeddings.{n}_emb.weight" for n in ("user", "item", "city")]
    light, booster = model(*gen.model.example_inputs(5))
    assert light.shape == booster.shape == (5, 1)


def test_two_embeddings_stay_plain_lines(compile_spec_text, load_model):
    spec = _fields(["user", "item"]).replace("  - {name: city, kind: categorical, vocab: 9}\n", "")
    text = inspect.getsource(load_model(compile_spec_text(spec)).model)
    assert "ModuleDict" not in text and "self.user_emb = nn.Embedding(50, 4)" in text
