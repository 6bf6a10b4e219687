"""The compiler passes, in the order they run. Each takes the graph and returns it annotated."""

from __future__ import annotations

import networkx as nx

from rocketc.compiler.passes.infer_shapes import infer_shapes
from rocketc.compiler.passes.insert_stop_gradients import insert_stop_gradients
from rocketc.compiler.passes.validate import validate

PASSES = (validate, infer_shapes, insert_stop_gradients)


def run_passes(graph: nx.DiGraph) -> nx.DiGraph:
    for compiler_pass in PASSES:
        graph = compiler_pass(graph)
    return graph
