"""Back end: the sharing diagram of a compiled spec, as Graphviz DOT text and rendered files.

The picture answers the review questions about a Rocket Launching pair at a glance: which layers
both nets run (shared, on top), what each net owns (light cluster left, booster right), which
light layers reuse booster weights (dotted "tied weights" links), which layers look ids up in
another layer's embedding table ("same table"), which loss terms read which head, and where the
gradient stops. Stop-gradient edges come from the graph's `stop_gradient`
attribute, the one code generation turns into `.detach()`, so the diagram cannot disagree with
the generated model.

A wide fan of look-alike layers (a CTR spec's per-field embeddings) is folded into one table
node so that tens of fields stay legible; `rocketc.backends.viz_fold` says what folds and when.

The DOT text is deterministic (graph order, no timestamps) so it can be golden-tested, and this
module never imports torch: `rocketc viz` answers as fast as `rocketc check`.
"""

from __future__ import annotations

import shutil
from html import escape
from itertools import pairwise
from pathlib import Path

import graphviz
import networkx as nx

from rocketc.backends.viz_fold import Fold, find_folds, fold_label
from rocketc.compiler import Compiled
from rocketc.compiler.graph import head_ids, input_ports
from rocketc.errors import Diagnostic, VizError
from rocketc.files import write_atomic

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`)"
)

# (fill, border) per role: the same colours in nodes, clusters and the legend.
COLORS = {
    "shared": ("#e6dcf5", "#6a4fa3"),
    "light": ("#d5e8f8", "#2e75b6"),
    "booster": ("#fde3cb", "#c8651b"),
    "input": ("#ffffff", "#595959"),
    "loss": ("#f2f2f2", "#404040"),
}
EDGE_COLOR = "#595959"
STOP_COLOR = "#d62728"
TIE_COLOR = "#2e7d32"
CLUSTERS = {
    "shared": "shared (both nets)",
    "light": "light net (served)",
    "booster": "booster (training only)",
}
FONT = "Helvetica"
# Left to right under the heads: the light net's label loss under the light head, the terms
# reading both nets in the middle, the booster's label loss under the booster head (each term's
# `column` in the loss registry).
LOSS_ORDER = ("light", "both", "booster")


def to_dot(compiled: Compiled) -> str:
    """The diagram as DOT text (same spec, same bytes)."""
    g = compiled.graph
    ties = _ties(compiled)
    dot = graphviz.Digraph(compiled.spec.name)
    dot.attr(
        "graph",
        rankdir="TB",
        newrank="true",
        fontname=FONT,
        fontsize="12",
        # Tie links are labelled in the gap between the light and booster clusters.
        nodesep="1.0" if ties else "0.4",
        ranksep="0.55",
        labelloc="t",
        labeljust="c",
        label=_title(compiled),
    )
    dot.attr(
        "node",
        shape="box",
        style="rounded,filled",
        fontname=FONT,
        fontsize="10",
        margin="0.12,0.05",
        penwidth="1.2",
    )
    dot.attr("edge", color=EDGE_COLOR, arrowsize="0.7", fontname=FONT, fontsize="9")

    folds = find_folds(compiled)
    folded = {n: fold for fold in folds for n in fold.layers}
    hidden = {n for fold in folds for n in fold.inputs}  # named in their fold's rows
    _inputs(dot, g, hidden)
    for role in ("shared", "light", "booster"):
        _cluster(dot, compiled, role, folded)
    losses = _losses(dot, compiled)
    with dot.subgraph(name="heads") as sub:
        sub.attr(rank="same")  # both heads level, the light net on the left
        light_head, booster_head = head_ids(g)
        sub.edge(light_head, booster_head, style="invis")

    for u, v, data in sorted(g.edges(data=True), key=lambda e: _edge_key(g, e)):
        if u in hidden or (u in folded and u != folded[u].layers[0]):
            continue  # a fold draws one edge, its first layer's, to their one consumer
        attrs = {}
        if data.get("stop_gradient"):
            # xlabel, not label: dot gives labelled edges double rank spacing, which opens gaps
            # in columns of unequal length.
            attrs = {
                "color": STOP_COLOR,
                "fontcolor": STOP_COLOR,
                "style": "dashed",
                "penwidth": "2",
                "xlabel": "stop-grad",
            }
        elif g.nodes[v]["kind"] == "loss":
            attrs = {"color": COLORS[g.nodes[u]["role"]][1]}
        head = folded[v].id if v in folded else _dot_id(g, v)  # into a group's table node
        dot.edge(folded[u].id if u in folded else _dot_id(g, u), head, **attrs)

    links = [(a, b, "tied weights") for a, b in ties]
    links += [(a, b, "same table") for a, b in _tables(compiled)]
    for user, owner, text in links:
        # constraint=false: the link must not pull the booster column up or down.
        dot.edge(
            user,
            folded[owner].id if owner in folded else owner,
            xlabel=text,
            style="dotted",
            dir="none",
            color=TIE_COLOR,
            fontcolor=TIE_COLOR,
            penwidth="2",
            constraint="false",
        )

    _legend(dot, compiled, losses[0] if losses else None)
    return dot.source


def render(compiled: Compiled, out: str | Path) -> Path:
    """Write the diagram to `out`; its suffix (.svg, .png, .pdf, .dot) picks the format.

    Raises VizError when Graphviz's `dot` is missing; the DOT text is then still written next to
    `out` (same name, .dot suffix), so nothing computed is lost and it can be rendered elsewhere.
    """
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise VizError(
            [
                Diagnostic(
                    f"cannot tell the format from the suffix '{out.suffix}'; use one of "
                    + ", ".join("." + f for f in FORMATS),
                    str(out),
                )
            ]
        )
    text = to_dot(compiled)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        write_atomic(out, text)
        return out
    if shutil.which("dot") is None:
        _missing_dot(text, out, fmt)
    try:
        data = graphviz.Source(text).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        _missing_dot(text, out, fmt)
    except graphviz.CalledProcessError as exc:
        stderr = (exc.stderr or b"").decode(errors="replace").strip()
        raise VizError([Diagnostic(f"Graphviz's `dot` failed: {stderr}", str(out))]) from None
    write_atomic(out, data)
    return out


def _missing_dot(text: str, out: Path, fmt: str) -> None:
    dot_path = out.with_suffix(".dot")
    write_atomic(dot_path, text)
    raise VizError(
        [
            Diagnostic(
                "Graphviz's `dot` program was not found, so the diagram was not rendered; its "
                f"DOT text is in {dot_path}. To render it, {INSTALL_HINT} and rerun, or run "
                f"`dot -T{fmt} {dot_path} -o {out}`",
                str(out),
            )
        ]
    )


# --- parts of the picture ------------------------------------------------------------------
def _inputs(dot: graphviz.Digraph, g: nx.DiGraph, hidden: set[str]) -> None:
    inputs = sorted(
        (n for n in g if g.nodes[n]["kind"] == "input" and n not in hidden),
        key=lambda n: g.nodes[n]["index"],
    )
    with dot.subgraph(name="inputs") as sub:
        sub.attr(rank="source")  # inputs on top, whatever reads them
        for n in inputs:
            sub.node(n, _input_label(g, n), style="rounded", color=COLORS["input"][1])


def _cluster(dot: graphviz.Digraph, c: Compiled, role: str, folded: dict[str, Fold]) -> None:
    ids = c.layers(role)
    if not ids:
        return
    fill, border = COLORS[role]
    with dot.subgraph(name=f"cluster_{role}") as sub:
        sub.attr(
            label=f"<<b>{CLUSTERS[role]}</b>>",
            color=border,
            fontcolor=border,
            style="rounded,dashed",
            penwidth="1.2",
            labeljust="l",
            labelloc="t",
        )
        for n in ids:
            if n not in folded:
                sub.node(n, _layer_label(c.graph, n), fillcolor=fill, color=border)
            elif n == min(folded[n].layers, key=ids.index):  # the fold stands where it starts
                sub.node(
                    folded[n].id,
                    fold_label(c.graph, folded[n], _op_text),
                    fillcolor=fill,
                    color=border,
                )


def _losses(dot: graphviz.Digraph, c: Compiled) -> list[str]:
    """The loss-term nodes on the bottom rank, by LOSS_ORDER column; returns their DOT ids."""
    g = c.graph
    nodes = sorted(
        (n for n in g if g.nodes[n]["kind"] == "loss"),
        key=lambda n: (LOSS_ORDER.index(g.nodes[n]["term"].kind.column), g.nodes[n]["index"]),
    )
    ids = [_dot_id(g, n) for n in nodes]
    fill, border = COLORS["loss"]
    with dot.subgraph(name="cluster_loss") as sub:
        sub.attr(
            label="<<b>loss</b> = Σ weight × term>",
            color=border,
            fontcolor=border,
            style="rounded,dashed",
            labelloc="b",
        )
        with sub.subgraph(name="loss_rank") as rank:
            rank.attr(rank="sink")
            for n, node_id in zip(nodes, ids, strict=True):
                rank.node(node_id, _loss_label(c, n), fillcolor=fill, color=border, style="filled")
            for a, b in pairwise(ids):
                rank.edge(a, b, style="invis")  # a flat chain fixes the left-to-right order
    return ids


def _ties(c: Compiled) -> list[tuple[str, str]]:
    """(light layer, booster layer) for every `tie` in the spec."""
    g = c.graph
    return [
        (n, g.nodes[n]["layer"].tie)
        for n in c.layers("light")
        if g.nodes[n]["layer"].tie is not None
    ]


def _tables(c: Compiled) -> list[tuple[str, str]]:
    """(layer, the layer whose embedding table it uses) for every `table:` in the spec."""
    g = c.graph
    return [(n, owner) for n in c.layers() if (owner := g.nodes[n]["layer"].borrows())]


def _legend(dot: graphviz.Digraph, c: Compiled, first_loss: str | None) -> None:
    """One HTML table: role colours and the edge styles this diagram uses."""
    rows = ["<b>legend</b>"]
    for role in ("shared", "light", "booster"):
        fill, border = COLORS[role]
        rows.append((f"{role} layer", f" bgcolor='{fill}' color='{border}' border='1'"))
    rows.append(f"<font color='{EDGE_COLOR}'>──▶ reads (gradient flows back)</font>")
    if any(stop for _, _, stop in c.graph.edges(data="stop_gradient")):
        rows.append(f"<font color='{STOP_COLOR}'>- - ▶ stop-grad (.detach())</font>")
    else:
        rows.append(f"<font color='{STOP_COLOR}'>no stop-grad (gradient_block: none)</font>")
    if _ties(c):
        rows.append(f"<font color='{TIE_COLOR}'>· · · · tied weights</font>")
    if _tables(c):
        rows.append(f"<font color='{TIE_COLOR}'>· · · · same embedding table</font>")
    cells = "".join(
        f"<tr><td{r[1]}>{r[0]}</td></tr>" if isinstance(r, tuple) else f"<tr><td>{r}</td></tr>"
        for r in rows
    )
    table = f"<<table border='0' cellborder='0' cellspacing='3' cellpadding='3'>{cells}</table>>"
    with dot.subgraph(name="legend_rank") as rank:
        rank.attr(rank="same")  # on the loss terms' rank: the bottom corner, out of the way
        rank.node("legend.", table, style="rounded", color="#bfbfbf")
        if first_loss is not None:
            rank.edge("legend.", first_loss, style="invis")


# --- labels --------------------------------------------------------------------------------
def _title(c: Compiled) -> str:
    counts = c.param_counts()
    ratio = counts["booster_net"] / max(counts["light_net"], 1)
    rows = [
        f"<font point-size='16'><b>{escape(c.spec.name)}</b></font>",
        f"<font point-size='10' color='#595959'>{escape(c.spec.description)}</font>",
        f"light net <b>{counts['light_net']:,}</b> params (served)  ·  booster "
        f"<b>{counts['booster_net']:,}</b> ({ratio:.1f}× light)  ·  of which shared "
        f"{counts['shared']:,}  ·  gradient_block: <b>{c.spec.loss.gradient_block}</b>",
    ]
    if counts["adapter"]:
        rows[-1] += f"  ·  feature-hint adapters {counts['adapter']:,} (training only)"
    if not c.spec.description:
        del rows[1]  # `description` is optional, and an empty <font></font> stops Graphviz
    # A table, not <br/>: the underscores of a big bold name would touch the line below.
    cells = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    return f"<<table border='0' cellspacing='0' cellpadding='2'>{cells}</table>>"


def _input_label(g: nx.DiGraph, n: str) -> str:
    t = g.nodes[n]["type"]
    what = f"ids &lt; {t.vocab:,}" if t.dtype == "index" else escape(str(t))
    if t.dtype == "index" and t.space not in ("", n):  # vocab_from: the ids of another input
        what += f", {escape(t.space)}'s"
    return f"<<b>{escape(n)}</b><br/><font point-size='9'>input {what}</font>>"


def _layer_label(g: nx.DiGraph, n: str) -> str:
    node = g.nodes[n]
    params = node["params"]
    size = f"{params:,} params" if params else "no params"
    tied = sum(s for _, s in node.get("tie_paths", []))
    if tied:
        size += f" ({tied:,} tied)"
    return (
        f"<<b>{escape(n)}</b><br/>{escape(_op_text(g, n))}<br/>"
        f"<font point-size='9'>{escape(str(node['type']))}<br/>{size}</font>>"
    )


def _op_text(g: nx.DiGraph, n: str) -> str:
    """The op and the settings that make its size (the op's own `label`)."""
    return g.nodes[n]["layer"].label(input_ports(g, n))


def _loss_label(c: Compiled, n: str) -> str:
    """The term's name (as in LOSS_WEIGHTS and the audit), weight, and what it computes."""
    node = c.graph.nodes[n]
    term = node["term"]
    what = term.kind.label(term, c.spec, node)
    return (
        f"<<b>{escape(term.name)}</b> × {node['weight']:g}<br/>"
        f"<font point-size='9'>{escape(what)}</font>>"
    )


# --- ids and order -------------------------------------------------------------------------
def _dot_id(g: nx.DiGraph, n: str) -> str:
    # "loss.hint", not the graph's "loss:hint": in a DOT edge a colon means node:port. A dot
    # cannot clash with a spec name, which is a Python identifier.
    return "loss." + g.nodes[n]["term"].name if g.nodes[n]["kind"] == "loss" else n


def _edge_key(g: nx.DiGraph, edge) -> tuple:
    u, v, _ = edge
    return (g.nodes[v]["kind"] == "loss", g.nodes[v]["index"], g.nodes[u]["index"], u, v)
