"""Property tests: whatever the input, rocketc answers with a RocketcError or a working model.

1. Arbitrary text, YAML-ish structures, random mutations and rewirings of the shipped specs
   either compile or raise a RocketcError subclass (never a KeyError, TypeError, networkx
   error, ...), and whatever compiles also renders.
2. Random legal MLP stacks (widths, depths, role arrangements, ties, modes) always compile, and
   a sample of them runs in torch with exactly the statically inferred shapes and sizes.
3. Random image stacks, legal or not: what compiles runs in torch with the inferred shapes,
   the rest is a ShapeError.

Example counts are kept small so the module runs in well under 30 s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocketc.backends.codegen import render
from rocketc.compiler import compile_text
from rocketc.compiler.load import load_text
from rocketc.compiler.ops import registered_ops
from rocketc.compiler.ops.base import ACTIVATIONS
from rocketc.errors import CodegenError, RocketcError, ShapeError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {p.stem: p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.yaml"))}
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def compiles_or_rocketc_error(text: str) -> None:
    """The property: a RocketcError (not a CodegenError: that is a rocketc bug) or a render."""
    try:
        compiled = compile_text(text, "fuzz.yaml")
    except CodegenError:
        raise
    except RocketcError as exc:
        assert exc.diagnostics and all(d.file == "fuzz.yaml" for d in exc.diagnostics)
        return
    render(compiled)  # whatever compiles must also render (a CodegenError here is a bug)


# --- 1. nothing but RocketcError -----------------------------------------------------------
@FAST
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    compiles_or_rocketc_error(text)


FIELD_NAMES = sorted(
    {
        "version",
        "name",
        "task",
        "num_classes",
        "inputs",
        "layers",
        "heads",
        "loss",
        "train",
        "data",
        "kind",
        "shape",
        "vocab",
        "id",
        "op",
        "in",
        "role",
        "tie",
        "out_features",
        "units",
        "light",
        "booster",
        "hint",
        "kd",
        "weight",
        "gradient_block",
        "source",
        "schedule",
        "optimizer",
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            *registered_ops(),
            "shared",
            "light",
            "booster",
            "dense",
            "categorical",
            "multiclass",
            "binary",
            "relu",
            "F",
            "self",
        ]
    )
)
YAMLISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@FAST
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), YAMLISH, max_size=8) | YAMLISH)
def test_yamlish_structures(data):
    compiles_or_rocketc_error(json.dumps(data))  # JSON is YAML


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


NASTY = (
    st.integers(1, 64)
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([0, -1, 1, 10**12, 2**63, -(2**63)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=10)
    | st.sampled_from(
        [
            *registered_ops(),
            "linearr",
            "ünïcödé",
            "λ",
            "变量",
            "x",
            "light",
            "booster",
            "shared",
            "stem",
            "image",
            "light_logits",
            "booster_logits",
            "__init__",
            "train",
        ]
    )
    | st.lists(st.text(max_size=5), max_size=3)
    | st.just({})
    | st.just([])
)


@st.composite
def mutated_specs(draw) -> str:
    name = draw(st.sampled_from(sorted(SHIPPED)))
    text = SHIPPED[name]
    if draw(st.booleans()):  # text-level: drop a line or splice in some characters
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            del lines[i]
        else:
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.text(max_size=4)) + line[j:]
        return "".join(lines)
    data = load_text(text).data
    names = [i["name"] for i in data["inputs"]] + [layer["id"] for layer in data["layers"]]
    graph_edits = draw(st.integers(0, 2))
    for _ in range(graph_edits):  # graph-level: rewire, retie or re-role a layer
        layer = draw(st.sampled_from(data["layers"]))
        # Its own id and later ids make loops; any name makes role and shape mistakes.
        later = [x["id"] for x in data["layers"]][data["layers"].index(layer) :]
        name = st.sampled_from(names) | st.sampled_from(later)
        field = draw(st.sampled_from(["in", "in", "tie", "role", "id"]))
        if field == "in":
            layer["in"] = draw(st.lists(name, min_size=1, max_size=3))
        elif field == "role":
            layer["role"] = draw(st.sampled_from(["shared", "light", "booster"]))
        else:
            layer[field] = draw(name)
    for _ in range(draw(st.integers(0 if graph_edits else 1, 3))):  # drop, replace, copy nodes
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "replace", "replace", "copy"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(NASTY)
        elif isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
    return json.dumps(data, ensure_ascii=draw(st.booleans()))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_mutated_shipped_specs(text):
    compiles_or_rocketc_error(text)


@st.composite
def rewired_specs(draw) -> str:
    """A shipped spec with one layer reading other names: only graph mistakes, often loops."""
    data = load_text(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]).data
    i = draw(st.integers(0, len(data["layers"]) - 1))
    ids = [layer["id"] for layer in data["layers"]]
    names = [inp["name"] for inp in data["inputs"]] + ids
    data["layers"][i]["in"] = draw(
        st.lists(st.sampled_from(names) | st.sampled_from(ids[i:]), min_size=1, max_size=2)
    )
    return json.dumps(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rewired_specs())
def test_rewired_shipped_specs(text):
    compiles_or_rocketc_error(text)


# --- 2. legal random twins compile and run as predicted -------------------------------------
@st.composite
def dense_layers(draw, prefix: str, role: str, source: str, count: int) -> list[dict]:
    """A chain of 1-D layers reading `source`; the last one is named `<prefix>_<count - 1>`."""
    layers = []
    for i in range(count):
        kind = draw(st.sampled_from(["linear", "mlp", "activation", "dropout", "batchnorm"]))
        layer: dict[str, Any] = {"id": f"{prefix}_{i}", "op": kind, "in": source, "role": role}
        if kind == "linear":
            layer["out_features"] = draw(st.integers(1, 12))
            layer["bias"] = draw(st.booleans())
        elif kind == "mlp":
            layer["units"] = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
            layer["norm"] = draw(st.sampled_from(["none", "batchnorm", "layernorm"]))
            layer["activation"] = draw(st.sampled_from(sorted(ACTIVATIONS)))
        elif kind == "activation":
            layer["fn"] = draw(st.sampled_from(sorted(ACTIVATIONS)))
        elif kind == "dropout":
            layer["p"] = draw(st.sampled_from([0.0, 0.25]))
        layers.append(layer)
        source = layer["id"]
    return layers


@st.composite
def twin_specs(draw) -> dict:
    binary = draw(st.booleans())
    out = 1 if binary else draw(st.integers(2, 6))
    inputs: list[dict] = [{"name": "feats", "kind": "dense", "shape": [draw(st.integers(1, 10))]}]
    shared: list[dict] = []
    if draw(st.booleans()):
        inputs.append({"name": "cat", "kind": "categorical", "vocab": draw(st.integers(1, 9))})
        shared += [
            {
                "id": "cat_emb",
                "op": "embedding",
                "in": "cat",
                "dim": draw(st.integers(1, 6)),
                "role": "shared",
            },
            {"id": "joined", "op": "concat", "in": ["feats", "cat_emb"], "role": "shared"},
        ]
    base = shared[-1]["id"] if shared else "feats"
    shared += draw(dense_layers("s", "shared", base, draw(st.integers(0, 3))))
    bottom = shared[-1]["id"] if shared else "feats"
    light = draw(dense_layers("l", "light", bottom, draw(st.integers(0, 3))))
    booster = draw(dense_layers("b", "booster", bottom, draw(st.integers(0, 4))))
    light_in = light[-1]["id"] if light else bottom
    if shared and draw(st.booleans()):  # the light head also reads the raw input
        light.append({"id": "l_cat", "op": "concat", "in": [light_in, "feats"], "role": "light"})
        light_in = "l_cat"
    booster_in = booster[-1]["id"] if booster else bottom
    light.append(
        {"id": "light_head", "op": "linear", "in": light_in, "out_features": out, "role": "light"}
    )
    booster.append(
        {
            "id": "booster_head",
            "op": "linear",
            "in": booster_in,
            "out_features": out,
            "role": "booster",
        }
    )
    spec = {
        "version": 1,
        "name": "random_twins",
        "task": "binary" if binary else "multiclass",
        "inputs": inputs,
        "layers": shared + booster + light,
        "heads": {"light": "light_head", "booster": "booster_head"},
        "loss": {
            "light": draw(st.sampled_from([0.5, 1.0])),
            "hint": {
                "weight": draw(st.sampled_from([0.0, 1.0])),
                "on": draw(st.sampled_from(["logits", "probs"])),
                "reduction": draw(st.sampled_from(["mean", "sum"])),
            },
            "kd": {"weight": draw(st.sampled_from([0.0, 0.5]))},
            "gradient_block": draw(st.sampled_from(["booster", "shared", "none"])),
        },
    }
    if not binary:
        spec["num_classes"] = out
    if light_in == booster_in and draw(st.booleans()):
        light[-1]["tie"] = "booster_head"  # same input, same layout: the heads may share weights
    return spec


@st.composite
def image_layers(draw, prefix: str, role: str, source: str) -> list[dict]:
    """Random image ops, legal or not (kernels, strides, paddings), then a flatten or a pool."""
    layers = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["conv2d", "pool", "batchnorm", "activation", "wrn_group"]))
        layer: dict[str, Any] = {"id": f"{prefix}_{i}", "op": kind, "in": source, "role": role}
        if kind == "conv2d":
            layer |= {
                "out_channels": draw(st.integers(1, 4)),
                "kernel": draw(st.integers(1, 4)),
                "stride": draw(st.integers(1, 2)),
                "padding": draw(st.integers(0, 2)),
                "bias": draw(st.booleans()),
            }
        elif kind == "pool":
            layer |= {
                "kind": draw(st.sampled_from(["max", "avg"])),
                "kernel": draw(st.integers(1, 3)),
                "padding": draw(st.integers(0, 2)),
            }
            if draw(st.booleans()):
                layer["stride"] = draw(st.integers(1, 2))
        elif kind == "activation":
            layer["fn"] = "relu"
        elif kind == "wrn_group":
            layer |= {
                "blocks": draw(st.integers(1, 2)),
                "width": draw(st.integers(1, 4)),
                "stride": draw(st.integers(1, 2)),
            }
        layers.append(layer)
        source = layer["id"]
    if draw(st.booleans()):
        layers.append({"id": f"{prefix}_end", "op": "flatten", "in": source, "role": role})
    else:
        layers.append(
            {"id": f"{prefix}_end", "op": "pool", "kind": "global_avg", "in": source, "role": role}
        )
    return layers


@st.composite
def image_twin_specs(draw) -> dict:
    shape = [draw(st.integers(1, 3)), draw(st.integers(2, 9)), draw(st.integers(2, 9))]
    shared = []
    if draw(st.booleans()):
        shared = [
            {
                "id": "stem",
                "op": "conv2d",
                "in": "image",
                "out_channels": 3,
                "kernel": draw(st.integers(1, 3)),
                "padding": 1,
                "role": "shared",
            }
        ]
    bottom = shared[-1]["id"] if shared else "image"
    light = draw(image_layers("l", "light", bottom))
    booster = draw(image_layers("b", "booster", bottom))
    light.append(
        {
            "id": "light_head",
            "op": "linear",
            "in": light[-1]["id"],
            "out_features": 3,
            "role": "light",
        }
    )
    booster.append(
        {
            "id": "booster_head",
            "op": "linear",
            "in": booster[-1]["id"],
            "out_features": 3,
            "role": "booster",
        }
    )
    return {
        "version": 1,
        "name": "image_twins",
        "task": "multiclass",
        "num_classes": 3,
        "inputs": [{"name": "image", "kind": "dense", "shape": shape}],
        "layers": shared + light + booster,
        "heads": {"light": "light_head", "booster": "booster_head"},
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=image_twin_specs())
def test_image_twins_agree_with_torch(load_model, spec):
    """What the compiler accepts runs in torch with the inferred shapes; the rest is a
    ShapeError (a kernel too big, a pool padding torch refuses, ...)."""
    try:
        compiled = compile_text(json.dumps(spec), "image.yaml")
    except ShapeError:
        return
    model = load_model(compiled).model
    rocket = model.RocketNet()
    inputs = model.example_inputs(2)
    light, booster = _run_with_hooks(compiled, rocket, inputs)
    assert tuple(light.shape) == tuple(booster.shape) == (2, 3)
    assert sum(p.numel() for p in rocket.parameters()) == compiled.param_counts()["total"]


def _run_with_hooks(compiled, rocket, inputs):
    """Run `rocket`, asserting each layer module's output shape is the inferred one."""
    seen: dict[str, tuple] = {}
    for role in ("shared", "light", "booster"):
        for n in compiled.layers(role):
            module = getattr(getattr(rocket, role), n, None)
            if module is not None:
                module.register_forward_hook(
                    lambda _m, _i, out, n=n: seen.__setitem__(n, tuple(out.shape[1:]))
                )
    logits = rocket(*inputs)
    for n, shape in seen.items():
        assert shape == compiled.graph.nodes[n]["type"].shape, n
    return logits


def _check_static(compiled) -> None:
    g, counts = compiled.graph, compiled.param_counts()
    assert counts["total"] == counts["shared"] + counts["light"] + counts["booster"]
    assert counts["light_net"] == counts["shared"] + counts["light"]
    assert min(counts.values()) >= 0
    for head in (compiled.spec.heads.light, compiled.spec.heads.booster):
        assert g.nodes[head]["type"].shape == (compiled.spec.out_features,)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(twin_specs())
def test_legal_twins_compile(spec):
    compiled = compile_text(json.dumps(spec), "twins.yaml")
    _check_static(compiled)
    render(compiled)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=twin_specs())
def test_legal_twins_run_as_predicted(load_model, spec):
    torch = pytest.importorskip("torch")
    compiled = compile_text(json.dumps(spec), "twins.yaml")
    model = load_model(compiled).model
    torch.manual_seed(0)
    rocket = model.RocketNet()
    counts = compiled.param_counts()
    assert sum(p.numel() for p in rocket.parameters()) == counts["total"]
    assert sum(p.numel() for p in rocket.light_net().parameters()) == counts["light_net"]

    inputs, target = model.example_inputs(3), model.example_targets(3)
    light, booster = _run_with_hooks(compiled, rocket, inputs)  # train mode: BatchNorm on 3
    assert tuple(light.shape) == tuple(booster.shape) == (3, compiled.spec.out_features)
    losses = model.compute_loss(light, booster, target)
    assert math.isfinite(losses["total"].item())
    losses["total"].backward()
    rocket.eval()
    with torch.no_grad():
        assert torch.equal(rocket.light_net()(*inputs), rocket(*inputs)[0])
