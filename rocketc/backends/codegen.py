"""Back end: render the compiled graph as standalone PyTorch (`model.py`, `train.py`).

Python decides everything here (names, arguments, shapes, where `.detach()` goes) and hands the
templates plain view objects to print. Output is byte-for-byte deterministic for a given spec.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rocketc.backends.pysource import check_source, docstring_text
from rocketc.backends.templating import environment
from rocketc.compiler import Compiled
from rocketc.compiler.graph import input_ports
from rocketc.compiler.losses import graph_terms, loss_node
from rocketc.compiler.ops import LayerBase, TensorType
from rocketc.compiler.spec import CosineSchedule, StepSchedule
from rocketc.errors import CodegenError
from rocketc.files import write_atomic

BRANCH_DOCS = {
    "shared": "Bottom layers both nets run; RocketNet computes them once per step.",
    "light": "The light net's own layers: this is what gets served.",
    "booster": "The booster's own layers: a stronger teacher, dropped at serving time.",
}


@dataclass
class LayerView:
    id: str
    init: str | None  # constructor expression; None for stateless ops
    call: str  # forward expression
    shape: str
    params: int
    members: tuple = ()  # a GroupView's; none for one layer


@dataclass
class BranchView:
    cls: str
    doc: str
    args: list[str]
    layers: list[LayerView]
    returns: list[str]
    modules: list[LayerView] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # statements: one table, several lookups


@dataclass
class GroupView:
    """Alike per-field embeddings of one branch as one `nn.ModuleDict` built in a loop: three or
    more `embedding` layers of one width, each reading an input's ids, none tied or sharing a
    table. Their layer ids stay the names, in the dict and in forward."""

    id: str  # the ModuleDict's attribute
    members: list[LayerView]
    args: list[str]  # each member's ids, in order
    dim: int

    @property
    def vocabs(self) -> list[tuple[str, str]]:
        return [(m.id, m.init.removeprefix("nn.Embedding(").split(",")[0]) for m in self.members]


@dataclass
class InputView:
    name: str
    example: str
    shape: str


def render(compiled: Compiled) -> dict[str, str]:
    """File name -> source text."""
    env = environment()
    try:
        files = {
            "model.py": env.get_template("model.py.jinja2").render(**_model_view(compiled)),
            "train.py": env.get_template("train.py.jinja2").render(**_train_view(compiled)),
        }
    except Exception as exc:  # a template bug, never the user's spec
        raise CodegenError(f"internal error while rendering: {exc!r}") from exc
    files = {name: _format(name, text) for name, text in files.items()}
    for name, text in files.items():
        check_source(name, text)  # compiles, and holds no control or bidi character
    return files


def _format(name: str, text: str) -> str:
    """Last step: ruff's formatter (pinned), so long lines wrap the way a reviewer expects."""
    try:
        from ruff.__main__ import find_ruff_bin

        ruff = find_ruff_bin()
    except (ImportError, FileNotFoundError):
        raise CodegenError("the `ruff` package is missing; reinstall rocketc") from None
    proc = subprocess.run(
        [ruff, "format", "--isolated", "--line-length", "100", "--stdin-filename", name, "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CodegenError(f"internal error: generated {name} is not valid Python:\n{proc.stderr}")
    return proc.stdout


def write(compiled: Compiled, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    files = render(compiled)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        write_atomic(path, text)
        written.append(path)
    return written


# --- model.py ------------------------------------------------------------------------------
def _model_view(c: Compiled) -> dict[str, Any]:
    g, spec = c.graph, c.spec

    def layer_view(n: str) -> LayerView:
        layer = g.nodes[n]["layer"]
        ports = input_ports(g, n)
        args = [p.name for p in ports]
        if layer.stateful:
            init = _macro(layer, layer.op)(**layer.init_args(ports))
            call = f"self.{n}({', '.join(args)})"
        else:
            init = None
            call = _macro(layer, "call_" + layer.op)(args, **layer.call_args(ports))
        return LayerView(n, init, call, str(g.nodes[n]["type"]), g.nodes[n]["params"])

    branches = {}
    for role in ("shared", "light", "booster"):
        ids = c.layers(role)
        if not ids:
            branches[role] = None
            continue
        members = set(ids)
        reads = _ordered({u for n in ids for u in g.predecessors(n) if u not in members}, g)
        if role == "shared":
            outs = _ordered(
                {
                    u
                    for n in ids
                    for u, v in g.out_edges(n)
                    if g.nodes[v]["role"] in ("light", "booster")
                },
                g,
            )
        else:
            outs = [getattr(spec.heads, role), *feature_reads(c, role)]
        views = [layer_view(n) for n in ids]
        group = _embedding_group(c, ids, views)
        modules = [v for v in views if v.init is not None]
        if group is not None:  # the dict stands where its first member was; members leave
            first = group.members[0].id
            gone = {m.id for m in group.members} - {first}
            views = [group if v.id == first else v for v in views if v.id not in gone]
            modules = [group if v.id == first else v for v in modules if v.id not in gone]
        branches[role] = BranchView(
            role.capitalize(),
            BRANCH_DOCS[role],
            reads,
            views,
            outs,
            modules,
            [f"self.{lhs} = self.{rhs}" for lhs, rhs, where in _table_links(c) if where == role],
        )

    detached = {
        u for u, v, stop in g.edges(data="stop_gradient") if stop and g.nodes[v]["kind"] == "layer"
    }
    light_args = [f"{a}.detach()" if a in detached else a for a in branches["light"].args]

    helpers = {  # macro name -> its op
        h: g.nodes[n]["layer"]
        for n in c.layers()
        for h in g.nodes[n]["layer"].helpers_for(input_ports(g, n))
    }
    inputs = [_input_view(i.name, g.nodes[i.name]["type"]) for i in spec.inputs]

    counts = c.param_counts()
    has_tables = any(g.nodes[n]["layer"].tables(input_ports(g, n)) for n in c.layers())
    return {
        "embedding_init_std": EMBEDDING_INIT_STD if has_tables else None,
        "spec": spec,
        "title": _docstring_lines(
            f"{spec.name}: RocketNet (light + booster) and LightNet (served)."
        ),
        "description": _docstring_lines(spec.description),
        "provenance": _docstring_lines(
            f"Generated by rocketc from {Path(c.file).name}; plain PyTorch, safe to read, edit "
            "and ship."
        ),
        "helpers": [_macro(layer, h)() for h, layer in sorted(helpers.items())],
        "shared": branches["shared"],
        "light": branches["light"],
        "booster": branches["booster"],
        "light_args": light_args,
        # With shared layers the three nets derive from SharedBottom, which runs them once and
        # hands `branch_args` (what the light and booster branches read) to `branches`.
        "base": "SharedBottom" if branches["shared"] else "nn.Module",
        "branch_args": _ordered(set(branches["light"].args) | set(branches["booster"].args), g),
        "input_names": ", ".join(i.name for i in spec.inputs),
        "detach_shared": bool(detached),
        "ties": _tie_views(c),
        "tables": [f"self.{lhs} = self.{rhs}" for lhs, rhs, where in _table_links(c) if not where],
        "inputs": inputs,
        "counts": {k: f"{v:,}" for k, v in counts.items()},
        "logits_shape": str(g.nodes[spec.heads.light]["type"]),
        "loss": _loss_view(c),
    }


GROUP_MIN = 3  # alike embeddings written as one ModuleDict from this many on
# Embedding tables start from N(0, 1e-4), as CTR libraries (DeepCTR-Torch's init_std) draw them:
# with torch's default N(0, 1) the same DCN-v2 and DeepFM boosters trained 3.4 and 4.5 test-AUC
# points lower on MovieLens, and the peer's draw closed the gap (BENCHMARKS.md, peers part).
EMBEDDING_INIT_STD = 1e-4


def _embedding_group(c: Compiled, ids: list[str], views: list[LayerView]) -> GroupView | None:
    """The branch's alike per-field embeddings (see GroupView), when there are GROUP_MIN+."""
    g = c.graph
    linked = {part.split(".")[-2] for link in _table_links(c) for part in link[:2]}
    tied = {n for n in c.layers("light") if "tie_paths" in g.nodes[n]}
    tied |= {g.nodes[n]["layer"].tie for n in tied}
    by_dim: dict[int, list[LayerView]] = {}
    args: dict[str, str] = {}
    for view in views:
        layer = g.nodes[view.id]["layer"]
        ports = input_ports(g, view.id) or []
        if (
            layer.op != "embedding"
            or getattr(layer, "table", None)
            or view.id in linked | tied
            or len(ports) != 1
            or g.nodes[ports[0].name]["kind"] != "input"
            or ports[0].type.shape  # one id per example: (B,) -> (B, dim)
        ):
            continue
        by_dim.setdefault(layer.dim, []).append(view)
        args[view.id] = ports[0].name
    dim, members = max(by_dim.items(), key=lambda kv: len(kv[1]), default=(0, []))
    if len(members) < GROUP_MIN:
        return None
    name = next(f for f in ("embeddings", "field_embeddings", "embedding_tables") if f not in ids)
    return GroupView(name, members, [args[m.id] for m in members], dim)


def _input_view(name: str, t: TensorType) -> InputView:
    """A random example of one input: ids for categorical inputs (lists: (B, L), 0 = padding)."""
    dims = ", ".join(["batch_size", *map(str, t.shape)])
    if t.dtype == "index":
        shape = str(t).removesuffix(" int64")
        what = "ids" if not t.shape else "id lists, 0 = padding,"
        return InputView(
            name, f"torch.randint(0, {t.vocab}, ({dims},))", f"{shape} {what} in [0, {t.vocab})"
        )
    return InputView(name, f"torch.randn({dims})", str(t))


@dataclass
class TieView:
    """Statements that make light layers reuse booster weights, from the ops' `tie_` macros.

    A single (light, booster) pair: `body` names both modules and `pairs` is empty. Several pairs
    whose statements differ only in the modules: `body` reads the loop variables `light` and
    `booster`, and the template prints one loop over the table `pairs`.
    """

    pairs: list[tuple[str, str]]
    body: str


def _tie_views(c: Compiled) -> list[TieView]:
    g = c.graph
    groups: dict[str, list[tuple[str, str]]] = {}  # loop body -> module pairs, in spec order
    bodies: dict[str, str] = {}  # loop body -> the statements for its first pair alone
    for n in c.layers("light"):
        layer = g.nodes[n]["layer"]
        if "tie_paths" not in g.nodes[n]:
            continue
        tie = _macro(layer, "tie_" + layer.op)
        args = layer.tie_args(input_ports(g, n))
        pair = (f"self.light.{n}", f"self.booster.{layer.tie}")
        body = tie("light", "booster", **args)
        groups.setdefault(body, []).append(pair)
        bodies.setdefault(body, tie(*pair, **args))
    return [
        TieView(pairs, body) if len(pairs) > 1 else TieView([], bodies[body])
        for body, pairs in groups.items()
    ]


def _table_links(c: Compiled) -> list[tuple[str, str, str]]:
    """(reader weight, owner weight, branch) for every embedding table that several lookups use.

    Inside one layer (`same_tables`: inputs of one id space in field_embeddings) and between
    layers of one branch, the branch's __init__ links them ("branch" is its role), so that the
    branch is whole on its own; across branches (a booster layer using a shared table) RocketNet
    does ("branch" empty), as it makes ties.
    """
    g = c.graph
    links = []
    for n in c.layers():
        layer, role = g.nodes[n]["layer"], g.nodes[n]["role"]
        for mine, theirs in layer.same_tables(input_ports(g, n)):
            links.append((f"{n}.{mine}", f"{n}.{theirs}", role))
        owner = layer.borrows()
        for mine, theirs in g.nodes[n].get("table_paths", []):
            owner_role = g.nodes[owner]["role"]
            if owner_role == role:
                links.append((f"{n}.{mine}", f"{owner}.{theirs}", role))
            else:
                links.append((f"{role}.{n}.{mine}", f"{owner_role}.{owner}.{theirs}", ""))
    return links


def _macro(op: LayerBase | type[LayerBase], name: str) -> Callable[..., str]:
    """Macro `name` in the op's macro file (`LayerBase.macros`), returning the text it prints."""
    macro = getattr(_macros(op.macros), name)
    return lambda *args, **kwargs: str(macro(*args, **kwargs)).strip()


@cache
def _macros(where: str | Path) -> Any:
    env = environment()
    template = (
        env.from_string(where.read_text(encoding="utf-8"))
        if isinstance(where, Path)
        else env.get_template(where)
    )
    return template.module


def _ordered(names: set[str], g) -> list[str]:
    """Inputs first (spec order), then layers in spec order: stable argument lists."""
    return sorted(names, key=lambda n: (g.nodes[n]["kind"] != "input", g.nodes[n]["index"]))


@dataclass
class FeatureView:
    """One feature-hint pair as RocketNet.forward hands it to compute_loss."""

    term: str
    light: str  # the light layer read (a local of RocketNet.forward)
    booster: str
    adapter: str | None  # the adapter's constructor, when the widths differ

    @property
    def light_var(self) -> str:
        return f"{self.term}_light"

    @property
    def booster_var(self) -> str:
        return f"{self.term}_booster"


def _loss_view(c: Compiled) -> dict[str, Any]:
    """compute_loss, LOSS_WEIGHTS and loss_weights, all from the loss-term registry."""
    spec, g = c.spec, c.graph
    terms = graph_terms(g)
    exprs: list[tuple[str, str]] = []  # (name, expression)
    features: list[FeatureView] = []
    detach_logits = detach_features = False
    for term in terms:
        node = g.nodes[loss_node(term.name)]
        names: dict[str, str] = {}
        for read in term.reads:
            stop = g.edges[read.node, loss_node(term.name)]["stop_gradient"]
            if read.what == "logits":
                names[read.side] = "teacher" if read.teacher else f"{read.side}_logits"
                detach_logits |= stop
                continue
            var = f"{term.name}_{read.side}"
            detach_features |= stop
            names[read.side] = f"{var}.detach()" if stop else var
        if any(r.what == "features" for r in term.reads):
            adapter = node.get("adapter")
            features.append(
                FeatureView(
                    term.name,
                    term.read("light").node,
                    term.read("booster").node,
                    adapter.code() if adapter is not None else None,
                )
            )
        # With sample weights each term is computed per example and averaged with them.
        value = term.kind.per_example if spec.sample_weighted else term.kind.expression
        exprs.append((term.name, value(term, spec, names)))
    macros = environment().get_template("losses.jinja2").module
    helpers = sorted({h for term in terms for h in term.kind.helpers(term)})
    if spec.sample_weighted:
        helpers.append("weighted_mean")
    return {
        "terms": exprs,
        "weights": [(t.name, _num(t.weight)) for t in terms],
        "warmups": [(t.name, t.warmup_epochs) for t in terms if t.warmup_epochs],
        "constants": [
            (name, _num(value), why)
            for t in terms
            for name, (value, why) in t.kind.constants(t).items()
        ],
        "teacher_needed": any(r.what == "logits" and r.teacher for t in terms for r in t.reads),
        "detach": detach_logits,
        "features": features,
        "features_detach": detach_features,
        "adapters": [f for f in features if f.adapter is not None],
        "helpers": [str(getattr(macros, h)()) for h in helpers],
        "mode": spec.loss.gradient_block,
        "multiclass": spec.task == "multiclass",
        "weighted": spec.sample_weighted,
    }


def feature_reads(c: Compiled, side: str) -> list[str]:
    """Layers of `side`'s branch that feature hints read: the branch returns them too."""
    reads = [r.node for t in graph_terms(c.graph) for r in t.reads if r.what == "features"]
    head = getattr(c.spec.heads, side)
    return [n for n in dict.fromkeys(reads) if c.graph.nodes[n]["role"] == side and n != head]


def _docstring_lines(text: str) -> list[str]:
    """`text` made safe in a docstring and wrapped to fit the line length whatever a name's size.

    A name longer than a line stays whole on its own line (lint allows a line of one word).
    """
    return textwrap.wrap(docstring_text(text), 96, break_long_words=False, break_on_hyphens=False)


def _num(x: float) -> str:
    return repr(float(x))


# --- train.py ------------------------------------------------------------------------------
def _train_view(c: Compiled) -> dict[str, Any]:
    """The Settings fields, optimizer and schedule the spec uses, and only those."""
    t = c.spec.train
    o = t.optimizer
    s = t.schedule
    settings = [
        ("epochs", "int", repr(t.epochs), "passes over the training split"),
        ("batch_size", "int", repr(t.batch_size), "examples per optimizer step"),
        ("eval_batch_size", "int", repr(t.eval_batch_size), "examples per forward when evaluating"),
        ("lr", "float", repr(o.lr), "peak learning rate"),
    ]
    if o.name == "sgd":
        settings += [
            ("momentum", "float", repr(o.momentum), "SGD momentum"),
            ("nesterov", "bool", repr(o.nesterov), "Nesterov momentum"),
            ("weight_decay", "float", repr(o.weight_decay), "L2 penalty"),
        ]
    else:
        decay = "decoupled weight decay" if o.name == "adamw" else "L2 penalty"
        settings += [
            ("betas", "tuple[float, float]", repr(tuple(o.betas)), "Adam's moment decays"),
            ("weight_decay", "float", repr(o.weight_decay), decay),
        ]
    if isinstance(s, StepSchedule):
        settings += [
            ("milestones", "tuple[int, ...]", repr(tuple(s.milestones)), "epochs where lr drops"),
            ("gamma", "float", repr(s.gamma), "lr factor at each milestone"),
        ]
    elif isinstance(s, CosineSchedule):
        settings.append(("min_lr", "float", repr(s.min_lr), "final lr of the cosine"))
    settings += [
        (
            "clip_grad_norm",
            "float | None",
            repr(t.clip_grad_norm),
            "max global grad norm; None = no clipping",
        ),
        ("seed", "int", repr(t.seed), "seeds torch; the same seed gives the same run on CPU"),
        ("device", "str", json.dumps(t.device), "cpu | cuda | auto"),
        ("precision", "str", json.dumps(t.precision), "fp32 | bf16 (autocast on CUDA)"),
    ]
    return {
        "spec": c.spec,
        "summary": _docstring_lines(
            f"Training loop for {c.spec.name}'s twins, generated by rocketc from "
            f"{Path(c.file).name}."
        ),
        "settings": settings,
        "optimizer": o.name,
        "schedule": s.name,
        "features": any(r.what == "features" for t in graph_terms(c.graph) for r in t.reads),
        "weighted": c.spec.sample_weighted,
        "multiclass": c.spec.task == "multiclass",
    }
