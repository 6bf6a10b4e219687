"""Stage 1: read a spec file into plain Python data plus a map of YAML source positions.

Positions are kept per path (`("layers", 3, "out_features")`), so later stages can point at the
user's text: pydantic error locations and graph nodes both resolve through `SourceMap.pos`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from rocketc.errors import Diagnostic, LoadError, Position

PathKey = tuple[Any, ...]

# Limits on what a spec file may make rocketc do. A real spec is a few kilobytes and a few
# levels deep (the 36-field CTR spec is 9 KB, depth 5); these bounds are far above that and keep
# hostile input (alias-expansion bombs, megabytes of text, deep nesting) linear and small.
MAX_SPEC_BYTES = 1 << 20  # 1 MiB of text
MAX_NODES = 100_000  # values after expanding YAML aliases and merge keys
MAX_DEPTH = 32  # nested mappings/lists


@dataclass
class SourceMap:
    """YAML positions by data path; `pos` falls back to the nearest enclosing path."""

    file: str
    positions: dict[PathKey, Position] = field(default_factory=dict)
    # Where each mapping key itself is written (an unknown field is reported at its key).
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    # Values written from outside the file, by path: what wrote them (`--set a.b=1`).
    overrides: dict[PathKey, str] = field(default_factory=dict)

    def pos(self, path: PathKey) -> Position | None:
        path = tuple(path)
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return None
            path = path[:-1]

    def where(self, path: PathKey) -> tuple[str, Position | None]:
        """What to blame for the value at `path`: the override that wrote it or a key it added
        (no position: it is not in the file), else the file and the nearest position."""
        path = tuple(path)
        for key, origin in reversed(self.overrides.items()):  # the last --set of a path wins
            inside = path[: len(key)] == key
            added = key[: len(path)] == path and path not in self.positions
            if inside or added:
                return origin, None
        return self.file, self.pos(path)


@dataclass
class Source:
    data: Any
    source_map: SourceMap

    @property
    def file(self) -> str:
        return self.source_map.file


def load_text(text: str, file: str = "<spec>") -> Source:
    """Parse YAML text; a syntax error becomes a LoadError pointing at the offending character.

    Size, nesting and alias expansion are capped (`MAX_*` above), each with a positioned error.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_SPEC_BYTES:
        raise LoadError(
            [
                Diagnostic(
                    f"spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} (a spec describes "
                    "a model, not data: put tables in the data section's files)",
                    file,
                    Position(1, 1),
                )
            ]
        )
    _check_flow_depth(text, file)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise LoadError([Diagnostic(f"invalid YAML: {problem}", file, pos)]) from None
    except RecursionError:
        message = f"invalid YAML: nested more than {MAX_DEPTH} levels deep"
        raise LoadError([Diagnostic(message, file, Position(1, 1))]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        raise LoadError([Diagnostic(f"invalid YAML: {exc}", file, None)]) from None
    # The document starts at its first key or item, past any header comment.
    start = Position(raw.lc.line + 1, raw.lc.col + 1) if _is_container(raw) else Position(1, 1)
    source_map = SourceMap(file, {(): start})
    walk = _Walk(file, source_map)
    data = walk.plain(raw, (), start)
    return Source(data, source_map)


def load_file(path: str | Path) -> Source:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError([Diagnostic("no such file", str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError([Diagnostic(f"cannot read spec: {exc}", str(path))]) from None
    return load_text(text, str(path))


class _Walk:
    """Turns ruamel's commented containers into dicts/lists, recording each child's position.

    Counts every value it produces, so an alias-expansion bomb (each alias expanded here is a new
    copy) stops at `MAX_NODES` instead of exhausting memory, and caps nesting at `MAX_DEPTH`.
    """

    def __init__(self, file: str, source_map: SourceMap):
        self.file = file
        self.source_map = source_map
        self.nodes = 0

    def _count(self, path: PathKey, pos: Position | None) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise LoadError(
                [
                    Diagnostic(
                        f"spec expands to more than {MAX_NODES:,} values (YAML aliases "
                        "repeated inside each other?)",
                        self.file,
                        pos,
                    )
                ]
            )
        if len(path) > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep"
            raise LoadError([Diagnostic(message, self.file, pos)])

    def plain(self, node: Any, path: PathKey, pos: Position | None) -> Any:
        self._count(path, pos)
        positions, key_positions = self.source_map.positions, self.source_map.key_positions
        if isinstance(node, CommentedMap):
            out = {}
            for key in node:
                # Scalars point at their value, containers at their key.
                child = _mark(node, key, value=_is_scalar(node[key]))
                if child is not None:
                    positions[path + (key,)] = child
                key_pos = _mark(node, key, value=False)
                if key_pos is not None:
                    key_positions[path + (key,)] = key_pos
                out[_scalar(key)] = self.plain(node[key], path + (key,), child or pos)
            return out
        if isinstance(node, CommentedSeq):
            out = []
            for i, item in enumerate(node):
                child = _mark(node, i, value=False)
                if child is not None:
                    positions[path + (i,)] = child
                out.append(self.plain(item, path + (i,), child or pos))
            return out
        return _scalar(node)


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deeply nested flow collections (`[[[[...`) before the recursive YAML parser sees
    them. One linear pass; brackets inside quotes or comments are skipped."""
    depth, quote, line, col = 0, "", 1, 0
    comment = False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, comment, quote = line + 1, 0, False, ""
            continue
        if comment:
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                raise LoadError([Diagnostic(message, file, Position(line, col))])
        elif ch in "]}":
            depth = max(depth - 1, 0)


def _mark(node: CommentedMap | CommentedSeq, key: Any, value: bool) -> Position | None:
    """Where `node[key]` sits, or None: keys merged in by `<<: *anchor` and `!!omap` entries
    carry no mark of their own, so their position falls back to the enclosing node's."""
    data = node.lc.data or {}
    if key not in data:
        return None
    line, col = data[key][2:4] if value else data[key][0:2]
    return Position(line + 1, col + 1)


def _is_scalar(node: Any) -> bool:
    return not isinstance(node, (CommentedMap, CommentedSeq))


def _is_container(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None


def _scalar(value: Any) -> Any:
    # ruamel wraps scalars (ScalarFloat, ScalarInt, ScalarBoolean...) to keep formatting; unwrap.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
