"""One worker runs the verdict of a shared study; the others wait for it and read it.

Several `tune` processes may share a study (`--storage postgresql://...`). When they finish the
search together, each would train the same verdict seeds. Instead the first to *claim* the
verdict runs it: a claim is a marker study `<study>:verdict` created in the same storage, and
creating a study is atomic in every database Optuna supports (its name is unique), so exactly
one process wins. The winner beats the claim's heartbeat while it trains; the others poll the
study for the verdict and return it when it appears. A claim whose heartbeat is silent for
STALE seconds (its process was killed) is taken over. The winner deletes the claim when the
verdict is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna

STALE = 120.0  # seconds without a heartbeat: the claimer is dead
POLL = 2.0  # seconds between looks at the study while another worker runs the verdict


class Claim:
    """`won`: this process runs the verdict (then `beat()` while it does, `release()` after)."""

    def __init__(self, storage: Any, study_name: str, won: bool, marker: optuna.Study | None):
        self.storage, self.study_name, self.won, self.marker = storage, study_name, won, marker

    def beat(self) -> None:
        if self.marker is not None:
            self.marker.set_user_attr("beat", time.time())

    def release(self) -> None:
        if self.marker is not None:
            _delete(self.storage, _name(self.study_name))
            self.marker = None


def _name(study_name: str) -> str:
    return f"{study_name}:verdict"


def _delete(storage: Any, name: str) -> None:
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass  # already gone


def claim(storage: Any, study_name: str, who: str) -> Claim:
    """Try to claim the verdict of `study_name`; a stale claim is taken over."""
    name = _name(study_name)
    for _ in range(3):
        try:
            marker = optuna.create_study(study_name=name, storage=storage)
        except optuna.exceptions.DuplicatedStudyError:
            try:
                held = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                continue  # released meanwhile: try again
            attrs = held.user_attrs
            # No heartbeat yet: its claimer created the marker a moment ago and is about to
            # beat (creating a study and setting its first attribute are two steps).
            if "beat" not in attrs or time.time() - float(attrs["beat"]) <= STALE:
                return Claim(storage, study_name, False, None)
            _delete(storage, name)  # its process died: take it over
            continue
        marker.set_user_attr("who", who)
        marker.set_user_attr("beat", time.time())
        return Claim(storage, study_name, True, marker)
    return Claim(storage, study_name, False, None)


def wait_for(
    study: optuna.Study,
    storage: Any,
    ready: Callable[[dict[str, Any]], Any],
    say: Callable[[str], None],
) -> Any:
    """Poll `study`'s attributes until `ready(attrs)` returns a value (the verdict another worker
    stored), or until that worker's claim is gone or stale (then None: run it here)."""
    name = _name(study.study_name)
    said = False
    first_seen = time.time()  # a claim that never beat is stale STALE seconds after this
    while True:
        found = ready(study.user_attrs)
        if found is not None:
            return found
        try:
            held = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return ready(study.user_attrs)  # released: stored just now, or given up
        attrs = held.user_attrs
        if time.time() - float(attrs.get("beat", first_seen)) > STALE:
            return None
        if not said:
            say(f"the verdict is being run by another worker ({attrs.get('who', '?')}); waiting")
            said = True
        time.sleep(POLL)
