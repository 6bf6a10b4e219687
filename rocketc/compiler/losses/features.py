"""Feature hints: an intermediate light layer against a booster layer (FitNets; attention)."""

from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from rocketc.compiler.losses.base import (
    Adapter,
    LossKind,
    Read,
    Side,
    Term,
    TermError,
    Tunable,
    loss_node,
    loss_term,
    warmup_text,
)
from rocketc.compiler.ops import TensorType
from rocketc.compiler.spec import FeatureHint, Spec


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
    off: ClassVar[dict[str, Any]] = {"loss.feature_hints": []}

    def tunables(self, spec: Spec, epochs: int) -> list[Tunable]:
        return [
            Tunable(f"loss.feature_hints.{i}.weight", "float", 0.01, 10.0, log=True, zero=True)
            for i, _ in enumerate(spec.loss.feature_hints)
        ]

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

    def per_example(self, term: Term, spec: Spec, names: dict[Side, str]) -> str:
        light, booster = names["light"], names["booster"]
        if term.config.kind == "mse":
            return f"({light} - {booster}).pow(2).flatten(1).mean(dim=1)"
        # attention_distance before its batch mean: the squared distance of the two maps.
        maps = [f"F.normalize({x}.pow(2).mean(dim=1).flatten(1), dim=1)" for x in (light, booster)]
        return f"({maps[0]} - {maps[1]}).pow(2).sum(dim=1)"

    def helpers(self, term: Term) -> tuple[str, ...]:
        return ("attention_distance",) if term.config.kind == "attention" else ()

    def label(self, term: Term, spec: Spec, node: dict[str, Any]) -> str:
        f: FeatureHint = term.config
        adapter: Adapter | None = node.get("adapter")
        light = f.light if adapter is None else f"{f.light} → {adapter.text()}"
        what = "MSE" if f.kind == "mse" else "attention transfer"
        return f"{what}: {light} vs {f.booster}{warmup_text(term)}"

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
