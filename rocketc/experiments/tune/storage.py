"""Where a study lives: its storage opened, the study created or joined, killed trials recovered.

- **In-memory storage is refused.** `sqlite:///:memory:` (or `sqlite://`) is a database per
  connection: Optuna's heartbeat thread opens its own and finds no tables, and the study is gone
  when `tune` exits, so nothing it ran could be resumed or read. `tune` writes its files from the
  study, so it needs one that outlives the process.
- **Concurrent starts join.** Two `tune` processes started together on a new study (a shared
  `--storage`) race to create its tables and its row; the one that loses sees a database
  error or Optuna's DuplicatedStudyError. Both steps are retried (ATTEMPTS, with a growing,
  jittered wait), and a study that exists is loaded: every process ends up in the same study.
  Only the process that created it queues the spec's own recipe and the book's (`created`).
- **A killed trial is failed and its recipe queued again.** A process killed mid-trial leaves
  the trial RUNNING. Each trial's process records a heartbeat every HEARTBEAT seconds (Optuna's
  heartbeat, from `optimize`); a RUNNING trial silent for GRACE seconds is dead: failed, and
  Optuna's retry callback queues its recipe again (once), so the study still tries it and counts
  only finished trials. At start, `tune` fails the dead ones; if a RUNNING trial is not silent
  long enough to tell (killed seconds ago, or alive in another worker: several `tune` processes
  may share a study), it waits GRACE seconds once and looks again. Before, a restart within 3
  minutes of a kill left the trial RUNNING forever and its recipe untried.
- **So is one killed before its first heartbeat.** Optuna's heartbeat thread beats the moment a
  trial starts, so a RUNNING trial with no heartbeat at all, started more than GRACE seconds
  ago, died within milliseconds of starting (Optuna itself never fails it: it only looks at
  trials that have beaten). It is failed and queued again the same way; one started less than
  GRACE seconds ago is waited for like a live one.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from rocketc.errors import TuneError

ATTEMPTS = 6  # tries to open or create a study while another process does the same
HEARTBEAT, GRACE = 10, 25  # seconds: a live trial's heartbeat; a trial silent longer is dead
_RACES = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError)


@dataclass
class Opened:
    study: optuna.Study
    created: bool  # this process created the study (and queues its first recipes)
    recovered: list[int]  # numbers of killed trials failed now, their recipes queued again


def connect(url: str) -> optuna.storages.RDBStorage:
    """The study's storage; a TuneError for an in-memory or unreachable database."""
    refuse_in_memory(url)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return _retried(
        url,
        "cannot open the study",
        lambda: optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT,
            grace_period=GRACE,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        ),
    )


def refuse_in_memory(url: str) -> None:
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return  # RDBStorage words a malformed URL
    memory = parsed.database in (None, "", ":memory:") or "memory" in str(
        parsed.query.get("mode", "")
    )
    if parsed.get_backend_name() == "sqlite" and memory:
        raise TuneError(
            f"--storage {url}: an in-memory database lives only as long as one connection, so "
            "the study would be lost when tune exits (and Optuna's heartbeat cannot see it); "
            "give a file, e.g. --storage sqlite:///study.db, or leave --storage out for "
            "study.db in the output directory"
        )


def open_study(
    storage: optuna.storages.RDBStorage,
    url: str,
    name: str,
    pruner: optuna.pruners.BasePruner,
    say=lambda text: None,
) -> Opened:
    """Create the study, or join it if it exists (also when another process creates it at
    the same moment), then recover its killed trials (module docstring); `say` tells the user
    when that means waiting."""

    def create_or_load() -> tuple[optuna.Study, bool]:
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, direction="maximize", pruner=pruner
            )
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=storage, pruner=pruner), False

    study, created = _retried(url, f"cannot open study '{name}'", create_or_load)
    return Opened(study, created, _recover_killed(study, storage, say))


def _recover_killed(study: optuna.Study, storage: optuna.storages.RDBStorage, say) -> list[int]:
    """Fail the RUNNING trials whose heartbeat is stale, or that never beat (module docstring;
    Optuna's retry callback queues each again); the numbers of those failed."""

    def running() -> set[int]:
        return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}

    before = running()
    if not before:
        return []
    _fail_dead(study, storage)
    if running():
        left = ", ".join(str(n) for n in sorted(running()))
        say(
            f"trial(s) {left} of the study are running: waiting {GRACE} s to tell a killed "
            "one (no heartbeat) from one running in another process"
        )
        time.sleep(GRACE + 1)
        _fail_dead(study, storage)
    return sorted(before - running())


def _fail_dead(study: optuna.Study, storage: optuna.storages.RDBStorage) -> None:
    """What `fail_stale_trials` does, and the same for the trials that never beat."""
    optuna.storages.fail_stale_trials(study)
    queue_again = storage.get_heartbeat_stale_trial_callback()
    for trial in _never_beat(study, storage):
        try:
            if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process finished or failed it meanwhile
        if queue_again is not None:
            queue_again(study, study._storage.get_trial(trial._trial_id))


def _never_beat(
    study: optuna.Study, storage: optuna.storages.RDBStorage
) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials with no heartbeat, started more than GRACE seconds ago (datetime_start is
    the starting process's local time, so it is compared with this one's)."""
    with storage.engine.connect() as db:  # Optuna's schema: one row per trial that beat
        beat = {
            row[0] for row in db.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        }
    started_before = datetime.now() - timedelta(seconds=GRACE)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t._trial_id not in beat
        and t.datetime_start is not None
        and t.datetime_start < started_before
    ]


def _retried(url: str, what: str, step):
    """`step()`, tried again while another process holds or changes the database."""
    for attempt in range(ATTEMPTS):
        try:
            return step()
        except _RACES as exc:
            if attempt == ATTEMPTS - 1:
                raise TuneError(f"--storage {url}: {what}: {_first_line(exc)}") from None
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
        except TuneError:
            raise
        except Exception as exc:  # sqlalchemy/driver errors: a bad URL, no server, no driver
            raise TuneError(f"--storage {url}: {what}: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
