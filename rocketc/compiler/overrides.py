"""Command-line overrides of a loaded spec: `--set loss.hint.weight=0.1`, `--epochs 5`.

Overrides edit the loaded YAML data before validation, so an override that breaks the spec is
reported like any other spec error, naming the `--set` that caused it.
"""

from __future__ import annotations

import copy
from typing import Any

from ruamel.yaml import YAML

from rocketc.compiler.load import Source
from rocketc.errors import Diagnostic, SpecError


def apply_overrides(source: Source, assignments: list[str]) -> Source:
    """Return a copy of `source` with each `dotted.path=value` applied (value parsed as YAML)."""
    if not assignments:
        return source
    data = copy.deepcopy(source.data)
    problems = []
    for text in assignments:
        try:
            _apply(data, text)
        except ValueError as exc:
            problems.append(Diagnostic(f"--set {text}: {exc}", source.file))
    if problems:
        raise SpecError(problems)
    return Source(data, source.source_map)


def _apply(data: Any, text: str) -> None:
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError("expected PATH=VALUE, e.g. loss.hint.weight=0.1")
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else ""
    except Exception as exc:  # ruamel's YAMLError family
        raise ValueError(f"value is not YAML: {exc}") from None
    keys = path.strip().split(".")
    node = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ValueError(f"'{'.'.join(keys[:i])}' is a list; '{key}' is not an index")
            key = int(key)
        elif not isinstance(node, dict):
            raise ValueError(f"'{'.'.join(keys[:i])}' is not a mapping")
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]
