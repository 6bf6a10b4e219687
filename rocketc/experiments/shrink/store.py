"""Every finished training of a shrink, kept on disk as it ends: a killed `rocketc shrink`
continues where it stopped (as `tune` keeps its trials in its study).

`<out>/trainings/<size>.<arm>.seed<k>.json` holds one training's test scores, keyed by a
fingerprint of what it trained (the arm's spec after every change, the seed, the rocketc
version, the generated model code): a record whose spec, seed or code no longer matches is
trained again, never reused. The KD rows' teacher of each seed is `teacher.seed<k>.pt`, a
checksummed checkpoint (its weights), so a resumed shrink does not train it twice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from rocketc import __version__
from rocketc.compiler import Compiled
from rocketc.errors import RocketcError
from rocketc.files import write_atomic
from rocketc.train import checkpoint


def fingerprint(compiled: Compiled, seed: int, code: str = "") -> str:
    """What a training depends on: its spec (as compiled), the seed, rocketc's version and the
    code generated for it (a new default, an embedding's initial draw, is a new training)."""
    text = json.dumps(
        {"spec": compiled.source.data, "seed": seed, "rocketc": __version__, "code": code},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Store:
    def __init__(self, out_dir: Path):
        self.dir = out_dir / "trainings"

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str, fp: str) -> dict[str, Any] | None:
        """The stored result of training `key`, if one with fingerprint `fp` finished."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # torn by hand or by a crash of another tool: train it again
        if not isinstance(record, dict) or record.get("fingerprint") != fp:
            return None
        result = record.get("result")
        return result if isinstance(result, dict) else None

    def put(self, key: str, fp: str, result: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "fingerprint": fp, "result": result}
        write_atomic(self._path(key), json.dumps(record, indent=2, sort_keys=True) + "\n")

    def count(self) -> int:
        return len(list(self.dir.glob("*.json"))) if self.dir.is_dir() else 0

    # --- the KD teachers ---------------------------------------------------------------------
    def teacher(self, seed: int, fp: str) -> dict[str, torch.Tensor] | None:
        path = self.dir / f"teacher.seed{seed}.pt"
        if not path.is_file():
            return None
        try:
            state = checkpoint.load(path, "it is trained again")
        except RocketcError:
            return None
        if state.get("fingerprint") != fp:
            return None
        return state["weights"]

    def put_teacher(self, seed: int, fp: str, weights: dict[str, torch.Tensor]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        checkpoint.save(
            {"fingerprint": fp, "weights": weights}, self.dir / f"teacher.seed{seed}.pt"
        )
