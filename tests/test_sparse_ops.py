"""Ops over ids: pooled embeddings of id lists and the field-group shorthand.

The pooled embedding is checked against a per-example loop (padding and unseen id 0 left out,
empty lists give zeros), for its gradient (the padding row never moves), and end to end: the
light net of a spec with every new input kind exports to ONNX and onnxruntime gives PyTorch's
numbers, empty lists included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rocketc.backends.codegen import render
from rocketc.backends.viz import to_dot
from rocketc.backends.viz_fold import find_folds
from rocketc.compiler.ops.base import MODULE_ATTRS
from rocketc.compiler.ops.sparse import MODULEDICT_ATTRS

POOLS = ("mean", "sum", "max")

SPEC = """\
version: 1
name: sparse
task: binary
inputs:
  - {name: user, kind: categorical, hash_buckets: 500}
  - {name: city, kind: categorical, vocab: 9}
  - {name: tags, kind: categorical_list, vocab: 40, max_len: 6}
  - {name: clicks, kind: categorical_list, hash_buckets: 300, max_len: 4}
  - {name: price, kind: dense, shape: [2]}
layers:
  - {id: fields, op: field_embeddings, in: [user, city, tags], dim: 8, pool: @POOL@, role: shared}
  - {id: click_pool, op: pooled_embedding, in: clicks, dim: 8, pool: @POOL@, role: shared}
  - {id: features, op: concat, in: [fields, click_pool, price], role: shared}
  - {id: light_out, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_mlp, op: mlp, in: features, units: [32, 16], role: booster}
  - {id: booster_out, op: linear, in: booster_mlp, out_features: 1, role: booster}
heads: {light: light_out, booster: booster_out}
"""


def _spec(pool: str) -> str:
    return SPEC.replace("@POOL@", pool)


def _lists(rng: np.random.Generator, n: int, length: int, vocab: int) -> torch.Tensor:
    """Id lists padded with 0 at the end, some empty, some with an unseen (0) id inside."""
    ids = np.zeros((n, length), dtype=np.int64)
    for row in range(n):
        k = rng.integers(0, length + 1)
        ids[row, :k] = rng.integers(1, vocab, k)
    ids[0] = 0  # an empty list
    ids[1, 0] = 0  # an unseen value at the front, real ids after it
    ids[1, 1:] = rng.integers(1, vocab, length - 1)
    return torch.from_numpy(ids)


def _reference(table: torch.Tensor, ids: torch.Tensor, pool: str) -> torch.Tensor:
    out = []
    for row in ids.tolist():
        kept = [table[i] for i in row if i != 0]
        if not kept:
            out.append(torch.zeros(table.shape[1]))
            continue
        stack = torch.stack(kept)
        out.append({"mean": stack.mean(0), "sum": stack.sum(0), "max": stack.amax(0)}[pool])
    return torch.stack(out)


@pytest.mark.parametrize("pool", POOLS)
def test_pooled_embedding_pools_only_the_real_ids(pool, compile_spec_text, load_model):
    model = load_model(compile_spec_text(_spec(pool), "sparse.yaml")).model
    torch.manual_seed(0)
    layer = model.PooledEmbedding(40, 5, pool=pool)
    ids = _lists(np.random.default_rng(1), 64, 6, 40)
    with torch.no_grad():
        got = layer(ids)
    want = _reference(layer.embedding.weight.detach(), ids, pool)
    assert got.shape == (64, 5)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(got[0], torch.zeros(5))  # the empty list


@pytest.mark.parametrize("pool", POOLS)
def test_padding_gets_no_gradient_and_real_ids_do(pool, compile_spec_text, load_model):
    model = load_model(compile_spec_text(_spec(pool), "sparse.yaml")).model
    torch.manual_seed(0)
    layer = model.PooledEmbedding(40, 5, pool=pool)
    ids = _lists(np.random.default_rng(2), 32, 6, 40)
    layer(ids).pow(2).sum().backward()
    grad = layer.embedding.weight.grad
    table = layer.embedding.weight.detach().clone().requires_grad_(True)
    _reference(table, ids, pool).pow(2).sum().backward()
    assert torch.allclose(grad, table.grad, atol=1e-5)  # the loop's gradient, exactly
    assert torch.equal(grad[0], torch.zeros(5))  # id 0 never reaches the loss
    if pool != "max":  # (max: only each dimension's winner gets a gradient)
        used = torch.unique(ids[ids != 0])
        assert (grad[used].abs().sum(dim=1) > 0).all()


def test_field_embeddings_concatenate_one_table_per_field(compile_spec_text, load_model):
    compiled = compile_spec_text(_spec("mean"), "sparse.yaml")
    text = render(compiled)["model.py"]
    assert '"user": nn.Embedding(501, 8),' in text  # hash_buckets 500 + id 0
    assert '"tags": PooledEmbedding(40, 8, pool="mean"),' in text
    assert "self.fields(user, city, tags)  # (B, 24)" in text
    assert text.count("class PooledEmbedding(nn.Module):") == 1

    model = load_model(compiled).model
    rocket = model.RocketNet().eval()
    fields = rocket.shared.fields
    assert list(fields.tables) == ["user", "city", "tags"]
    user, city, tags, *_ = model.example_inputs(16)
    with torch.no_grad():
        want = torch.cat([fields.tables["user"](user), fields.tables["city"](city)], dim=1)
        got = fields(user, city, tags)
    assert torch.equal(got[:, :16], want)
    counts = compiled.param_counts()
    assert sum(p.numel() for p in rocket.parameters()) == counts["total"]
    assert counts["shared"] == (501 + 9 + 40) * 8 + 301 * 8


def test_a_group_without_lists_prints_no_pooling_class(compile_spec_text):
    text = """\
version: 1
name: flat
task: binary
inputs:
  - {name: user, kind: categorical, hash_buckets: 500}
  - {name: city, kind: categorical, vocab: 9}
layers:
  - {id: fields, op: field_embeddings, in: [user, city], dim: 8, role: shared}
  - {id: light_out, op: linear, in: fields, out_features: 1, role: light}
  - {id: booster_out, op: linear, in: fields, out_features: 1, role: booster}
heads: {light: light_out, booster: booster_out}
"""
    model_py = render(compile_spec_text(text))["model.py"]
    assert "class FieldEmbeddings(nn.Module):" in model_py
    assert "PooledEmbedding" not in model_py


def test_a_group_draws_as_one_table_naming_each_field(compile_spec_text):
    compiled = compile_spec_text(_spec("max"), "sparse.yaml")
    (group,) = find_folds(compiled)
    assert group.layers == ("fields",) and group.inputs == ("user", "city", "tags")
    dot = to_dot(compiled)
    assert "<b>fields</b>: 3 field embeddings  ·  4,400 params  ·  (B, 24)" in dot
    assert "40 × 8, max of ≤ 6</font>" in dot
    assert '"fold.fields" -> features' in dot
    assert "\tuser [label" not in dot  # named in the table, not drawn on its own
    assert "pooled_embedding 301 × 8, max of ≤ 4" in dot  # a layer of its own: a box


@pytest.mark.parametrize("pool", POOLS)
def test_the_light_net_exports_to_onnx_with_the_same_numbers(
    pool, tmp_path, compile_spec_text, load_model
):
    import onnxruntime as ort

    from rocketc.train.report import export_onnx

    model = load_model(compile_spec_text(_spec(pool), "sparse.yaml")).model
    torch.manual_seed(3)
    light = model.RocketNet().light_net().eval()
    rng = np.random.default_rng(4)
    n = 48
    rows = (
        torch.from_numpy(rng.integers(0, 501, n)),
        torch.from_numpy(rng.integers(0, 9, n)),
        _lists(rng, n, 6, 40),
        _lists(rng, n, 4, 301),
        torch.randn(n, 2),
    )
    names = ["user", "city", "tags", "clicks", "price"]
    path = tmp_path / "light.onnx"
    assert export_onnx(light, rows, names, path) <= 1e-5
    # Another batch size, all lists empty: the exported graph pools to zeros like PyTorch.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    empty = (rows[0][:7], rows[1][:7], torch.zeros(7, 6, dtype=torch.int64), rows[3][:7] * 0)
    empty += (rows[4][:7],)
    got = session.run(None, {k: v.numpy() for k, v in zip(names, empty, strict=True)})[0]
    with torch.no_grad():
        want = light(*empty).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_moduledict_attributes_are_in_step_with_torch():
    own = {a for a in dir(nn.ModuleDict()) if not a.startswith("_")}
    assert own <= MODULEDICT_ATTRS
    assert MODULEDICT_ATTRS - MODULE_ATTRS == {"clear", "items", "keys", "pop", "update", "values"}


def test_a_light_pooled_embedding_can_tie_the_boosters(compile_spec_text, load_model):
    text = """\
version: 1
name: tied_lists
task: binary
inputs:
  - {name: tags, kind: categorical_list, vocab: 30, max_len: 4}
layers:
  - {id: booster_tags, op: pooled_embedding, in: tags, dim: 8, pool: sum, role: booster}
  - {id: light_tags, op: pooled_embedding, in: tags, dim: 8, role: light, tie: booster_tags}
  - {id: light_out, op: linear, in: light_tags, out_features: 1, role: light}
  - {id: booster_out, op: linear, in: booster_tags, out_features: 1, role: booster}
heads: {light: light_out, booster: booster_out}
"""
    compiled = compile_spec_text(text)
    assert compiled.graph.nodes["light_tags"]["tie_paths"] == [("embedding.weight", 240)]
    assert compiled.param_counts()["shared"] == 240  # counted once, as shared
    rocket = load_model(compiled).model.RocketNet()
    assert rocket.light.light_tags.embedding.weight is rocket.booster.booster_tags.embedding.weight
    assert rocket.light.light_tags.pool == "mean"  # its own pooling over the same table
    with pytest.raises(Exception, match="cannot tie"):
        compile_spec_text(text.replace("dim: 8, role: light", "dim: 4, role: light"))
