"""Cheaper light nets derived from a spec: the sizes `rocketc shrink` trains.

Three ways to derive one, each an ordinary spec (the same `Source` a file gives, compiled by the
same pipeline):

- `by_macs(compiled, factor)`: every width of the light-only layers below the light head (mlp
  `units`, hidden `linear` outputs, conv channels: what each op's `widths()` names) is scaled by
  one ratio, found by bisection so the served light net's multiply-accumulates per example
  (shared layers included: they are served too) come out closest to `factor` × today's. The
  head keeps its output size; shared and booster layers, and light layers tied to a booster
  layer, are untouched. A factor that would need a width below 1, or that the shared layers'
  own cost makes unreachable, is a positioned `SpecError` at the layer that stops it.
- `by_depth(compiled, depth)`: the light tower keeps its `depth` lowest hidden stages (an mlp
  counts one stage per entry of `units`, a linear or conv layer one), the rest are dropped from
  the top, as in the paper's figure varying the light net's depth; a consumer of a dropped layer
  reads what that layer read.
- `with_light(compiled, fragment)`: the light layers replaced by a fragment's `layers:` (role
  light unless it says so; `head:` names its head, else the spec's light head id).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rocketc.compiler.load import Source, SourceMap
from rocketc.compiler.pipeline import Compiled, compile_source
from rocketc.errors import Diagnostic, RocketcError, SpecError

# A derived net may miss its target by this ratio (widths are whole numbers); beyond it the
# factor is refused as out of reach.
REACH = 1.25


@dataclass(frozen=True)
class Size:
    """One light net to train: how it was derived and what it costs to serve."""

    name: str  # "full", "x0.25", "depth_1", "light_<file stem>"
    how: str  # in words, for tables: "widths x0.37", "2 of 3 hidden stages", "small.yaml"
    compiled: Compiled
    factor: float | None = None  # the MAC factor asked for (by_macs)

    @property
    def macs(self) -> int:
        return self.compiled.macs()["light_net"] or 0

    @property
    def params(self) -> int:
        return self.compiled.param_counts()["light_net"]


def full_size(compiled: Compiled) -> Size:
    return Size("full", "the spec's light net", compiled, 1.0)


def scalable(compiled: Compiled) -> list[str]:
    """Light-only layers below the light head whose width can be scaled (not tied)."""
    nodes = compiled.graph.nodes
    head = compiled.spec.heads.light
    return [
        n
        for n in compiled.layers("light")
        if n != head and nodes[n]["layer"].tie is None and nodes[n]["layer"].widths()
    ]


def _layer_index(source: Source) -> dict[str, int]:
    return {layer.get("id"): i for i, layer in enumerate(source.data["layers"])}


def _scaled_source(compiled: Compiled, ratio: float) -> tuple[Source, list[tuple[str, float]]]:
    """The spec with every scalable width times `ratio` (rounded, at least 1); also the widths
    that rounding had to lift to 1, as (layer, unrounded width)."""
    data = copy.deepcopy(compiled.source.data)
    index = _layer_index(compiled.source)
    lifted: list[tuple[str, float]] = []
    for n in scalable(compiled):
        layer = data["layers"][index[n]]
        for key, value in compiled.graph.nodes[n]["layer"].widths().items():
            widths = value if isinstance(value, list) else [value]
            scaled = []
            for w in widths:
                exact = w * ratio
                if exact < 0.5:
                    lifted.append((n, exact))
                scaled.append(max(1, round(exact)))
            layer[key] = scaled if isinstance(value, list) else scaled[0]
    return Source(data, compiled.source.source_map), lifted


def by_macs(compiled: Compiled, factor: float) -> Size:
    """The spec's light net with its widths scaled so it serves at about `factor` × the MACs."""
    if not 0 < factor <= 1:
        raise RocketcError(f"a size factor must be in (0, 1], got {factor:g}")
    full = compiled.macs()["light_net"]
    if full is None:
        raise RocketcError(
            f"{compiled.file}: an op of this spec does not estimate its cost; shrink by --depths "
            "or --light instead"
        )
    if factor == 1:
        return full_size(compiled)
    layers = scalable(compiled)
    if not layers:
        head = compiled.spec.heads.light
        raise _at(compiled, head, f"the light net has no width to scale below its head '{head}'")
    target = factor * full

    def cost(ratio: float) -> tuple[float, Compiled, list]:
        source, lifted = _scaled_source(compiled, ratio)
        derived = compile_source(source)
        return derived.macs()["light_net"] or 0, derived, lifted

    # Bisection on the width ratio; MACs grow with it (between linearly and quadratically).
    lo, hi = 0.0, 1.0
    best: tuple[float, float, Compiled, list] | None = None
    for _ in range(40):
        mid = (lo + hi) / 2
        macs, derived, lifted = cost(mid)
        miss = abs(math.log(max(macs, 1) / target))
        if best is None or miss < best[0]:
            best = (miss, mid, derived, lifted)
        if macs > target:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-4:
            break
    assert best is not None
    miss, ratio, derived, lifted = best
    if lifted:
        n, exact = min(lifted, key=lambda item: item[1])
        raise _at(
            compiled,
            n,
            f"size x{factor:g} would leave layer '{n}' {exact:.2f} wide (below 1 unit): the "
            f"deepest cut this light net allows is about x{_floor(compiled, full):.3g}",
        )
    if miss > math.log(REACH):
        shared = sum(compiled.graph.nodes[n].get("macs") or 0 for n in compiled.layers("shared"))
        raise _at(
            compiled,
            layers[0],
            f"size x{factor:g} is out of reach: the shared layers alone cost {shared:,} of the "
            f"light net's {full:,} MACs per example (the cheapest derivable is about "
            f"x{_floor(compiled, full):.3g})",
        )
    name = f"x{factor:g}"
    return Size(name, f"widths x{ratio:.3f}", derived, factor)


def _floor(compiled: Compiled, full: int) -> float:
    """The smallest MAC factor width scaling reaches without a width below 1."""
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if _scaled_source(compiled, mid)[1]:
            lo = mid
        else:
            hi = mid
    macs = compile_source(_scaled_source(compiled, hi)[0]).macs()["light_net"] or 0
    return macs / full


def stages(compiled: Compiled) -> list[tuple[str, int | None]]:
    """The light tower's hidden stages, bottom to top: (layer, unit index) for each entry of an
    mlp's `units`, (layer, None) for a linear or conv layer. The head is not a stage."""
    nodes = compiled.graph.nodes
    out: list[tuple[str, int | None]] = []
    for n in scalable(compiled):
        widths = nodes[n]["layer"].widths()
        units = widths.get("units")
        if isinstance(units, list):
            out += [(n, i) for i in range(len(units))]
        else:
            out.append((n, None))
    return out


def by_depth(compiled: Compiled, depth: int) -> Size:
    """The light tower cut to its `depth` lowest hidden stages."""
    found = stages(compiled)
    if not 0 <= depth < len(found):
        head = compiled.spec.heads.light
        raise _at(
            compiled,
            head,
            f"depth {depth} is not below the light net's {len(found)} hidden stage(s); "
            f"choose from 0 to {len(found) - 1}",
        )
    data = copy.deepcopy(compiled.source.data)
    index = _layer_index(compiled.source)
    dropped: set[str] = set()
    keep_units: dict[str, int] = {}
    for n, unit in found[depth:]:
        if unit is None or unit == 0:
            dropped.add(n)
        else:
            keep_units[n] = min(keep_units.get(n, unit), unit)
    for n, count in keep_units.items():
        if n not in dropped:
            layer = data["layers"][index[n]]
            layer["units"] = list(layer["units"])[:count]
    # A consumer of a dropped layer reads what that layer read.
    reads = {n: _ins(data["layers"][index[n]]) for n in dropped}

    def resolve(name: str) -> list[str]:
        return [r for i in reads[name] for r in resolve(i)] if name in reads else [name]

    layers = []
    for layer in data["layers"]:
        if layer.get("id") in dropped:
            continue
        ins = [r for i in _ins(layer) for r in resolve(i)]
        layers.append({**layer, "in": ins if len(ins) > 1 else ins[0]})
    data["layers"] = layers
    derived = _compile_derived(compiled, data, f"depth {depth}")
    return Size(f"depth_{depth}", f"{depth} of {len(found)} hidden stages", derived)


def with_light(compiled: Compiled, fragment: Source, name: str) -> Size:
    """The spec with its light layers replaced by `fragment`'s `layers:` (and its `head:`)."""
    frag = fragment.data if isinstance(fragment.data, dict) else None
    if frag is None or not isinstance(frag.get("layers"), list) or not frag["layers"]:
        raise SpecError(
            [Diagnostic("a light-net fragment needs a non-empty layers: list", fragment.file)]
        )
    data = copy.deepcopy(compiled.source.data)
    kept = [layer for layer in data["layers"] if layer.get("role") != "light"]
    added = []
    for layer in frag["layers"]:
        if not isinstance(layer, dict):
            raise SpecError([Diagnostic("each layer must be a mapping", fragment.file)])
        added.append({**layer, "role": layer.get("role", "light")})
    data["layers"] = kept + added
    if "head" in frag:
        data.setdefault("heads", {})["light"] = frag["head"]
    derived = _compile_derived(compiled, data, fragment.file)
    return Size(f"light_{name}", fragment.file, derived)


def _compile_derived(compiled: Compiled, data: dict[str, Any], what: str) -> Compiled:
    """Compile a derived spec; its errors name what derived it (the file's positions moved)."""
    try:
        return compile_source(Source(data, SourceMap(f"{compiled.file} ({what})")))
    except RocketcError as exc:
        raise type(exc)([Diagnostic(d.message, d.file) for d in exc.diagnostics]) from None


def _ins(layer: dict[str, Any]) -> list[str]:
    value = layer.get("in", [])
    return [value] if isinstance(value, str) else list(value)


def _at(compiled: Compiled, layer: str, message: str) -> SpecError:
    index = _layer_index(compiled.source).get(layer)
    path = ("layers", index) if index is not None else ("heads",)
    file, pos = compiled.source.source_map.where(path)
    return SpecError([Diagnostic(message, file, pos)])


def derive_all(
    compiled: Compiled,
    factors: list[float],
    depths: list[int],
    fragments: list[tuple[str, Source]],
) -> list[Size]:
    """Every size asked for, the full-size light net first, each name once; all derivation
    errors at once."""
    sizes = [full_size(compiled)]
    diagnostics: list[Diagnostic] = []
    jobs: list[Callable[[], Size]] = [
        *(lambda f=f: by_macs(compiled, f) for f in factors if f != 1),
        *(lambda d=d: by_depth(compiled, d) for d in depths),
        *(lambda n=n, s=s: with_light(compiled, s, n) for n, s in fragments),
    ]
    for job in jobs:
        try:
            size = job()
        except RocketcError as exc:
            diagnostics += exc.diagnostics
            continue
        if all(size.name != s.name for s in sizes):
            sizes.append(size)
    if diagnostics:
        raise SpecError(diagnostics)
    return sizes


def reachable(compiled: Compiled, factors: list[float]) -> tuple[list[float], list[str]]:
    """The factors width scaling can reach, and a line for each one it cannot (the default
    factors are a menu: the out-of-reach ones are skipped, not refused)."""
    ok, skipped = [], []
    for factor in factors:
        try:
            by_macs(compiled, factor)
        except RocketcError as exc:
            skipped += [d.message for d in exc.diagnostics]
            continue
        ok.append(factor)
    return ok, skipped
