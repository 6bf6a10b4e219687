"""What every loss term is made of, and the registry that collects the terms in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import networkx as nx

from rocketc.compiler.ops import TensorType
from rocketc.compiler.spec import Spec

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


Lookup = Callable[[str], Any]  # a spec path -> its value in a tune trial (sampled, else the spec's)


@dataclass(frozen=True)
class Tunable:
    """One spec path `rocketc tune` searches for a kind of term, by default: a range (`float`,
    `int`; `zero`: 0 is a choice of its own besides [low, high]) or `choices`, searched only
    `when` it holds for the trial's other values, and removed from the spec when `unset_when`
    holds (a choice made it invalid)."""

    path: str
    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    zero: bool = False
    choices: tuple[Any, ...] = ()
    when: Callable[[Lookup], bool] | None = None
    unset_when: Callable[[Lookup], bool] | None = None


def when_on(path: str) -> Callable[[Lookup], bool]:
    """Searched only while the weight at `path` is above 0."""
    return lambda get: bool(get(path))


class TermError(Exception):
    """A term cannot read what the spec points it at (shape inference reports it, positioned)."""


class LossKind:
    """What every kind of term defines; the base gives the defaults of a term with no options."""

    name: ClassVar[str]  # the term's name, or the prefix of its numbered instances
    column: ClassVar[Column]  # under which head the diagram draws it
    teaches: ClassVar[bool] = False  # reads the booster as a teacher (the gradient block cuts it)
    # The spec keys (dotted, as `--set` writes them) and values that switch every term of this
    # kind off: `ablate`'s light-alone row and `tune`'s baseline set them for every kind that
    # teaches, so a new teaching term is off there without being listed anywhere else.
    off: ClassVar[dict[str, Any]] = {}

    def terms(self, spec: Spec) -> list[Term]:
        """This kind's terms in `spec` (weight above 0), in order."""
        raise NotImplementedError

    def expression(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        """The term's value in generated `compute_loss`; `names` holds what each side reads."""
        raise NotImplementedError

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        """The term per example, (B,), for a spec with sample weights (`data.weight`): the
        generated compute_loss averages it with the weights, and its plain batch mean equals
        `expression` (tests/test_weighted_loss.py holds every registered kind to that)."""
        raise NotImplementedError

    def constants(self, term: Term) -> dict[str, tuple[float, str]]:
        """Named module constants the expression reads (NAME -> (value, why)), so generated
        code says `/ KD_TEMPERATURE` rather than a bare number."""
        return {}

    def helpers(self, term: Term) -> tuple[str, ...]:
        """Functions (macros of templates/losses.jinja2) the expression calls."""
        return ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        """One line for the diagram under the term's name and weight."""
        raise NotImplementedError

    def reaches(self, term: Term, mode: str, group: str, graph: nx.DiGraph) -> bool:
        """Whether the audit should find the term's gradient on parameter `group`."""
        raise NotImplementedError

    def tunables(self, spec: Spec, epochs: int) -> list[Tunable]:
        """What `rocketc tune` searches of this kind by default (a teaching kind's weight at
        least); `epochs` bounds warm-ups."""
        return []

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


def teaching_off() -> dict[str, Any]:
    """Spec keys and values that switch off every kind of term that teaches (registry order)."""
    out: dict[str, Any] = {}
    for kind in LOSS_KINDS.values():
        if kind.teaches:
            out.update(kind.off)
    return out


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


def warmup_text(term: Term) -> str:
    """The diagram's note on a warm-up, or nothing."""
    return f", warm-up {term.warmup_epochs} epochs" if term.warmup_epochs else ""


def num(x: float) -> str:
    """A float as generated Python prints it."""
    return repr(float(x))
