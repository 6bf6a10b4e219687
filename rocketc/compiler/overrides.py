"""Command-line overrides of a loaded spec: `--set loss.hint.weight=0.1`, `--epochs 5`.

Overrides edit the loaded YAML data before validation, and the source map remembers which paths
each one wrote, so an override that breaks the spec is reported against the `--set` that caused
it (`--set nope.x=1: nope: unknown field`), while mistakes in the file keep their line:col.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ruamel.yaml import YAML

from rocketc.compiler.load import PathKey, Source
from rocketc.errors import Diagnostic, SpecError


def apply_overrides(source: Source, assignments: list[str]) -> Source:
    """Return a copy of `source` with each `dotted.path=value` applied (value parsed as YAML)."""
    if not assignments:
        return source
    data = copy.deepcopy(source.data)
    origins = dict(source.source_map.overrides)
    problems = []
    for text in assignments:
        try:
            path = set_path(data, *parse_assignment(text))
        except ValueError as exc:
            problems.append(Diagnostic(str(exc), f"--set {text}"))
            continue
        origins.pop(path, None)  # re-inserted last: a later --set of a path is the one blamed
        origins[path] = f"--set {text}"
    if problems:
        raise SpecError(problems)
    return Source(data, dataclasses.replace(source.source_map, overrides=origins))


def parse_assignment(text: str) -> tuple[PathKey, Any]:
    """`loss.hint.weight=0.1` -> (("loss", "hint", "weight"), 0.1)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError("expected PATH=VALUE, e.g. loss.hint.weight=0.1")
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else ""
    except Exception as exc:  # ruamel's YAMLError family
        raise ValueError(f"value is not YAML: {exc}") from None
    return tuple(path.strip().split(".")), value


def set_path(data: Any, path: PathKey, value: Any) -> PathKey:
    """`data[path[0]][path[1]]... = value`, creating missing mappings; a list item by its index.

    Returns the path as the data is keyed (list indices as ints), the form error locations use.
    """
    node, keyed = data, []
    for i, key in enumerate(path):
        where = ".".join(str(k) for k in path[:i])
        if isinstance(node, list):
            if not str(key).isdigit() or int(key) >= len(node):
                raise ValueError(f"'{where}' is a list; '{key}' is not an index")
            key = int(key)
        elif not isinstance(node, dict):
            raise ValueError(f"'{where}' is not a mapping")
        keyed.append(key)
        if i == len(path) - 1:
            node[key] = value
        else:
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]
    return tuple(keyed)
