"""Pass: mark the edges where the gradient must stop, per the spec's `gradient_block`.

- booster (the paper's gradient block): every term that teaches (hint, KD, feature hints; see
  `rocketc.compiler.losses`) reads the booster's tensor detached, so those terms update light
  and shared weights but never a booster-only weight.
- shared (EasyRec style): as booster, and the light branch also reads shared tensors detached,
  so only the booster's losses train the shared layers.
- none: nothing is detached (the paper's ablation).

Code generation emits `.detach()` exactly on the edges marked `stop_gradient=True`.
"""

from __future__ import annotations

import networkx as nx


def insert_stop_gradients(graph: nx.DiGraph) -> nx.DiGraph:
    mode = graph.graph["spec"].loss.gradient_block
    for u, v in graph.edges:
        graph.edges[u, v]["stop_gradient"] = False
    if mode == "none":
        return graph
    for u, v, teacher in graph.edges(data="teacher"):
        if teacher:  # the booster read of a teaching term, as the loss registry says
            graph.edges[u, v]["stop_gradient"] = True
    if mode == "shared":
        for u, v in graph.edges:
            if graph.nodes[u]["role"] == "shared" and graph.nodes[v]["role"] == "light":
                graph.edges[u, v]["stop_gradient"] = True
    return graph


def stop_gradient_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    return sorted((u, v) for u, v, stop in graph.edges(data="stop_gradient") if stop)
