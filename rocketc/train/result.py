"""What a training run produced: the recipe fills it in, the launch report reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    out_dir: Path | None  # None: a run kept in memory (ablate, tune)
    history: list[dict[str, Any]]  # one record per epoch, as in metrics.jsonl
    test: dict[str, dict[str, float]]  # net -> metric -> value, with the selected weights
    seconds: float
    audit: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)  # Selection.summary()
    report: dict[str, Any] = field(default_factory=dict)  # report.json, when exported
    extensions: list[dict[str, Any]] = field(default_factory=list)  # `--resume --epochs N`
