"""The pipeline: load -> spec -> graph -> passes. Back ends (codegen, viz) take the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from rocketc.compiler.graph import build_graph, layers_in_order
from rocketc.compiler.load import Source, SourceMap, load_file, load_text
from rocketc.compiler.overrides import apply_overrides
from rocketc.compiler.passes import run_passes
from rocketc.compiler.spec import Spec, parse_spec
from rocketc.errors import Diagnostic, RocketcError


@dataclass
class Compiled:
    """A checked spec and its annotated graph."""

    spec: Spec
    graph: nx.DiGraph
    source: Source

    @property
    def file(self) -> str:
        return self.source.file

    def layers(self, role: str | None = None) -> list[str]:
        order = layers_in_order(self.graph)
        return [n for n in order if role is None or self.graph.nodes[n]["role"] == role]

    def param_counts(self) -> dict[str, int]:
        """Parameters per role (tied weights counted once, as shared), and per net.

        `adapter`: the feature hints' training-only adapters, in `total` (they are trained) but
        in neither net (they are never served).
        """
        nodes = self.graph.nodes
        by_role = {"shared": 0, "light": 0, "booster": 0}
        for n in self.layers():
            by_role[nodes[n]["role"]] += nodes[n]["params"]
        tied = sum(size for n in self.layers("light") for _, size in nodes[n].get("tie_paths", []))
        by_role["light"] -= tied
        by_role["shared"] += tied
        by_role["booster"] -= tied
        adapter = sum(nodes[n].get("params", 0) for n in self.graph if nodes[n]["kind"] == "loss")
        return {
            **by_role,
            "adapter": adapter,
            "light_net": by_role["shared"] + by_role["light"],
            "booster_net": by_role["shared"] + by_role["booster"],
            "total": sum(by_role.values()) + adapter,
        }

    def macs(self) -> dict[str, int | None]:
        """Multiply-accumulates per example of each net (`light_net`: what is served), summed
        over its layers' `macs`; None where an op does not estimate its own."""
        nodes = self.graph.nodes
        out: dict[str, int | None] = {}
        for net, roles in (
            ("light_net", ("shared", "light")),
            ("booster_net", ("shared", "booster")),
        ):
            costs = [nodes[n].get("macs") for n in self.layers() if nodes[n]["role"] in roles]
            out[net] = None if any(c is None for c in costs) else sum(costs)
        return out


def compile_source(source: Source) -> Compiled:
    try:
        spec = parse_spec(source)
        graph = run_passes(build_graph(spec, source.source_map))
    except RocketcError as exc:
        raise _blame_overrides(exc, source.source_map) from None
    return Compiled(spec, graph, source)


def _blame_overrides(exc: RocketcError, source_map: SourceMap) -> RocketcError:
    """A diagnostic that points at file text a `--set` replaced names that `--set` instead:
    the text there is not what was compiled (`--set heads.light=nope`: the head is 'nope')."""
    replaced = {}
    for path, origin in source_map.overrides.items():
        for table in (source_map.positions, source_map.key_positions):
            replaced.update({pos: origin for p, pos in table.items() if p[: len(path)] == path})
    if not replaced:
        return exc
    diagnostics = [
        Diagnostic(d.message, replaced[d.pos])
        if d.file == source_map.file and d.pos in replaced
        else d
        for d in exc.diagnostics
    ]
    return type(exc)(diagnostics)


def compile_file(path: str | Path, overrides: Sequence[str] = ()) -> Compiled:
    """Load, override and compile a spec file: the library's entry point.

    `overrides` are `--set` assignments (`"loss.hint.weight=0.1"`); a mistake in one is reported
    against the assignment, not the file's line.
    """
    source = load_file(path)
    if overrides:
        source = apply_overrides(source, list(overrides))
    return compile_source(source)


def compile_text(text: str, file: str = "<spec>") -> Compiled:
    return compile_source(load_text(text, file))
