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


@dataclass
class SourceMap:
    """YAML positions by data path; `pos` falls back to the nearest enclosing path."""

    file: str
    positions: dict[PathKey, Position] = field(default_factory=dict)
    # Where each mapping key itself is written (an unknown field is reported at its key).
    key_positions: dict[PathKey, Position] = field(default_factory=dict)

    def pos(self, path: PathKey) -> Position | None:
        path = tuple(path)
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return None
            path = path[:-1]


@dataclass
class Source:
    data: Any
    source_map: SourceMap

    @property
    def file(self) -> str:
        return self.source_map.file


def load_text(text: str, file: str = "<spec>") -> Source:
    """Parse YAML text; a syntax error becomes a LoadError pointing at the offending character."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise LoadError([Diagnostic(f"invalid YAML: {problem}", file, pos)]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        raise LoadError([Diagnostic(f"invalid YAML: {exc}", file, None)]) from None
    # The document starts at its first key or item, past any header comment.
    start = Position(raw.lc.line + 1, raw.lc.col + 1) if _is_container(raw) else Position(1, 1)
    source_map = SourceMap(file, {(): start})
    data = _plain(raw, (), source_map)
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


def _plain(node: Any, path: PathKey, source_map: SourceMap) -> Any:
    """Turn ruamel's commented containers into dicts/lists, recording each child's position."""
    if isinstance(node, CommentedMap):
        out = {}
        for key in node:
            # Scalars point at their value, containers at their key.
            pos = _mark(node, key, value=_is_scalar(node[key]))
            if pos is not None:
                source_map.positions[path + (key,)] = pos
            key_pos = _mark(node, key, value=False)
            if key_pos is not None:
                source_map.key_positions[path + (key,)] = key_pos
            out[_scalar(key)] = _plain(node[key], path + (key,), source_map)
        return out
    if isinstance(node, CommentedSeq):
        out = []
        for i, item in enumerate(node):
            pos = _mark(node, i, value=False)
            if pos is not None:
                source_map.positions[path + (i,)] = pos
            out.append(_plain(item, path + (i,), source_map))
        return out
    return _scalar(node)


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
