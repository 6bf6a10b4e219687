"""Stage 3: the spec as a networkx graph, the object every pass reads and annotates.

Nodes are spec inputs (`kind="input"`), layers (`kind="layer"`) and loss terms (`kind="loss"`,
named `loss:<name>` after the term's name in `rocketc.compiler.losses`, so they cannot clash with
identifiers; `term` holds the registry's Term). Each node keeps its YAML position.
An edge u -> v means v reads u; `port` is the argument index (edges into a loss node also say
which net's `side` they read, and whether that read is a `teacher`). Passes add attributes:
`type` (TensorType) on nodes, `adapter`/`params` on feature-hint terms, `stop_gradient` on edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from rocketc.compiler.load import SourceMap
from rocketc.compiler.losses import loss_node, spec_terms
from rocketc.compiler.ops import Port
from rocketc.compiler.spec import Spec
from rocketc.errors import Position


@dataclass
class Problems:
    """Facts the graph cannot hold but validate must report (duplicate ids, dangling names)."""

    duplicates: list[tuple[str, Position | None]]
    unknown_refs: list[tuple[str, str, Position | None]]  # (layer, missing name, position)


def build_graph(spec: Spec, source_map: SourceMap) -> nx.DiGraph:
    graph = nx.DiGraph(spec=spec, file=source_map.file)
    problems = Problems([], [])
    for i, inp in enumerate(spec.inputs):
        t = inp.tensor_type()  # dense: (B, *shape) float; categorical: (B,) ids; lists: (B, L)
        pos = source_map.pos(("inputs", i))
        if inp.name in graph:
            problems.duplicates.append((inp.name, pos))
            continue
        graph.add_node(inp.name, kind="input", role="input", input=inp, type=t, pos=pos, index=i)
    for i, layer in enumerate(spec.layers):
        pos = source_map.pos(("layers", i))
        if layer.id in graph:
            problems.duplicates.append((layer.id, pos))
            continue
        graph.add_node(layer.id, kind="layer", role=layer.role, layer=layer, pos=pos, index=i)
    for i, layer in enumerate(spec.layers):
        if graph.nodes[layer.id].get("layer") is not layer:
            continue  # a duplicate: reported, not wired
        for port, name in enumerate(layer.in_):
            if name in graph and graph.nodes[name]["kind"] != "loss":
                graph.add_edge(name, layer.id, port=port)
            else:
                problems.unknown_refs.append(
                    (
                        layer.id,
                        name,
                        source_map.pos(("layers", i, "in", port))
                        or source_map.pos(("layers", i, "in")),
                    )
                )
    _add_losses(graph, spec, source_map)
    graph.graph["problems"] = problems
    graph.graph["head_pos"] = {
        "light": source_map.pos(("heads", "light")),
        "booster": source_map.pos(("heads", "booster")),
    }
    return graph


def _add_losses(graph: nx.DiGraph, spec: Spec, source_map: SourceMap) -> None:
    """One `loss:<name>` node per term of the registry, wired from the tensors it reads."""
    for i, term in enumerate(spec_terms(spec)):
        node = loss_node(term.name)
        graph.add_node(
            node,
            kind="loss",
            role="loss",
            term=term,
            weight=term.weight,
            index=len(spec.layers) + i,
            pos=source_map.pos(term.path),
            read_pos={r.side: source_map.pos(r.path) for r in term.reads},
        )
        for port, read in enumerate(term.reads):
            if read.node in graph and graph.nodes[read.node]["kind"] == "layer":
                graph.add_edge(read.node, node, port=port, side=read.side, teacher=read.teacher)
            # else: validate reports the dangling name at `read_pos`


def layers_in_order(graph: nx.DiGraph) -> list[str]:
    """Layer ids in a deterministic topological order (ties broken by spec order)."""
    index = {n: (graph.nodes[n]["index"], n) for n in graph}
    order = nx.lexicographical_topological_sort(graph, key=lambda n: index[n])
    return [n for n in order if graph.nodes[n]["kind"] == "layer"]


def head_ids(graph: nx.DiGraph) -> tuple[str, str]:
    spec: Spec = graph.graph["spec"]
    return spec.heads.light, spec.heads.booster


def input_ports(graph: nx.DiGraph, n: str) -> list[Port] | None:
    """The typed inputs of layer `n` in argument order, or None if one is still unknown."""
    preds = sorted(graph.in_edges(n, data="port"), key=lambda e: e[2])
    ports = []
    for u, _, _ in preds:
        t = graph.nodes[u].get("type")
        if t is None:
            return None
        ports.append(Port(u, t))
    return ports
