"""Folding for the sharing diagram: a wide fan of look-alike layers drawn as one table node.

A CTR spec embeds every categorical field on its own and concatenates the embeddings; drawn box
by box, 36 fields make two rows of 36 boxes that no page holds. A *fan* is FOLD_MIN or more layers
of one op and one role that each read one spec input nothing else reads, and that all feed the
same layer over edges of the same kind (stop-grad or not). The diagram draws a fan as one node:
a header with the count and their total parameters, then one row per layer,
`input → layer  sizes  params`, in the consumer's argument order, and a single edge to the
consumer. The fan's inputs are named in the rows instead of being drawn.

Kept apart, so that every tie link still has a box at each end: layers that tie and the booster
layers they tie to, layers using another's embedding table (`table:`) and the layers they use.
Only one op per fan (ctr_movielens's `genre_proj` linear stays beside its seven embeddings) so
that the header can say what every row is.

A *group* is one layer whose op embeds many inputs at once (`field_embeddings`, the field-group
shorthand; any op whose `table_rows` answers): it is drawn the same way, one row per input,
whatever its size, and the inputs only it reads are named in its rows instead of being drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import networkx as nx

from rocketc.compiler import Compiled
from rocketc.compiler.graph import input_ports

# Below this a fan is narrow enough to draw box by box; quickstart, the CNN and the WRN specs have
# no fan at all, and ctr_movielens's 7 embeddings fold.
FOLD_MIN = 4
_GREY = "#595959"  # column names, as the input boxes' border
_STRIPE = "#ffffff80"  # every other row, on any role's fill: the eye keeps to its row


@dataclass(frozen=True)
class Fold:
    """One fan of layers drawn as one node."""

    id: str  # DOT id: "fold." + its first layer; the dot cannot clash with a spec name
    consumer: str  # the one layer every member feeds
    role: str
    op: str
    layers: tuple[str, ...]  # in the consumer's argument order
    inputs: tuple[str, ...]  # layers[i] reads inputs[i], and nothing else reads it
    # A group: one layer (`layers[0]`) reading every input of `rows` (input, sizes, params);
    # `inputs` holds those only it reads (not drawn).
    rows: tuple[tuple[str, str, int], ...] = ()


def find_folds(c: Compiled) -> list[Fold]:
    """Every group, and every fan of FOLD_MIN or more layers, in the order of their first layer
    in the spec."""
    g = c.graph
    groups = [fold for n in c.layers() if (fold := _group(c, n)) is not None]
    tied = {
        end for n in c.layers() if (tie := g.nodes[n]["layer"].tie) is not None for end in (n, tie)
    }
    tied |= {  # "same table" links too
        end for n in c.layers() if (owner := g.nodes[n]["layer"].borrows()) for end in (n, owner)
    }
    fans: dict[tuple, list[str]] = {}
    for n in c.layers():
        source, consumer = _only(g.predecessors(n)), _only(g.successors(n))
        if (
            n in tied
            or source is None
            or consumer is None
            or g.nodes[source]["kind"] != "input"
            or g.out_degree(source) != 1
            or g.nodes[consumer]["kind"] != "layer"
        ):
            continue
        key = (
            consumer,
            g.nodes[n]["role"],
            g.nodes[n]["layer"].op,
            bool(g.edges[n, consumer].get("stop_gradient")),
        )
        fans.setdefault(key, []).append(n)
    folds = []
    for (consumer, role, op, _), members in fans.items():
        if len(members) < FOLD_MIN:
            continue
        members.sort(key=lambda n: g.edges[n, consumer]["port"])
        folds.append(
            Fold(
                "fold." + members[0],
                consumer,
                role,
                op,
                tuple(members),
                tuple(_only(g.predecessors(n)) for n in members),
            )
        )
    return sorted(folds + groups, key=lambda f: min(g.nodes[n]["index"] for n in f.layers))


def _group(c: Compiled, n: str) -> Fold | None:
    """Layer `n` as a group, if its op draws itself as a table (`LayerBase.table_rows`)."""
    g = c.graph
    ports = input_ports(g, n)
    rows = g.nodes[n]["layer"].table_rows(ports) if ports is not None else None
    if rows is None:
        return None
    only_here = tuple(
        p.name for p in ports if g.nodes[p.name]["kind"] == "input" and g.out_degree(p.name) == 1
    )
    consumer = _only(g.successors(n)) or ""
    op = g.nodes[n]["layer"].op
    return Fold("fold." + n, consumer, g.nodes[n]["role"], op, (n,), only_here, tuple(rows))


def fold_label(g: nx.DiGraph, fold: Fold, op_text: Callable) -> str:
    """The folded node's HTML label: a header, column names, then one row per layer.

    `op_text(g, n)` is the diagram's one-line op description of layer `n`; the rows drop its
    leading op name, which heads the column instead. The header names the layers by their op's
    `plural` ("embeddings"), or "<op> layers".
    """
    if fold.rows:
        return _group_label(g, fold)
    nodes = g.nodes
    total = sum(nodes[n]["params"] for n in fold.layers)
    noun = nodes[fold.layers[0]]["layer"].plural or f"{fold.op} layers"
    types = {str(nodes[n]["type"]) for n in fold.layers}
    each = f"  ·  each {types.pop()}" if len(types) == 1 else ""
    head = [
        ("left", "input"),
        ("center", ""),
        ("left", "layer"),
        ("left", fold.op),
        ("right", "params"),
    ]
    rows = [_row(head, color=_GREY)]
    for inp, n in zip(fold.inputs, fold.layers, strict=True):
        sizes = op_text(g, n).removeprefix(fold.op + " ")
        if len(types) > 1:
            sizes += f"  {nodes[n]['type']}"
        rows.append(
            _row(
                [
                    ("left", inp),
                    ("center", "→"),
                    ("left", n),
                    ("left", sizes),
                    ("right", f"{nodes[n]['params']:,}"),
                ],
                bgcolor=_STRIPE if len(rows) % 2 == 0 else "",
            )
        )
    title = (
        f"<tr><td colspan='{2 * len(head) - 1}' align='left'><b>{len(fold.layers)} "
        f"{escape(noun)}</b>  ·  {total:,} params{escape(each)}</td></tr>"
    )
    return (
        f"<<table border='0' cellborder='0' cellspacing='0' cellpadding='2'>"
        f"{title}{rows[0]}<hr/>{''.join(rows[1:])}</table>>"
    )


def _group_label(g: nx.DiGraph, fold: Fold) -> str:
    """A group's label: its id and size, column names, then one row per input it embeds."""
    (n,) = fold.layers
    node = g.nodes[n]
    noun = node["layer"].plural or f"{fold.op} inputs"
    head = [("left", "input"), ("center", ""), ("left", fold.op), ("right", "params")]
    rows = [_row(head, color=_GREY)]
    for inp, sizes, params in fold.rows:
        rows.append(
            _row(
                [("left", inp), ("center", "→"), ("left", sizes), ("right", f"{params:,}")],
                bgcolor=_STRIPE if len(rows) % 2 == 0 else "",
            )
        )
    title = (
        f"<tr><td colspan='{2 * len(head) - 1}' align='left'><b>{escape(n)}</b>: "
        f"{len(fold.rows)} {escape(noun)}  ·  {node['params']:,} params  ·  "
        f"{escape(str(node['type']))}</td></tr>"
    )
    return (
        f"<<table border='0' cellborder='0' cellspacing='0' cellpadding='2'>"
        f"{title}{rows[0]}<hr/>{''.join(rows[1:])}</table>>"
    )


def _row(cells: list[tuple[str, str]], color: str = "#000000", bgcolor: str = "") -> str:
    """One table row; narrow empty cells between the columns keep numbers from touching."""
    bg = f" bgcolor='{bgcolor}'" if bgcolor else ""
    tds = [
        f"<td align='{align}'{bg}><font point-size='9' color='{color}'>{escape(text)}</font></td>"
        if text
        else f"<td{bg}></td>"  # an empty <font></font> is a syntax error
        for align, text in cells
    ]
    return "<tr>" + f"<td width='6'{bg}></td>".join(tds) + "</tr>"


def _only(names) -> str | None:
    names = list(names)
    return names[0] if len(names) == 1 else None
