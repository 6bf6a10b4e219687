"""Pass: every tensor's per-example shape, known at compile time.

Sets `type` (TensorType) and `params` on every layer node, `tie_paths` on tied light layers and
`table_paths` on layers that use another layer's embedding table (`table:`),
checks that both heads give logits of the task's width, and lets each loss term check what it
reads (a feature hint sets its `adapter` and the adapter's `params` on its node). A layer whose
input already failed is skipped, so one mistake gives one message rather than a cascade.
"""

from __future__ import annotations

import networkx as nx

from rocketc.compiler.graph import head_ids, input_ports, layers_in_order
from rocketc.compiler.losses import TermError, dotted
from rocketc.compiler.ops import OpError, TensorType
from rocketc.compiler.ops.base import borrowed_tables
from rocketc.errors import Collector, ShapeError


def infer_shapes(graph: nx.DiGraph) -> nx.DiGraph:
    errors = Collector(graph.graph["file"])
    nodes = graph.nodes
    for n in layers_in_order(graph):
        ports = input_ports(graph, n)
        if ports is None:
            continue
        layer = nodes[n]["layer"]
        try:
            nodes[n]["type"] = layer.infer(ports)
            nodes[n]["params"] = layer.num_params(ports)
            nodes[n]["macs"] = layer.macs(ports)
        except OpError as exc:
            errors.add(str(exc), nodes[n]["pos"])

    for n in layers_in_order(graph):
        layer = nodes[n]["layer"]
        if layer.tie is None or "type" not in nodes[n] or "type" not in nodes[layer.tie]:
            continue
        try:
            nodes[n]["tie_paths"] = layer.tie_paths(
                input_ports(graph, n), nodes[layer.tie]["layer"], input_ports(graph, layer.tie)
            )
        except OpError as exc:
            errors.add(str(exc), nodes[n]["pos"])

    for n in layers_in_order(graph):
        owner = nodes[n]["layer"].borrows()
        if owner is None or "type" not in nodes[n] or "type" not in nodes[owner]:
            continue
        try:
            nodes[n]["table_paths"] = borrowed_tables(
                nodes[n]["layer"],
                input_ports(graph, n),
                nodes[owner]["layer"],
                input_ports(graph, owner),
            )
        except OpError as exc:
            errors.add(str(exc), nodes[n]["pos"])

    spec = graph.graph["spec"]
    want = TensorType((spec.out_features,))
    for which, head in zip(("light", "booster"), head_ids(graph), strict=True):
        got = nodes[head].get("type")
        if got is not None and got != want:
            what = (
                f"{spec.num_classes} classes" if spec.task == "multiclass" else "one logit (binary)"
            )
            errors.add(
                f"{which} head '{head}' gives {got} but the task needs {want}: {what}",
                graph.graph["head_pos"][which],
            )
    _infer_terms(graph, errors)
    errors.raise_if_any(ShapeError)
    return graph


def _infer_terms(graph: nx.DiGraph, errors: Collector) -> None:
    """Each loss term checks the tensors it reads; a feature hint may get an adapter."""
    nodes = graph.nodes
    for n in graph:
        if nodes[n]["kind"] != "loss":
            continue
        term = nodes[n]["term"]
        types = {r.side: nodes[r.node].get("type") for r in term.reads}
        if any(t is None for t in types.values()):
            continue  # a layer it reads already failed
        try:
            adapter = term.kind.infer(term, types)
        except TermError as exc:
            errors.add(f"{dotted(term.path)}: {exc}", nodes[n]["pos"])
            continue
        nodes[n]["adapter"] = adapter
        nodes[n]["params"] = adapter.params if adapter is not None else 0
