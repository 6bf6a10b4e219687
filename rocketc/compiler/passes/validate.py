"""Pass: the layers form a valid pair of twin networks.

Checks unique ids, known references, op arity, acyclicity, the role rules (a shared layer reads
only inputs and shared layers; light reads shared/light; booster reads shared/booster), the heads,
that every layer feeds a head, that shared layers feed both, the tie targets, the layers whose
embedding tables others use (`table:`, by the same role rules), and that the layers a loss term
reads (feature hints) exist and belong to the net of their side.
"""

from __future__ import annotations

import networkx as nx

from rocketc.compiler.graph import head_ids
from rocketc.compiler.losses import dotted
from rocketc.errors import Collector, GraphError

# Which roles a layer of each role may read.
_MAY_READ = {
    "shared": {"input", "shared"},
    "light": {"input", "shared", "light"},
    "booster": {"input", "shared", "booster"},
}


def validate(graph: nx.DiGraph) -> nx.DiGraph:
    errors = Collector(graph.graph["file"])
    nodes = graph.nodes
    problems = graph.graph["problems"]
    for name, pos in problems.duplicates:
        first = nodes[name]["pos"]
        where = f" (first defined at line {first.line})" if first else ""
        errors.add(f"duplicate name '{name}'{where}", pos)
    for layer_id, missing, pos in problems.unknown_refs:
        errors.add(
            f"layer '{layer_id}' reads '{missing}', which is neither an input nor a layer", pos
        )

    layers = [n for n in graph if nodes[n]["kind"] == "layer"]
    for n in graph:
        if nodes[n]["kind"] == "input" and graph.out_degree(n) == 0:
            # Served code would take (and every data source would have to feed) a dead argument.
            errors.add(f"input '{n}' is read by no layer; remove it or use it", nodes[n]["pos"])
    for n in layers:
        layer = nodes[n]["layer"]
        lo, hi = layer.arity
        count = len(layer.in_)
        if count < lo or (hi is not None and count > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}..{hi}"
            errors.add(
                f"layer '{n}' ({layer.op}) takes {want} input(s), got {count}", nodes[n]["pos"]
            )
        # The graph has one edge per (reader, read) pair, so `in: [a, a]` would lose an input.
        for name in sorted({x for x in layer.in_ if layer.in_.count(x) > 1}):
            errors.add(f"layer '{n}' reads '{name}' more than once", nodes[n]["pos"])

    for cycle in _cycles(graph):
        errors.add(
            "layers form a cycle: " + " -> ".join([*cycle, cycle[0]]), nodes[cycle[0]]["pos"]
        )

    for u, v in graph.edges:
        if nodes[v]["kind"] != "layer":
            continue
        role_u, role_v = nodes[u]["role"], nodes[v]["role"]
        if role_u not in _MAY_READ[role_v]:
            errors.add(
                f"{role_v} layer '{v}' cannot read {role_u} layer '{u}': " + _why(role_v),
                nodes[v]["pos"],
            )

    spec = graph.graph["spec"]
    heads_ok = True
    for which, head in zip(("light", "booster"), head_ids(graph), strict=True):
        pos = graph.graph["head_pos"][which]
        if which == "booster" and head == spec.heads.light:
            # One layer cannot be both heads; say so rather than that its role is wrong.
            errors.add("the light and booster heads must differ", pos)
            heads_ok = False
        elif head not in graph or nodes[head]["kind"] != "layer":
            errors.add(f"{which} head '{head}' is not a layer", pos)
            heads_ok = False
        elif nodes[head]["role"] != which:
            errors.add(
                f"{which} head '{head}' must be a {which} layer, not {nodes[head]['role']}", pos
            )
            heads_ok = False
    _check_term_reads(graph, errors)
    # With a dangling or duplicate name the wiring is unknown: "feeds no head" would be noise.
    if heads_ok and not problems.duplicates and not problems.unknown_refs:
        light_head, booster_head = head_ids(graph)
        feeds_light = nx.ancestors(graph, light_head) | {light_head}
        feeds_booster = nx.ancestors(graph, booster_head) | {booster_head}
        for n in layers:
            role, pos = nodes[n]["role"], nodes[n]["pos"]
            if n not in feeds_light and n not in feeds_booster:
                errors.add(f"layer '{n}' feeds neither head; remove it or use it", pos)
            elif role == "shared" and n not in feeds_light:
                errors.add(f"shared layer '{n}' only feeds the booster; mark it booster", pos)
            elif role == "shared" and n not in feeds_booster:
                errors.add(f"shared layer '{n}' only feeds the light net; mark it light", pos)

    for n in layers:
        layer = nodes[n]["layer"]
        if layer.tie is None:
            continue
        pos = nodes[n]["pos"]
        target = layer.tie
        if layer.role != "light":
            errors.add(
                f"layer '{n}' is {layer.role}; only light layers tie to booster weights", pos
            )
        elif target not in graph or nodes[target]["kind"] != "layer":
            errors.add(f"layer '{n}' ties to '{target}', which is not a layer", pos)
        elif nodes[target]["role"] != "booster":
            errors.add(
                f"layer '{n}' ties to {nodes[target]['role']} layer '{target}'; "
                "ties point at booster layers",
                pos,
            )
        elif nodes[target]["layer"].op != layer.op:
            errors.add(
                f"layer '{n}' ({layer.op}) cannot tie '{target}' "
                f"({nodes[target]['layer'].op}): ops differ",
                pos,
            )
    _check_tables(graph, layers, errors)
    tied_to: dict[str, str] = {}
    for n in layers:
        target = nodes[n]["layer"].tie if nodes[n]["role"] == "light" else None  # else reported
        if target is not None and target in tied_to:
            errors.add(f"layers '{tied_to[target]}' and '{n}' both tie '{target}'", nodes[n]["pos"])
        elif target is not None:
            tied_to[target] = n

    errors.raise_if_any(GraphError)
    return graph


def _check_tables(graph: nx.DiGraph, layers: list[str], errors: Collector) -> None:
    """A layer using another layer's embedding table (`table:`) may use it the way it may read
    that layer; and a light layer never trains a shared table under gradient_block: shared."""
    nodes = graph.nodes
    mode = graph.graph["spec"].loss.gradient_block
    for n in layers:
        owner = nodes[n]["layer"].borrows()
        if owner is None:
            continue
        role, pos = nodes[n]["role"], nodes[n]["pos"]
        if owner == n:
            errors.add(f"layer '{n}' uses its own table; leave table: out", pos)
        elif owner not in graph or nodes[owner]["kind"] != "layer":
            errors.add(f"layer '{n}' uses the table of '{owner}', which is not a layer", pos)
        elif nodes[owner]["role"] not in _MAY_READ[role]:
            errors.add(
                f"{role} layer '{n}' cannot use the table of {nodes[owner]['role']} layer "
                f"'{owner}': " + _why(role),
                pos,
            )
        elif role == "light" and nodes[owner]["role"] == "shared" and mode == "shared":
            errors.add(
                f"light layer '{n}' would train the table of shared layer '{owner}' with the "
                "light net's losses, and gradient_block: shared leaves the shared layers to the "
                "booster; give it a table of its own (or read the shared layer's output)",
                pos,
            )


def _check_term_reads(graph: nx.DiGraph, errors: Collector) -> None:
    """Loss terms reading intermediate layers (feature hints) read a layer of their side's net.

    Head reads are the heads' own checks above.
    """
    nodes = graph.nodes
    for n in graph:
        if nodes[n]["kind"] != "loss":
            continue
        term = nodes[n]["term"]
        for read in term.reads:
            if read.what != "features":
                continue
            pos = nodes[n]["read_pos"][read.side]
            where = dotted(read.path)
            if read.node not in graph or nodes[read.node]["kind"] != "layer":
                errors.add(f"{where}: '{read.node}' is not a layer", pos)
            elif nodes[read.node]["role"] != read.side:
                role = nodes[read.node]["role"]
                errors.add(
                    f"{where}: '{read.node}' is a {role} layer; {term.name} needs a "
                    f"{read.side} layer here" + _why_side(role),
                    pos,
                )


def _why_side(role: str) -> str:
    if role == "shared":
        return " (a shared layer runs in both nets: nothing to teach it there)"
    return ""


def _cycles(graph: nx.DiGraph) -> list[list[str]]:
    cycles = [[u] for u, _ in nx.selfloop_edges(graph)]  # a layer reading itself
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            sub = graph.subgraph(component)
            cycle = [u for u, _ in nx.find_cycle(sub)]
            start = cycle.index(min(cycle))  # stable text whatever networkx's walk order
            cycles.append(cycle[start:] + cycle[:start])
    return sorted(cycles)


def _why(role: str) -> str:
    if role == "shared":
        return "shared layers run in both nets, so they read only inputs and shared layers"
    other = "booster" if role == "light" else "light"
    return f"the {role} net never runs {other} layers"
