"""The CTR ops (issue 23): fm, cross, self_attention, target_attention, layernorm, stacked field
embeddings, and shared embedding tables (`vocab_from:` on an input, `table:` on an embedding).

Each op is checked on its own: its shape rule and parameter count against the generated module,
an output worked out by hand on a tiny input, and a plain-torch reference on a random one. Then
each is compiled in a tiny spec where it stands in the shared, the light and the booster branch:
the generated model runs, the compiler's parameter counts and MACs are the model's, both nets
export to ONNX with onnxruntime giving PyTorch's numbers, and under `gradient_block: booster` and
`shared` the gradient-flow audit finds every loss term reaching exactly the weights it may.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from rocketc.backends.codegen import render
from rocketc.backends.viz import to_dot
from rocketc.compiler.ops import Port, TensorType, registered_ops
from rocketc.errors import ShapeError


def _runtime():
    """The runtime functions these tests use, imported in this one place: (export_onnx,
    run_audit). (Generated code is loaded by conftest's `load_model`.)"""
    from rocketc.train.audit import run_audit
    from rocketc.train.report import export_onnx

    return export_onnx, run_audit


# --- the specs: each op in the shared, light and booster branches ----------------------------
HEAD = """\
version: 1
name: ctr_@OP@
task: binary
inputs:
  - {name: user, kind: categorical, hash_buckets: 30}
  - {name: item, kind: categorical, vocab: 20}
  - {name: history, kind: categorical_list, vocab_from: item, max_len: 4}
  - {name: price, kind: dense, shape: [3]}
layers:
  - {id: fields, op: field_embeddings, in: [user, item, history], dim: 4, stack: true, role: shared}
  - {id: flat, op: flatten, in: fields, role: shared}
"""
# Each op's layers end in `l_cat` (light) and `b_cat` (booster), both (B, features).
LAYERS = {
    "fm": """\
  - {id: s_fm, op: fm, in: fields, reduce: none, role: shared}
  - {id: l_fm, op: fm, in: fields, role: light}
  - {id: b_fm, op: fm, in: fields, role: booster}
  - {id: l_cat, op: concat, in: [flat, price, s_fm, l_fm], role: light}
  - {id: b_cat, op: concat, in: [flat, price, s_fm, b_fm], role: booster}
""",
    "cross": """\
  - {id: s_cross, op: cross, in: flat, layers: 1, role: shared}
  - {id: l_in, op: concat, in: [s_cross, price], role: light}
  - {id: l_cat, op: cross, in: l_in, layers: 2, rank: 3, role: light}
  - {id: b_in, op: concat, in: [s_cross, price], role: booster}
  - {id: b_cat, op: cross, in: b_in, layers: 3, role: booster}
""",
    "self_attention": """\
  - {id: s_att, op: self_attention, in: fields, heads: 2, dim: 2, role: shared}
  - {id: l_att, op: self_attention, in: s_att, heads: 1, dim: 3, residual: false, role: light}
  - {id: b_att, op: self_attention, in: s_att, heads: 2, dim: 3, layers: 2, role: booster}
  - {id: l_flat, op: flatten, in: l_att, role: light}
  - {id: b_flat, op: flatten, in: b_att, role: booster}
  - {id: l_cat, op: concat, in: [flat, l_flat, price], role: light}
  - {id: b_cat, op: concat, in: [flat, b_flat, price], role: booster}
""",
    "layernorm": """\
  - {id: s_norm, op: layernorm, in: fields, role: shared}
  - {id: s_flat, op: flatten, in: s_norm, role: shared}
  - {id: l_in, op: concat, in: [flat, s_flat, price], role: light}
  - {id: l_cat, op: layernorm, in: l_in, role: light}
  - {id: b_in, op: concat, in: [flat, s_flat, price], role: booster}
  - {id: b_cat, op: layernorm, in: b_in, role: booster}
""",
    # The history and the candidate item in one table: the shared field group's item table,
    # looked up by a shared and a booster sequence (table: fields) and a shared target.
    "target_attention": """\
  - {id: s_seq, op: embedding, in: history, dim: 4, table: fields, role: shared}
  - {id: s_item, op: embedding, in: item, dim: 4, table: fields, role: shared}
  - {id: s_din, op: target_attention, in: [s_seq, s_item, history], units: [6], role: shared}
  - {id: l_din, op: target_attention, in: [s_seq, s_item, history], units: [5],
     activation: sigmoid, role: light}
  - {id: b_seq, op: embedding, in: history, dim: 4, table: fields, role: booster}
  - {id: b_din, op: target_attention, in: [b_seq, s_item, history], units: [8, 4], role: booster}
  - {id: l_cat, op: concat, in: [flat, s_din, l_din, price], role: light}
  - {id: b_cat, op: concat, in: [flat, s_din, b_din, price], role: booster}
""",
}
TAIL = """\
  - {id: light_out, op: linear, in: l_cat, out_features: 1, role: light}
  - {id: b_mlp, op: mlp, in: b_cat, units: [8], role: booster}
  - {id: booster_out, op: linear, in: b_mlp, out_features: 1, role: booster}
heads: {light: light_out, booster: booster_out}
loss: {kd: {weight: 0.5}, gradient_block: @MODE@}
"""
OPS = tuple(LAYERS)
MODES = ("booster", "shared")


def _spec(op: str, mode: str = "booster") -> str:
    return (HEAD + LAYERS[op] + TAIL).replace("@OP@", op).replace("@MODE@", mode)


@pytest.fixture(scope="module")
def built(compile_spec_text, load_model):
    """(op, mode) -> (Compiled, generated model module), each built once per module."""
    cache: dict = {}

    def get(op: str, mode: str = "booster"):
        if (op, mode) not in cache:
            compiled = compile_spec_text(_spec(op, mode), f"ctr_{op}.yaml")
            cache[op, mode] = (compiled, load_model(compiled).model)
        return cache[op, mode]

    return get


def _rows(n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A batch of the specs' inputs: histories padded at the end, row 0's empty."""
    rng = np.random.default_rng(seed)
    history = np.zeros((n, 4), dtype=np.int64)
    for row in range(1, n):
        k = rng.integers(1, 5)
        history[row, :k] = rng.integers(1, 20, k)
    return (
        torch.from_numpy(rng.integers(0, 31, n)),
        torch.from_numpy(rng.integers(0, 20, n)),
        torch.from_numpy(history),
        torch.from_numpy(rng.normal(size=(n, 3)).astype(np.float32)),
    )


def _op(name: str, **fields):
    """A registered op's model, as the spec would validate it."""
    return registered_ops()[name].model_validate(
        {"op": name, "id": "layer", "in": "x", "role": "booster", **fields}
    )


def _float(*shape: int) -> list[Port]:
    return [Port("x", TensorType(shape))]


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- each op on its own ----------------------------------------------------------------------
def test_fm_is_the_sum_of_the_pairs_products(built):
    model = built("fm")[1]
    v = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # one example, 3 fields, dim 2
    # <v1,v2> + <v1,v3> + <v2,v3> = 11 + 17 + 39; per dim: 3 + 5 + 15 and 8 + 12 + 24.
    assert model.factorization_machine(v).tolist() == [[67.0]]
    assert model.factorization_machine(v, reduce="none").tolist() == [[23.0, 44.0]]
    x = torch.randn(7, 5, 3)
    loop = sum(x[:, i] * x[:, j] for i in range(5) for j in range(i + 1, 5))
    got = model.factorization_machine(x, reduce="none")
    assert torch.allclose(got, loop, atol=1e-5)
    assert torch.allclose(model.factorization_machine(x), loop.sum(1, keepdim=True), atol=1e-5)

    fm = _op("fm")
    assert fm.infer(_float(5, 3)) == TensorType((1,))
    assert _op("fm", reduce="none").infer(_float(5, 3)) == TensorType((3,))
    assert (fm.num_params(_float(5, 3)), fm.macs(_float(5, 3))) == (0, 0)
    with pytest.raises(Exception, match="stack: true"):
        fm.infer(_float(15))


def test_cross_layers_by_hand_and_low_rank_is_u_v_transposed(built):
    model = built("cross")[1]
    cross = model.CrossNetwork(2, layers=1)
    with torch.no_grad():
        cross.mixes[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        cross.mixes[0].bias.copy_(torch.tensor([0.0, 1.0]))
    # W x0 + b = [1, 5]; x0 * [1, 5] + x0 = [2, 12]
    assert cross(torch.tensor([[1.0, 2.0]])).tolist() == [[2.0, 12.0]]

    torch.manual_seed(0)
    low = model.CrossNetwork(5, layers=2, rank=2)
    x0 = torch.randn(6, 5)
    x = x0
    for mix in low.mixes:
        u, v = mix[1].weight, mix[0].weight  # (5, 2), (2, 5): W = U V^T
        x = x0 * (x @ (u @ v).T + mix[1].bias) + x
    with torch.no_grad():
        assert torch.allclose(low(x0), x, atol=1e-5)

    full, rank = _op("cross", layers=2), _op("cross", layers=2, rank=2)
    assert full.infer(_float(5)) == TensorType((5,))
    assert full.num_params(_float(5)) == 2 * (25 + 5) == _n_params(model.CrossNetwork(5, 2))
    assert rank.num_params(_float(5)) == 2 * (20 + 5) == _n_params(low)
    assert (full.macs(_float(5)), rank.macs(_float(5))) == (50, 40)


def test_self_attention_by_hand_and_against_a_per_head_loop(built):
    model = built("self_attention")[1]
    layer = model.InteractingLayer(1, heads=1, dim=1)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(1.0)  # q = k = v = x, and the residual adds x
    # Fields 1 and 2: scores q_i k_j = [[1, 2], [2, 4]], softmax by row, times v = [1, 2].
    e = math.exp
    want = [(e(1) + 2 * e(2)) / (e(1) + e(2)) + 1, (e(2) + 2 * e(4)) / (e(2) + e(4)) + 2]
    got = layer(torch.tensor([[[1.0], [2.0]]]))
    assert got.shape == (1, 2, 1)
    assert got.flatten().tolist() == pytest.approx(want, rel=1e-6)

    torch.manual_seed(1)
    layer = model.InteractingLayer(4, heads=2, dim=3)
    x = torch.randn(5, 6, 4)  # 5 examples, 6 fields
    heads = []
    for h in range(2):
        cols = slice(3 * h, 3 * h + 3)
        q, k, v = (m.weight[cols] for m in (layer.query, layer.key, layer.value))
        weights = torch.softmax((x @ q.T) @ (x @ k.T).transpose(1, 2) / math.sqrt(3), dim=-1)
        heads.append(weights @ (x @ v.T))
    want = F.relu(torch.cat(heads, dim=-1) + x @ layer.residual.weight.T)
    with torch.no_grad():
        assert torch.allclose(layer(x), want, atol=1e-5)

    op = _op("self_attention", heads=2, dim=3, layers=2)
    assert op.infer(_float(6, 4)) == TensorType((6, 6))
    stack = nn.Sequential(model.InteractingLayer(4, 2, 3), model.InteractingLayer(6, 2, 3))
    assert op.num_params(_float(6, 4)) == 4 * 4 * 6 + 4 * 6 * 6 == _n_params(stack)
    no_residual = _op("self_attention", heads=1, dim=3, residual=False)
    assert no_residual.num_params(_float(6, 4)) == 3 * 4 * 3
    with pytest.raises(Exception, match="stack: true"):
        op.infer(_float(24))


def test_target_attention_by_hand_and_against_a_loop(built):
    model = built("target_attention")[1]
    score = nn.Sequential(nn.Linear(4, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        score[0].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 1.0]]))  # reads q * k
        score[0].bias.zero_()
        score[2].weight.fill_(1.0)
        score[2].bias.zero_()
    unit = model.TargetAttention(score)
    sequence = torch.tensor([[[2.0], [3.0], [7.0]]])
    ids = torch.tensor([[5, 9, 0]])  # the 7 is padding
    # Scores q * k = 4 and 6 (the padding's 14 left out): 4 * 2 + 6 * 3.
    assert unit(sequence, torch.tensor([[2.0]]), ids).tolist() == [[26.0]]

    torch.manual_seed(2)
    unit = model.TargetAttention(nn.Sequential(nn.Linear(12, 5), nn.Sigmoid(), nn.Linear(5, 1)))
    b, length, d = 6, 4, 3
    sequence, target = torch.randn(b, length, d), torch.randn(b, d)
    ids = torch.randint(1, 9, (b, length))
    ids[0] = 0  # all padding: zeros
    ids[1, 2:] = 0
    want = torch.zeros(b, d)
    for row in range(b):
        for pos in range(length):
            if ids[row, pos] != 0:
                q, k = target[row], sequence[row, pos]
                want[row] += unit.score(torch.cat([q, k, q - k, q * k])) * k
    with torch.no_grad():
        got = unit(sequence, target, ids)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(got[0], torch.zeros(d))

    op = _op("target_attention", units=[5])
    ins = [
        Port("seq", TensorType((4, 3))),
        Port("target", TensorType((3,))),
        Port("ids", TensorType((4,), "index", 9)),
    ]
    assert op.infer(ins) == TensorType((3,))
    assert op.num_params(ins) == 12 * 5 + 5 + 5 + 1 == _n_params(unit)
    assert op.macs(ins) == 4 * (12 * 5 + 5)
    with pytest.raises(Exception, match="ids"):
        op.infer([*ins[:2], Port("ids", TensorType((5,), "index", 9))])


def test_layernorm_normalises_the_last_dim(built):
    compiled, model = built("layernorm")
    rocket = model.RocketNet()
    norm = rocket.light.l_cat
    (width,) = compiled.graph.nodes["l_in"]["type"].shape
    assert (
        norm.normalized_shape == (width,) and compiled.graph.nodes["l_cat"]["params"] == 2 * width
    )
    x = torch.randn(4, width) * 3 + 1
    with torch.no_grad():
        assert torch.allclose(norm(x), F.layer_norm(x, (width,)), atol=1e-6)
        three = rocket.shared.s_norm(torch.tensor([[1.0, 2.0, 3.0, 6.0]]))
    # mean 3, variance 3.5: (x - 3) / sqrt(3.5), at its initial scale 1 and shift 0
    want = [(v - 3) / math.sqrt(3.5 + 1e-5) for v in (1.0, 2.0, 3.0, 6.0)]
    assert three.flatten().tolist() == pytest.approx(want, rel=1e-6)
    assert compiled.graph.nodes["s_norm"]["type"] == TensorType((3, 4))
    assert compiled.graph.nodes["s_norm"]["params"] == 8 == _n_params(rocket.shared.s_norm)
    assert _op("layernorm").macs(_float(3, 4)) == 0


def test_stacked_fields_are_the_concatenation_in_rows(built):
    compiled, model = built("fm")
    assert compiled.graph.nodes["fields"]["type"] == TensorType((3, 4))
    assert compiled.graph.nodes["flat"]["type"] == TensorType((12,))
    fields = model.RocketNet().eval().shared.fields
    assert type(fields).__name__ == "StackedFieldEmbeddings"
    user, item, history, _ = _rows(8)
    with torch.no_grad():
        stacked = fields(user, item, history)
        flat = torch.cat(
            [
                table(x)
                for table, x in zip(fields.tables.values(), (user, item, history), strict=True)
            ],
            1,
        )
    assert stacked.shape == (8, 3, 4)
    assert torch.equal(stacked.flatten(1), flat)
    assert torch.equal(stacked[:, 1], fields.tables["item"](item))


# --- shared tables ---------------------------------------------------------------------------
def test_vocab_from_gives_one_id_space_and_one_table(built, compile_spec_text):
    compiled, model = built("fm")
    history = compiled.spec.inputs[2]
    assert (history.vocab, history.hash_buckets, history.vocab_from) == (20, None, "item")
    assert compiled.graph.nodes["history"]["type"] == TensorType((4,), "index", 20, "item")
    # One item table for item and history: user 31 x 4 + item 20 x 4.
    assert compiled.graph.nodes["fields"]["params"] == 31 * 4 + 20 * 4
    fields = model.RocketNet().shared.fields
    assert fields.tables["history"].embedding.weight is fields.tables["item"].weight
    assert _n_params(fields) == 204

    hashed = _spec("fm").replace(
        "{name: item, kind: categorical, vocab: 20}",
        "{name: item, kind: categorical, hash_buckets: 19}",
    )
    history = compile_spec_text(hashed).spec.inputs[2]
    assert (history.vocab, history.hash_buckets) == (20, 19)  # hashed as item's ids are


def test_table_links_lookups_inside_and_across_branches(built):
    compiled, model = built("target_attention")
    text = render(compiled)["model.py"]
    # Inside Shared: the history pools through item's table, and s_seq/s_item look up in it.
    assert (
        'self.fields.tables["history"].embedding.weight = self.fields.tables["item"].weight' in text
    )
    assert 'self.s_seq.weight = self.fields.tables["item"].weight' in text
    # Across branches, in RocketNet: the booster's sequence uses the shared table.
    assert 'self.booster.b_seq.weight = self.shared.fields.tables["item"].weight' in text
    rocket = model.RocketNet()
    table = rocket.shared.fields.tables["item"].weight
    for lookup in (rocket.shared.s_seq, rocket.shared.s_item, rocket.booster.b_seq):
        assert lookup.weight is table
    counts = compiled.param_counts()
    assert compiled.graph.nodes["b_seq"]["params"] == 0
    assert _n_params(rocket) == counts["total"]
    assert _n_params(rocket.light_net()) == counts["light_net"]
    assert _n_params(rocket.booster_net()) == counts["booster_net"]
    # The booster's attention trains the one table through its own lookups, padding never.
    _, item, history, _ = _rows(8)
    target = rocket.shared.s_item(item).detach()
    rocket.booster.b_din(rocket.booster.b_seq(history), target, history).sum().backward()
    assert (table.grad[torch.unique(history[history != 0])].abs().sum(dim=1) > 0).all()
    assert torch.equal(table.grad[0], torch.zeros(4))


def test_a_light_lookup_may_use_a_shared_table_unless_shared_is_blocked(compile_spec_text):
    text = _spec("target_attention").replace(
        "{id: l_din, op: target_attention, in: [s_seq, s_item, history]",
        "{id: l_seq, op: embedding, in: history, dim: 4, table: fields, role: light}\n"
        "  - {id: l_din, op: target_attention, in: [l_seq, s_item, history]",
    )
    compiled = compile_spec_text(text)
    assert (
        'self.light.l_seq.weight = self.shared.fields.tables["item"].weight'
        in render(compiled)["model.py"]
    )
    with pytest.raises(Exception, match="gradient_block: shared leaves the shared layers"):
        compile_spec_text(text.replace("gradient_block: booster", "gradient_block: shared"))


def test_table_and_tie_do_not_mix_and_widths_must_match(compile_spec_text):
    text = _spec("target_attention")
    with pytest.raises(ShapeError, match="is 8 wide but the table of 'fields'"):
        compile_spec_text(
            text.replace(
                "{id: b_seq, op: embedding, in: history, dim: 4",
                "{id: b_seq, op: embedding, in: history, dim: 8",
            )
        )
    tied = text.replace(
        "{id: l_din, op: target_attention, in: [s_seq, s_item, history]",
        "{id: l_seq, op: embedding, in: history, dim: 4, role: light, tie: b_seq}\n"
        "  - {id: l_din, op: target_attention, in: [l_seq, s_item, history]",
    )
    with pytest.raises(ShapeError, match="uses the table of 'fields'"):
        compile_spec_text(tied)


def test_the_diagram_shows_the_one_table(built):
    dot = to_dot(built("target_attention")[0])
    assert "table of item, mean of ≤ 4</font>" in dot  # history's row in the field group
    assert dot.count('xlabel="same table"') == 3  # s_seq, s_item, b_seq -> the group
    assert 'b_seq -> "fold.fields"' in dot
    assert "same embedding table" in dot  # the legend
    assert "input ids &lt; 20, item's" in dot


# --- each op compiled, run, exported, audited -------------------------------------------------
@pytest.mark.parametrize("op", OPS)
def test_compiled_counts_shapes_and_macs_are_the_models(built, op):
    compiled, model = built(op)
    g = compiled.graph
    rocket = model.RocketNet().eval()
    counts = compiled.param_counts()
    assert _n_params(rocket) == counts["total"]
    assert _n_params(rocket.light_net()) == counts["light_net"]
    assert _n_params(rocket.booster_net()) == counts["booster_net"]

    shapes: dict[str, tuple] = {}
    for role in ("shared", "light", "booster"):
        for n in compiled.layers(role):
            module = getattr(getattr(rocket, role), n, None)
            if module is None:
                continue  # stateless: an expression in forward
            if not g.nodes[n].get("table_paths"):
                assert _n_params(module) == g.nodes[n]["params"], n
            module.register_forward_hook(
                lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape[1:]))
            )
    with torch.no_grad():
        rocket(*_rows(1))
    assert shapes and all(shapes[n] == g.nodes[n]["type"].shape for n in shapes)

    # MACs per example: the ops' own estimate is what torch's flop counter measures.
    def macs(roles: tuple[str, ...]) -> int:
        return sum(
            g.nodes[n]["layer"].macs(_ports(compiled, n))
            for role in roles
            for n in compiled.layers(role)
        )

    for net, roles in (
        (rocket.light_net(), ("shared", "light")),
        (rocket.booster_net(), ("shared", "booster")),
    ):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            net(*_rows(1))
        assert macs(roles) == counter.get_total_flops() // 2 > 0, roles


def _ports(compiled, n: str) -> list[Port]:
    from rocketc.compiler.graph import input_ports

    return input_ports(compiled.graph, n)


@pytest.mark.parametrize("op", OPS)
def test_both_nets_export_to_onnx_with_the_same_numbers(built, op, tmp_path):
    import onnxruntime as ort

    export_onnx, _ = _runtime()
    compiled, model = built(op)
    torch.manual_seed(3)
    rocket = model.RocketNet().eval()
    names = [i.name for i in compiled.spec.inputs]
    rows, other = _rows(16, seed=4), _rows(5, seed=5)  # another batch size, row 0 empty
    for net, output in (
        (rocket.light_net().eval(), "light_logits"),
        (rocket.booster_net().eval(), "booster_logits"),
    ):
        path = tmp_path / f"{output}.onnx"
        assert export_onnx(net, rows, names, path, output=output) <= 1e-5
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {k: v.numpy() for k, v in zip(names, other, strict=True)})[0]
        with torch.no_grad():
            want = net(*other).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_the_gradient_block_holds_through_the_op(built, op, mode):
    _, run_audit = _runtime()
    compiled, _ = built(op, mode)
    result = run_audit(compiled, batch_size=8, seed=0)
    assert result.ok, (result.flagged, result.problems)
    m = result.matrix()
    assert m["light"]["light"] and m["booster"]["booster"] and m["booster"]["shared"]
    assert not m["hint"]["booster"] and not m["kd"]["booster"] and not m["light"]["booster"]
    # gradient_block: shared leaves the shared layers (this op's shared instance) to the booster.
    for term in ("light", "hint", "kd"):
        assert m[term]["shared"] is (mode == "booster"), term


def test_a_fan_of_embeddings_keeps_its_table_links_as_boxes(compile_spec_text):
    from rocketc.backends.viz_fold import find_folds

    text = """\
version: 1
name: fan
task: binary
inputs:
  - {name: a, kind: categorical, vocab: 5}
  - {name: b, kind: categorical, vocab: 5}
  - {name: c, kind: categorical, vocab: 5}
  - {name: d, kind: categorical, vocab: 5}
  - {name: e, kind: categorical, vocab_from: a}
  - {name: f, kind: categorical, vocab: 5}
layers:
  - {id: emb_a, op: embedding, in: a, dim: 2, role: shared}
  - {id: emb_b, op: embedding, in: b, dim: 2, role: booster}
  - {id: emb_c, op: embedding, in: c, dim: 2, role: booster}
  - {id: emb_d, op: embedding, in: d, dim: 2, role: booster}
  - {id: emb_e, op: embedding, in: e, dim: 2, table: emb_a, role: booster}
  - {id: emb_f, op: embedding, in: f, dim: 2, role: booster}
  - {id: cat, op: concat, in: [emb_a, emb_b, emb_c, emb_d, emb_e, emb_f], role: booster}
  - {id: light_out, op: linear, in: emb_a, out_features: 1, role: light}
  - {id: booster_out, op: linear, in: cat, out_features: 1, role: booster}
heads: {light: light_out, booster: booster_out}
"""
    compiled = compile_spec_text(text)
    (fan,) = find_folds(compiled)
    assert fan.layers == ("emb_b", "emb_c", "emb_d", "emb_f")  # emb_e stays a box
    dot = to_dot(compiled)
    assert any(
        "emb_e -> emb_a" in line and 'xlabel="same table"' in line for line in dot.splitlines()
    )
    assert "embedding 5 × 2, table of emb_a" in dot
