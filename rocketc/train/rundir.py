"""The run directory: what defines a run (its fingerprint) and when `train` may write into one.

`run.json` comes first in every run directory and says which run it holds and how far it got:
`{"rocketc": version, "state": "replacing" | "training" | "complete", "fingerprint": {...}}`.
The fingerprint is everything that decides what training computes: the spec after `--set`
overrides, flattened to dotted paths (the seed is `train.seed`), a SHA-256 of the train,
validation and test arrays (so another file, another split seed or another preprocessing
shows), and the rocketc version. Three spec paths are left out because they change nothing
that is computed: `description`, `train.device` (a run may resume on other hardware) and
`data.path` (the data's content is in the fingerprint; its location is not); so is the
`export:` section (what is shipped beside the trained net: `rocketc export RUN --int8` may
quantize again under other settings, and runs made before the section resume as before).

The rules, checked before anything is written:
- a new run goes into a missing or empty directory, or one that holds no run (e.g. only
  `ablation/` or `tune/` of the other commands); a directory holding a run needs `--resume` or
  `--overwrite`;
- `--resume` needs `run.json` and continues only when the fingerprint is the same; otherwise it
  refuses, naming every path that changed, and writes nothing (not even `code/`). The one
  exception is `train.epochs`: a run may be extended (or cut short, not below the epochs it
  trained), and `train` re-plans its learning-rate schedule from there;
- one writer at a time: `train` holds `run.lock` (an advisory flock) for the whole run, so a
  second `train`, `--resume` or `--overwrite` of the same directory is refused at once;
- `--overwrite` replaces only what `train` writes (`ARTEFACTS`). It first sets run.json's state
  to "replacing" with the new fingerprint, then deletes the old run's files (the serving bundle
  first), then sets "training". A kill at any moment leaves either the old run whole or a
  directory whose run.json says it is being replaced; never a new checkpoint beside an old
  report. A run that finishes is "complete".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rocketc
from rocketc import files
from rocketc.compiler import Compiled
from rocketc.data import Dataset
from rocketc.errors import Diagnostic, TrainError, os_advice
from rocketc.files import write_atomic

RUN_JSON = "run.json"
# What `rocketc train` writes, serving bundle first (cleared in this order).
ARTEFACTS = (
    "preprocess.json",
    "light.onnx",
    "light.int8.onnx",
    "report.json",
    "report.md",
    "light.pt2",
    "light_state_dict.pt",
    "export_error.log",
    "curves.png",
    "best.pt",
    "best.tmp",
    "checkpoint.pt",
    "checkpoint.tmp",
    "metrics.jsonl",
    "metrics.csv",
    "audit.json",
    "code",
)
# Any of these, without run.json, marks a run made before run.json existed.
_LEGACY_MARKS = ("checkpoint.pt", "metrics.jsonl", "report.json", "light.onnx", "audit.json")
# Spec paths that do not change what is computed (see the module docstring).
# Where a run is logged is not which run it is: tracking may be switched on for a resume.
_NOT_FINGERPRINTED = ("description", "train.device", "data.path", "train.track", "train.track_uri")
_NOT_FINGERPRINTED_SECTIONS = ("export.",)


def fingerprint(compiled: Compiled, data: Dataset) -> dict[str, Any]:
    spec = _flatten(compiled.spec.model_dump(mode="json", by_alias=True))
    for path in _NOT_FINGERPRINTED:
        spec.pop(path, None)
    spec = {k: v for k, v in spec.items() if not k.startswith(_NOT_FINGERPRINTED_SECTIONS)}
    return {"spec": spec, "data": data_sha256(data), "rocketc": rocketc.__version__}


# A run may be extended (`--resume --epochs N`): its length is not part of which run it is.
EXTENDABLE = "train.epochs"


def fingerprint_id(fp: dict[str, Any]) -> str:
    """A short stable id of a fingerprint; every checkpoint of the run carries it. The epoch
    budget is left out: an extended run is the same run, with the same checkpoints."""
    spec = {k: v for k, v in fp.get("spec", {}).items() if k != EXTENDABLE}
    text = json.dumps({**fp, "spec": spec}, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_sha256(data: Dataset) -> str:
    h = hashlib.sha256()
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        if hasattr(split, "identity"):  # a streamed split: its file, split and preprocessing
            h.update(f"{name}:{split.identity()}".encode())
            continue
        arrays = {**split.inputs, "@target": split.target}
        for extra in ("group", "weight"):  # GAUC groups; sample weights (where a split has them)
            if getattr(split, extra, None) is not None:
                arrays[f"@{extra}"] = getattr(split, extra)
        for key, array in arrays.items():
            a = np.ascontiguousarray(array)
            h.update(f"{name}/{key}:{a.dtype.str}{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


@dataclass
class Plan:
    """What `train` will do with the directory, decided before the data is loaded."""

    path: Path
    resume: bool  # continue the run in `path` (its run.json says which)
    clear: bool  # delete an earlier run's files first (--overwrite, or a resume with nothing)
    manifest: dict[str, Any] | None  # the run.json found, if any


def plan(path: Path, resume: bool, overwrite: bool) -> Plan:
    """Refuse what cannot be done with `path`; create it when missing. Writes nothing else."""
    if resume and overwrite:
        raise _error(path, "--resume and --overwrite exclude each other; choose one")
    if path.exists() and not path.is_dir():
        raise _error(path, "is a file, not a directory; choose another --out")
    if not path.exists():
        make_dir(path)
        return Plan(path, False, False, None)
    try:
        manifest = read_manifest(path)
    except TrainError:
        if not overwrite:
            raise
        return Plan(path, False, True, None)  # damaged: --overwrite replaces it like any run
    holds_run = manifest is not None or any((path / m).exists() for m in _LEGACY_MARKS)
    if not holds_run:
        stray = [a for a in ARTEFACTS if (path / a).exists()]
        if stray:
            raise _error(
                path,
                f"holds {stray[0]} but no rocketc run (no {RUN_JSON}); choose a new directory",
            )
        return Plan(path, False, False, None)
    if resume:
        if manifest is None:
            raise _error(
                path,
                f"has no {RUN_JSON} (a run of an older rocketc, or not a run): it cannot be "
                "resumed; train again with --overwrite",
            )
        if manifest["state"] == "replacing":
            raise _error(
                path,
                "was killed while an earlier run in it was being replaced: nothing to resume; "
                "train again with --overwrite",
            )
        return Plan(path, True, False, manifest)
    if not overwrite:
        raise _error(
            path,
            "already holds a run; continue it with --resume, replace it with --overwrite, or "
            "choose another --out",
        )
    return Plan(path, False, True, manifest)


def check_resume(p: Plan, fp: dict[str, Any]) -> None:
    """Refuse to resume unless the run was made with the same fingerprint; name what changed."""
    old = p.manifest["fingerprint"] if p.manifest else {}
    changes = differences(old, fp)
    if changes:
        raise _error(
            p.path,
            f"cannot resume: the run was made with other settings: {shown(changes)}. Resume "
            "with the run's own settings, or train again with --overwrite",
        )


def differences(old: dict[str, Any], fp: dict[str, Any]) -> list[str]:
    """What differs between a run's fingerprint `old` and `fp`, one phrase each (the epoch
    budget aside: a run may be extended)."""
    changes = [
        f"{key} {_show(old_value)} -> {_show(new_value)}"
        for key, (old_value, new_value) in _changed(old.get("spec", {}), fp["spec"]).items()
        if key != EXTENDABLE  # checked against the epochs reached, once the checkpoint is read
    ]
    if old.get("data") != fp["data"]:
        changes.append("the data (another file, split seed or preprocessing: its SHA-256 differs)")
    if old.get("rocketc") != fp["rocketc"]:
        changes.append(f"rocketc {old.get('rocketc')} -> {fp['rocketc']}")
    return changes


def shown(changes: list[str]) -> str:
    """The first six differences, and how many more."""
    more = f"; and {len(changes) - 6} more" if len(changes) > 6 else ""
    return "; ".join(changes[:6]) + more


def planned_epochs(p: Plan) -> int | None:
    """The epoch budget the run in `p.path` was started (or last extended) with."""
    spec = (p.manifest or {}).get("fingerprint", {}).get("spec", {})
    return spec.get(EXTENDABLE)


LOCK = files.LOCK


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the run directory's advisory lock (`files.locked`) for the block: a second writer
    (another `train`, `--resume` or `--overwrite` of the same directory) is refused at once,
    naming the process that holds it."""
    make_dir(path)
    with files.locked(path, "wait for it to finish, or choose another --out"):
        yield


def begin(p: Plan, fp: dict[str, Any]) -> None:
    """Make `p.path` this run's directory: clear an earlier run if the plan says so."""
    if p.resume:
        write_manifest(p.path, fp, "training")  # the same run; its epoch budget may be new
        return
    if p.clear:
        write_manifest(p.path, fp, "replacing")
        for name in ARTEFACTS:
            if name != RUN_JSON:
                _remove(p.path / name)
    write_manifest(p.path, fp, "training")


def finish(path: Path, fp: dict[str, Any]) -> None:
    write_manifest(path, fp, "complete")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """run.json, or None when there is none; a damaged one is an error naming it."""
    file = path / RUN_JSON
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        if not (
            isinstance(manifest, dict)
            and manifest.get("state") in ("replacing", "training", "complete")
            and isinstance(manifest.get("fingerprint"), dict)
        ):
            raise ValueError("not a rocketc run.json")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _error(
            file, f"is damaged ({exc}); train again with --overwrite to start a new run"
        ) from None
    return manifest


def write_manifest(path: Path, fp: dict[str, Any], state: str) -> None:
    manifest = {"rocketc": rocketc.__version__, "state": state, "fingerprint": fp}
    write_atomic(path / RUN_JSON, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def make_dir(path: Path) -> None:
    """mkdir -p, with an error that says which part of the path is in the way."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _error(path, f"cannot create the run directory: {os_advice(exc)}") from None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    missing = object()
    keys = list(dict.fromkeys([*old, *new]))
    return {
        k: (old.get(k, missing), new.get(k, missing))
        for k in keys
        if old.get(k, missing) != new.get(k, missing)
    }


def _show(value: Any) -> str:
    if not isinstance(value, (str, int, float, bool, list, type(None))):
        return "(absent)"
    return json.dumps(value)


def _error(path: Path, message: str) -> TrainError:
    return TrainError([Diagnostic(message, str(path))])
