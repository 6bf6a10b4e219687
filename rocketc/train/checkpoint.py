"""Checkpoint files (`checkpoint.pt`, `best.pt`): written atomically, checksummed, verified on load.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, saved by `torch.save` with
one more key, `sha256`: a digest of everything else in it, taken value by value (the dtype, shape
and bytes of each tensor, the repr of each number, every key). `load` reads the file with
`torch.load(weights_only=True)`, which rebuilds only those types and never runs code from the
file, then recomputes the digest: a flipped byte that still unpickles, or a weight edited and
saved again, no longer matches. It is a checksum against damage and slips, not a signature:
whoever can write the file can write a matching digest (SECURITY.md).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rocketc.errors import Diagnostic, TrainError
from rocketc.files import write_atomic

DIGEST = "sha256"


def save(state: dict[str, Any], path: Path) -> None:
    """Write `state` plus its digest to `path`: write a sibling, then rename over `path`, so a
    kill mid-write leaves the previous file whole."""
    write_atomic(path, torch_bytes({**state, DIGEST: digest(state)}))


def torch_bytes(obj: Any) -> bytes:
    """`torch.save(obj)` into memory: torch's own writer reports a full disk as an unreadable
    RuntimeError ('unexpected pos'); written by `write_atomic`, it is one line naming the file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def load(path: Path, advice: str) -> dict[str, Any]:
    """The verified contents of a checkpoint `save` wrote, without its digest.

    Raises TrainError naming `path` and ending with `advice` (what the user should do) when the
    file is missing, unreadable, not a rocketc checkpoint, or does not match its digest.
    """
    if not path.is_file():
        raise _error(path, "is missing", advice)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # A damaged file can make torch's unpickler raise almost anything (an AssertionError from
    # its legacy reader was found by the damage property test): every one is "damaged".
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise _error(path, f"cannot be read (truncated or damaged: {reason})", advice) from None
    if not isinstance(state, dict) or DIGEST not in state:
        raise _error(path, "is not a rocketc checkpoint (it carries no checksum)", advice)
    state = dict(state)
    stored = state.pop(DIGEST)
    if stored != digest(state):
        raise _error(
            path,
            "fails its checksum: it was damaged or edited after rocketc wrote it",
            advice,
        )
    return state


def digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's values, the same before `torch.save` and after `torch.load`."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes, without a copy
    elif isinstance(obj, Mapping):
        h.update(f"M{len(obj)}".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    else:  # str, int, float, bool, None, torch.dtype, ...: repr is exact for all of them
        text = f"{type(obj).__name__}:{obj!r}"
        h.update(f"S{len(text)}:{text}".encode("utf-8", "surrogatepass"))


def _error(path: Path, problem: str, advice: str) -> TrainError:
    return TrainError([Diagnostic(f"{problem}; {advice}", str(path))])


# --- resuming a run ------------------------------------------------------------------------
# What to do when a resume finds a run directory it cannot trust.
RESTART = "train again with --overwrite (or into a new --out)"
_RESUME_KEYS = {"epoch", "model", "optimizer", "scheduler", "selection", "history", "run"}


def read_for_resume(path: Path, best: Path, run_id: str) -> dict[str, Any] | None:
    """checkpoint.pt at `path`, verified and of run `run_id`; None when the run never finished
    an epoch. `best` (best.pt) must hold the best epoch so far, unless that is the checkpoint's
    own epoch: killed between the two writes, the recipe rewrites best.pt from the checkpoint."""
    if not path.exists():
        return None
    state = load(path, RESTART)
    if not _RESUME_KEYS <= state.keys() or state["run"] != run_id:
        raise _error(path, "belongs to another run than this directory's run.json", RESTART)
    best_so_far = state["selection"]["best_epoch"]
    if best_so_far not in (None, state["epoch"]) and best_epoch(best, run_id) != best_so_far:
        raise _error(
            best,
            f"does not hold epoch {best_so_far}, the best so far (missing, damaged or of "
            "another run)",
            RESTART,
        )
    return state


def best_epoch(path: Path, run_id: str) -> int | None:
    """The epoch best.pt holds, or None when it is missing, damaged or of another run."""
    try:
        state = load(path, RESTART)
    except TrainError:
        return None
    return state.get("epoch") if state.get("run") == run_id else None


def restore(state: dict[str, Any], model, optimizer, scheduler, shuffle: torch.Generator) -> None:
    """Put a verified checkpoint's weights, optimizer, schedule and random states back."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        shuffle.set_state(state["shuffle_rng"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise TrainError(f"cannot resume from its checkpoint: {message}; {RESTART}") from None
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
