"""The generated models obey the paper: gradient block, shared weights, the served light net.

Each spec variant is built by editing the shipped YAML text (gradient_block, KD on), compiled,
rendered and imported exactly as `rocketc train` does. Batches are tiny: these are unit tests.
"""

from __future__ import annotations

import pytest
import torch

from rocketc.compiler import Compiled

GRADIENT_SPECS = ("quickstart", "wrn16_1_interval")
MODES = ("booster", "shared", "none")


def _variant(spec_text, edit, name: str, mode: str, zscore: bool = False) -> str:
    """The shipped spec with `gradient_block: mode` and the KD term switched on.

    `zscore`: the hint standardises both nets' logits first (`normalize: zscore`).
    """
    text = spec_text(name)
    if zscore:
        text = edit(text, "reduction: mean}", "reduction: mean, normalize: zscore}")
    if "kd: {weight: 0.0}" in text:
        text = edit(text, "kd: {weight: 0.0}", "kd: {weight: 1.0}")
    else:
        text = edit(
            text, "  gradient_block: booster", "  kd: {weight: 1.0}\n  gradient_block: booster"
        )
    return edit(text, "gradient_block: booster", f"gradient_block: {mode}")


@pytest.fixture(scope="module")
def built(spec_text, edit, compile_spec_text, load_model):
    """(spec, mode) -> (Compiled, generated model module), each built once per module."""
    cache: dict = {}

    def get(name: str, mode: str = "booster", zscore: bool = False):
        if (name, mode, zscore) not in cache:
            text = _variant(spec_text, edit, name, mode, zscore)
            compiled = compile_spec_text(text, f"{name}.yaml")
            cache[name, mode, zscore] = (compiled, load_model(compiled).model)
        return cache[name, mode, zscore]

    return get


def _groups(net) -> dict[str, list[str]]:
    """Parameter names by what they belong to; tied light weights are their own group."""
    roles = net.param_roles()
    groups: dict[str, list[str]] = {"shared_layer": [], "light": [], "tied": [], "booster": []}
    for name in roles:
        owner = name.split(".", 1)[0]
        if owner == "light" and roles[name] == "shared":
            groups["tied"].append(name)
        else:
            groups["shared_layer" if owner == "shared" else owner].append(name)
    return groups


def _touched(net, names: list[str]) -> dict[str, bool]:
    params = dict(net.named_parameters())
    return {n: params[n].grad is not None and bool(params[n].grad.abs().sum() > 0) for n in names}


@pytest.mark.parametrize("zscore", [False, True], ids=["paper", "zscore"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", GRADIENT_SPECS)
def test_gradient_block(built, name, mode, zscore):
    compiled, model = built(name, mode, zscore)
    assert compiled.spec.loss.gradient_block == mode and compiled.spec.loss.kd.weight == 1.0
    assert compiled.spec.loss.hint.normalize == ("zscore" if zscore else "none")
    torch.manual_seed(0)
    net = model.RocketNet().train()
    inputs, target = model.example_inputs(2), model.example_targets(2)
    groups = _groups(net)
    assert groups["shared_layer"] and groups["light"] and groups["booster"]
    assert bool(groups["tied"]) == (name == "wrn16_1_interval")

    for term in ("hint", "kd"):
        net.zero_grad(set_to_none=True)
        losses = model.compute_loss(*net(*inputs), target)
        losses[term].backward()
        touched = {group: _touched(net, names) for group, names in groups.items()}

        def all_(group, want, term=term, touched=touched):
            wrong = [n for n, t in touched[group].items() if t != want]
            verb = "got" if want is False else "missed"
            assert not wrong, f"{mode}/{term}: {group} params {verb} gradient: {wrong[:5]}"

        all_("light", True)
        all_("tied", True)  # tied weights are light-layer weights: the hint trains them
        if mode == "booster":
            all_("booster", False)
            all_("shared_layer", True)
        elif mode == "shared":
            all_("booster", False)
            all_("shared_layer", False)
        else:
            all_("booster", True)
            all_("shared_layer", True)


@pytest.mark.parametrize("name", GRADIENT_SPECS)
def test_light_net_is_the_served_half(built, name):
    compiled, model = built(name)
    torch.manual_seed(0)
    rocket = model.RocketNet()
    rocket(*model.example_inputs(2))  # move the BatchNorm statistics off their initial values
    rocket.eval()
    light = rocket.light_net()
    inputs = model.example_inputs(2)
    with torch.no_grad():
        assert torch.equal(light(*inputs), rocket(*inputs)[0])

    rocket_params = {id(p): n for n, p in rocket.named_parameters()}
    light_ids = [id(p) for p in light.parameters()]
    assert set(light_ids) <= set(rocket_params), "light_net() copied weights"
    booster_only = {id(p) for n, p in rocket.named_parameters() if n.startswith("booster.")}
    assert booster_only and not booster_only & set(light_ids)

    counts = compiled.param_counts()
    assert sum(p.numel() for p in light.parameters()) == counts["light_net"]
    assert sum(p.numel() for p in rocket.parameters()) == counts["total"]
    booster_net = rocket.booster_net()
    assert sum(p.numel() for p in booster_net.parameters()) == counts["booster_net"]
    assert {id(p) for p in booster_net.parameters()} <= set(rocket_params)
    with torch.no_grad():
        assert torch.equal(booster_net(*inputs), rocket(*inputs)[1])

    # A freshly built LightNet takes the trained light net's weights, key for key.
    standalone = model.LightNet()
    standalone.load_state_dict(light.state_dict())
    standalone.eval()
    with torch.no_grad():
        assert torch.equal(standalone(*inputs), light(*inputs))
    assert sum(p.numel() for p in standalone.parameters()) == counts["light_net"]


def test_wrn16_1_interval_has_the_papers_sizes(built):
    compiled, model = built("wrn16_1_interval")
    counts = compiled.param_counts()
    assert counts["light_net"] == 175_066  # WRN-16-1
    assert counts["booster_net"] == 563_930  # WRN-40-1
    rocket = model.RocketNet()
    assert sum(p.numel() for p in rocket.light_net().parameters()) == 175_066
    assert sum(p.numel() for p in rocket.booster_net().parameters()) == 563_930
    assert sum(p.numel() for p in model.LightNet().parameters()) == 175_066


@pytest.mark.parametrize("name", GRADIENT_SPECS)
def test_param_roles_cover_every_parameter(built, name):
    compiled, model = built(name)
    rocket = model.RocketNet()
    roles = rocket.param_roles()
    assert list(roles) == [n for n, _ in rocket.named_parameters()]
    assert set(roles.values()) <= {"shared", "light", "booster"}
    booster_ids = {id(p) for p in rocket.booster.parameters()}
    for n, p in rocket.named_parameters():
        if n.startswith("light.") and id(p) in booster_ids:
            assert roles[n] == "shared", n
    by_role = {role: 0 for role in ("shared", "light", "booster")}
    params = dict(rocket.named_parameters())
    for n, role in roles.items():
        by_role[role] += params[n].numel()
    counts = compiled.param_counts()
    assert by_role == {role: counts[role] for role in by_role}
    tied = sum(1 for n in roles if n.startswith("light.") and roles[n] == "shared")
    assert tied == (14 if name == "wrn16_1_interval" else 0)


@pytest.fixture(scope="module")
def shipped_models(spec_paths, load_model):
    from rocketc.compiler import compile_file

    out = {}
    for path in spec_paths:
        compiled = compile_file(path)
        out[path.stem] = (compiled, load_model(compiled).model)
    return out


def test_every_shipped_model_matches_its_static_shapes_and_sizes(shipped_models):
    for name, (compiled, model) in shipped_models.items():
        torch.manual_seed(0)
        rocket = model.RocketNet().eval()
        inputs = model.example_inputs(1)
        light, booster = _stateful_shapes_match(compiled, rocket, inputs)
        want = (1, compiled.spec.out_features)
        assert tuple(light.shape) == want and tuple(booster.shape) == want, name
        assert sum(p.numel() for p in rocket.parameters()) == compiled.param_counts()["total"]


def _stateful_shapes_match(compiled: Compiled, rocket, inputs):
    """Every layer module's output has the shape infer_shapes predicted; returns the logits."""
    seen: dict[str, tuple] = {}
    hooks = []
    for role in ("shared", "light", "booster"):
        branch = getattr(rocket, role, None)
        for n in compiled.layers(role):
            module = getattr(branch, n, None)
            if module is not None:
                hooks.append(
                    module.register_forward_hook(
                        lambda _m, _i, out, n=n: seen.__setitem__(n, tuple(out.shape[1:]))
                    )
                )
    with torch.no_grad():
        logits = rocket(*inputs)
    for h in hooks:
        h.remove()
    assert seen, compiled.spec.name
    for n, shape in seen.items():
        assert shape == compiled.graph.nodes[n]["type"].shape, (compiled.spec.name, n)
    return logits


@pytest.mark.parametrize("name", ["ctr_movielens", "quickstart"])
def test_example_inputs_and_targets_feed_compute_loss(shipped_models, name):
    compiled, model = shipped_models[name]
    torch.manual_seed(0)
    rocket = model.RocketNet()
    target = model.example_targets(8)
    if compiled.spec.task == "binary":
        assert target.dtype == torch.float32 and set(target.tolist()) <= {0.0, 1.0}
    else:
        assert target.dtype == torch.int64
        assert 0 <= int(target.min()) and int(target.max()) < compiled.spec.num_classes
    losses = model.compute_loss(*rocket(*model.example_inputs(8)), target)
    assert set(losses) == set(model.LOSS_WEIGHTS) | {"total"}
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
