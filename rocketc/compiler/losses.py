"""The loss-term registry: every term the twins train on, each defined once, by name.

A kind of term is one class decorated with `@loss_term`. It says, in one place: the term's name
(the key of the graph node `loss:<name>`, of the generated `LOSS_WEIGHTS` and `compute_loss`,
of the audit's rows and of the diagram), where its weight and warm-up come from in the spec and
the YAML path that positions its errors, which tensors it reads (a head's logits or a layer's
features, on the light or the booster side), its expression in the generated code, the parameter
groups the gradient-flow audit expects it to reach under each `gradient_block`, and its label in
the diagram. The graph, the passes, codegen, the audit and the diagram all read this module;
none of them lists terms. Adding a term is one class here plus its tests.

The names are `light`, `booster` (each net's label loss), `hint`, `kd` and `feature_hint_<i>`
(the i-th entry of `loss.feature_hints`). A term whose weight is 0 is not computed at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import networkx as nx

from rocketc.compiler.ops import TensorType
from rocketc.compiler.spec import FeatureHint, Spec

Side = Literal["light", "booster"]
Column = Literal["light", "both", "booster"]

# Parameter groups of the audit: what `param_roles()` of the generated RocketNet reports, with
# the tied weights (light layers reusing booster weights) split out of "shared".
GROUPS = ("shared", "light", "booster", "tied", "adapter")


@dataclass(frozen=True)
class Read:
    """One tensor a term reads: a head's logits or a layer's output, on one net's side."""

    side: Side
    node: str  # a layer id
    what: Literal["logits", "features"]
    teacher: bool  # the booster read of a term that teaches: cut by the gradient block
    path: tuple[Any, ...]  # the YAML path naming `node` (heads.light, loss.feature_hints[0].light)


@dataclass(frozen=True)
class Term:
    """One loss term of one spec."""

    name: str
    kind: LossKind
    weight: float
    warmup_epochs: int
    path: tuple[Any, ...]  # the YAML path of the term's settings (its diagnostics point here)
    reads: tuple[Read, ...]
    config: Any = None  # the spec model it comes from (Hint, KD, FeatureHint), if any

    def read(self, side: Side) -> Read:
        return next(r for r in self.reads if r.side == side)


@dataclass(frozen=True)
class Adapter:
    """A training-only projection of light features to the booster's width (FitNets)."""

    op: Literal["conv", "linear"]
    in_width: int
    out_width: int

    @property
    def params(self) -> int:
        return self.in_width * self.out_width + self.out_width  # weight + bias

    def code(self) -> str:
        if self.op == "conv":
            return f"nn.Conv2d({self.in_width}, {self.out_width}, kernel_size=1)"
        return f"nn.Linear({self.in_width}, {self.out_width})"

    def text(self) -> str:
        what = "1×1 conv" if self.op == "conv" else "linear"
        return f"{what} adapter {self.in_width} → {self.out_width} ({self.params:,} params)"


class TermError(Exception):
    """A term cannot read what the spec points it at (shape inference reports it, positioned)."""


class LossKind:
    """What every kind of term defines; the base gives the defaults of a term with no options."""

    name: ClassVar[str]  # the term's name, or the prefix of its numbered instances
    column: ClassVar[Column]  # under which head the diagram draws it
    teaches: ClassVar[bool] = False  # reads the booster as a teacher (the gradient block cuts it)

    def terms(self, spec: Spec) -> list[Term]:
        """This kind's terms in `spec` (weight above 0), in order."""
        raise NotImplementedError

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        """The term's value in generated `compute_loss`; `names` holds what each side reads."""
        raise NotImplementedError

    def helpers(self, term: Term) -> tuple[str, ...]:
        """Functions (macros of templates/losses.jinja2) the expression calls."""
        return ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        """One line for the diagram under the term's name and weight."""
        raise NotImplementedError

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        """Whether the audit should find the term's gradient on parameter `group`."""
        raise NotImplementedError

    def infer(self, term: Term, types: dict[Side, TensorType]) -> Adapter | None:
        """Check the read tensors fit the term (raise TermError); return its adapter, if any."""
        return None


LOSS_KINDS: dict[str, LossKind] = {}


def loss_term(cls: type[LossKind]) -> type[LossKind]:
    """Register a kind of loss term; the registration order is the order of the terms."""
    if cls.name in LOSS_KINDS:
        raise ValueError(f"loss term {cls.name!r} is registered twice")
    LOSS_KINDS[cls.name] = cls()
    return cls


def spec_terms(spec: Spec) -> list[Term]:
    """Every term `spec` trains with (weight above 0), in registry order."""
    return [term for kind in LOSS_KINDS.values() for term in kind.terms(spec)]


def graph_terms(graph: nx.DiGraph) -> list[Term]:
    """The terms of a built graph, in the same order (its `loss:<name>` nodes)."""
    nodes = sorted(
        (n for n in graph if graph.nodes[n]["kind"] == "loss"),
        key=lambda n: graph.nodes[n]["index"],
    )
    return [graph.nodes[n]["term"] for n in nodes]


def dotted(path: tuple[Any, ...]) -> str:
    """A YAML path as users write it: `loss.feature_hints[0].light`."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def loss_node(name: str) -> str:
    """The graph node of term `name` (a colon cannot clash with an identifier)."""
    return f"loss:{name}"


# --- the label losses --------------------------------------------------------------------------
def _head(spec: Spec, side: Side, teacher: bool = False) -> Read:
    return Read(side, getattr(spec.heads, side), "logits", teacher, ("heads", side))


def _label_loss(logits: str, spec: Spec) -> str:
    if spec.task == "multiclass":
        return f"F.cross_entropy({logits}, target)"
    return f"F.binary_cross_entropy_with_logits({logits}.squeeze(1), target)"


def _ce(spec: Spec) -> str:
    return "cross-entropy" if spec.task == "multiclass" else "binary cross-entropy"


@loss_term
class LightLabels(LossKind):
    """The light net's own label loss (cross-entropy, or BCE for a binary task)."""

    name = "light"
    column = "light"

    def terms(self, spec: Spec) -> list[Term]:
        w = spec.loss.light
        return (
            [Term(self.name, self, w, 0, ("loss", "light"), (_head(spec, "light"),))] if w else []
        )

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss(names["light"], spec)

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"{_ce(spec)}, light logits"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        # What the light net runs, and the shared layers unless `shared` detaches them for it.
        if group == "shared":
            return mode != "shared"
        return group in ("light", "tied")


@loss_term
class BoosterLabels(LossKind):
    """The booster's own label loss; it trains the booster, the shared and the tied weights."""

    name = "booster"
    column = "booster"

    def terms(self, spec: Spec) -> list[Term]:
        w = spec.loss.booster
        path = ("loss", "booster")
        return [Term(self.name, self, w, 0, path, (_head(spec, "booster"),))] if w else []

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        return _label_loss(names["booster"], spec)

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"{_ce(spec)}, booster logits"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return group in ("shared", "booster", "tied")


# --- the booster teaching the light net through the logits ------------------------------------
def _teaching_reaches(mode: str, group: str) -> bool:
    """A term reading the light logits and the booster's as a teacher.

    It trains what the light net runs (the tied weights too); it reaches booster-only weights
    only without a gradient block, and the shared layers unless `shared` detaches them.
    """
    if group == "booster":
        return mode == "none"
    if group == "shared":
        return mode != "shared"
    return group in ("light", "tied")


@loss_term
class Hint(LossKind):
    """The paper's hint: squared error between the light and the booster logits (or probs)."""

    name = "hint"
    column = "both"
    teaches = True

    def terms(self, spec: Spec) -> list[Term]:
        h = spec.loss.hint
        if not h.weight:
            return []
        reads = (_head(spec, "light"), _head(spec, "booster", teacher=True))
        return [Term(self.name, self, h.weight, h.warmup_epochs, ("loss", "hint"), reads, h)]

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        h = term.config
        student, teacher = names["light"], names["booster"]
        if h.normalize == "zscore":
            student, teacher = f"zscore({student})", f"zscore({teacher})"
        if h.on == "probs":
            scale = "" if h.temperature == 1.0 else f" / {_num(h.temperature)}"
            if spec.task == "multiclass":
                student = f"F.softmax({student}{scale}, dim=1)"
                teacher = f"F.softmax({teacher}{scale}, dim=1)"
            else:
                student, teacher = (
                    f"torch.sigmoid({student}{scale})",
                    f"torch.sigmoid({teacher}{scale})",
                )
        if h.reduction == "mean":
            return f"F.mse_loss({student}, {teacher})"
        return f"({student} - {teacher}).pow(2).sum(dim=1).mean()"

    def helpers(self, term: Term) -> tuple[str, ...]:
        return ("zscore",) if term.config.normalize == "zscore" else ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        h = term.config
        what = h.on if h.temperature == 1.0 else f"{h.on} at T = {h.temperature:g}"
        if h.normalize == "zscore":
            what = f"z-scored {what}"
        return f"MSE of {what} ({h.reduction}){_warmup(term)}"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return _teaching_reaches(mode, group)


@loss_term
class KD(LossKind):
    """Online knowledge distillation: KL at temperature T (x T^2) to the booster's outputs."""

    name = "kd"
    column = "both"
    teaches = True

    def terms(self, spec: Spec) -> list[Term]:
        kd = spec.loss.kd
        if not kd.weight:
            return []
        reads = (_head(spec, "light"), _head(spec, "booster", teacher=True))
        return [Term(self.name, self, kd.weight, kd.warmup_epochs, ("loss", "kd"), reads, kd)]

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        t = _num(term.config.temperature)
        student, teacher = names["light"], names["booster"]
        if spec.task == "multiclass":
            return (
                f"F.kl_div(F.log_softmax({student} / {t}, dim=1), "
                f'F.softmax({teacher} / {t}, dim=1), reduction="batchmean") * {t}**2'
            )
        return (
            f"F.binary_cross_entropy_with_logits({student} / {t}, "
            f"torch.sigmoid({teacher} / {t})) * {t}**2"
        )

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        return f"KL at T = {term.config.temperature:g}{_warmup(term)}"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        return _teaching_reaches(mode, group)


# --- the booster teaching through intermediate features ---------------------------------------
@loss_term
class FeatureHints(LossKind):
    """`loss.feature_hints[i]`: a light layer's output against a booster layer's.

    `mse` compares them through a training-only adapter (1x1 conv for maps, linear for vectors)
    when the widths differ; `attention` compares where they look (attention transfer).
    """

    name = "feature_hint"
    column = "both"
    teaches = True

    def terms(self, spec: Spec) -> list[Term]:
        out = []
        for i, f in enumerate(spec.loss.feature_hints):
            if not f.weight:
                continue  # numbered by position all the same: names stay put when tuning
            path = ("loss", "feature_hints", i)
            reads = (
                Read("light", f.light, "features", False, (*path, "light")),
                Read("booster", f.booster, "features", True, (*path, "booster")),
            )
            out.append(Term(f"{self.name}_{i}", self, f.weight, f.warmup_epochs, path, reads, f))
        return out

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        loss = "F.mse_loss" if term.config.kind == "mse" else "attention_distance"
        return f"{loss}({names['light']}, {names['booster']})"

    def helpers(self, term: Term) -> tuple[str, ...]:
        return ("attention_distance",) if term.config.kind == "attention" else ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        f: FeatureHint = term.config
        adapter: Adapter | None = node.get("adapter")
        light = f.light if adapter is None else f"{f.light} → {adapter.text()}"
        what = "MSE" if f.kind == "mse" else "attention transfer"
        return f"{what}: {light} vs {f.booster}{_warmup(term)}"

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        if group == "adapter":
            return graph.nodes[loss_node(term.name)].get("adapter") is not None
        light = _upstream_groups(graph, term.read("light").node)
        booster = _upstream_groups(graph, term.read("booster").node)
        if group == "booster":
            return mode == "none" and "booster" in booster
        if group == "shared":
            reached = light | booster if mode == "none" else light
            return mode != "shared" and "shared" in reached
        if group == "tied":
            return "tied" in light or (mode == "none" and "tied" in booster)
        return group in light  # light: the light side is never detached

    def infer(self, term: Term, types: dict[Side, TensorType]) -> Adapter | None:
        f: FeatureHint = term.config
        light, booster = types["light"], types["booster"]
        names = {"light": f"light layer '{f.light}'", "booster": f"booster layer '{f.booster}'"}
        for side, t in types.items():
            if len(t.shape) not in (1, 3) or t.dtype != "float":
                raise TermError(
                    f"{names[side]} gives {t}; a feature hint compares feature maps "
                    "(B, C, H, W) or vectors (B, D)"
                )
        if len(light.shape) != len(booster.shape):
            raise TermError(
                f"{names['light']} gives {light} but {names['booster']} gives {booster}: "
                "a feature hint compares maps with maps or vectors with vectors"
            )
        if f.kind == "attention" and len(light.shape) != 3:
            raise TermError(
                f"kind attention compares spatial maps, but {names['light']} gives {light} and "
                f"{names['booster']} {booster}; use kind: mse for vectors"
            )
        if light.shape[1:] != booster.shape[1:]:
            size = "×".join(map(str, light.shape[1:]))
            other = "×".join(map(str, booster.shape[1:]))
            raise TermError(
                f"{names['light']} gives {light} but {names['booster']} gives {booster}: "
                f"spatial sizes differ ({size} vs {other}); pick layers of the same resolution"
            )
        if f.kind == "attention" or light.shape[0] == booster.shape[0]:
            return None
        return Adapter(
            "conv" if len(light.shape) == 3 else "linear", light.shape[0], booster.shape[0]
        )


def _upstream_groups(graph: nx.DiGraph, node: str) -> set[str]:
    """The parameter groups of `node` and the layers it reads, directly or not."""
    groups = set()
    for n in nx.ancestors(graph, node) | {node}:
        data = graph.nodes[n]
        if data["kind"] != "layer" or not data.get("params"):
            continue
        tied = _tied_size(graph, n)
        if tied:
            groups.add("tied")
        if data["params"] > tied:
            groups.add(data["role"])
    return groups


def _tied_size(graph: nx.DiGraph, n: str) -> int:
    """Elements of layer `n` that a tie shares between the nets (from either end of the tie)."""
    data = graph.nodes[n]
    if data["role"] == "light":
        return sum(size for _, size in data.get("tie_paths", []))
    return sum(
        size
        for m in graph
        if graph.nodes[m]["kind"] == "layer" and graph.nodes[m]["layer"].tie == n
        for _, size in graph.nodes[m].get("tie_paths", [])
    )


def _warmup(term: Term) -> str:
    return f", warm-up {term.warmup_epochs} epochs" if term.warmup_epochs else ""


def _num(x: float) -> str:
    return repr(float(x))
