"""`rocketc tune`'s study storage: in-memory refused, killed trials recovered, concurrent joins.

A killed trial is simulated as the issue found it: a trial left RUNNING in the study file (made
here with Optuna's ask, as a process killed mid-trial leaves it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from rich.console import Console
from typer.testing import CliRunner

from rocketc import files
from rocketc.cli import app
from rocketc.compiler import compile_file, embedded_spec
from rocketc.errors import TuneError
from rocketc.experiments.tune import TuneOptions, tune
from rocketc.experiments.tune import storage as storage_module
from rocketc.experiments.tune.storage import connect, open_study

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115
ROOT = Path(__file__).resolve().parent.parent


def pruner():
    return optuna.pruners.MedianPruner()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///file:x?mode=memory"])
def test_in_memory_storage_is_refused_in_one_line(url, tmp_path):
    with pytest.raises(TuneError, match="in-memory database lives only as long as one"):
        connect(url)
    spec = str(ROOT / "specs" / "quickstart.yaml")
    result = CliRunner().invoke(app, ["tune", spec, "--storage", url, "-o", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # refused before any data is read or file written


def test_a_second_worker_on_one_output_directory_is_refused_naming_the_first(tmp_path):
    """Two workers in one -o wrote the same report files; the study is what they share."""
    spec = str(ROOT / "specs" / "quickstart.yaml")
    with files.locked(tmp_path, "the first worker's"):
        pid = (tmp_path / files.LOCK).read_text().strip()
        result = CliRunner().invoke(app, ["tune", spec, "--epochs", "1", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{tmp_path}: another rocketc process (pid {pid}) is writing this")
    assert "give this worker its own -o (workers share a study through --storage" in line


@pytest.fixture
def short_heartbeat(monkeypatch):
    """A 1-second heartbeat and grace period (tune's are 10 s and 25 s)."""
    monkeypatch.setattr(storage_module, "HEARTBEAT", 1)
    monkeypatch.setattr(storage_module, "GRACE", 1)


def killed_trial(
    study: optuna.Study, storage, params: dict | None = None, beat: bool = True
) -> int:
    """A trial whose process died mid-way: RUNNING, its last heartbeat left to go stale (or,
    `beat=False`, killed before its first heartbeat)."""
    if params is not None:
        study.enqueue_trial(params, user_attrs={"origin": "spec"})
    trial = study.ask()
    if params is None:
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    if beat:
        storage.record_heartbeat(trial._trial_id)  # as optimize's heartbeat thread does
    return trial.number


def test_a_killed_trial_is_failed_and_its_recipe_queued_again(tmp_path, short_heartbeat):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = connect(url)
    opened = open_study(storage, url, "s", pruner())
    assert opened.created and opened.recovered == []
    study = opened.study
    killed_trial(study, storage)
    killed_trial(study, storage, {"lr": 0.01})  # a queued recipe, killed before it suggested
    value = study.get_trials()[0].params["lr"]
    time.sleep(1.5)
    again = open_study(connect(url), url, "s", pruner())
    assert not again.created and again.recovered == [0, 1]
    trials = again.study.get_trials(deepcopy=False)
    assert [t.state for t in trials[:2]] == [TrialState.FAIL, TrialState.FAIL]
    waiting = again.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert [t.params for t in waiting] == [{"lr": value}, {}]
    assert waiting[1].system_attrs["fixed_params"] == {"lr": 0.01}
    assert waiting[1].user_attrs["origin"] == "spec"
    # Nothing is left RUNNING, so a third start has nothing to recover.
    assert open_study(connect(url), url, "s", pruner()).recovered == []


def test_a_trial_killed_before_its_first_heartbeat_is_failed_and_queued_again(
    tmp_path, short_heartbeat
):
    """Optuna fails only trials that have beaten: one killed before its first heartbeat stayed
    RUNNING forever and its recipe was never tried again."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = connect(url)
    study = open_study(storage, url, "s", pruner()).study
    killed_trial(study, storage, {"lr": 0.02}, beat=False)
    said = []
    again = open_study(connect(url), url, "s", pruner(), said.append)  # too young: waited for
    assert again.recovered == [0] and "waiting 1 s" in said[0]
    trials = again.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].system_attrs["fixed_params"] == {"lr": 0.02}
    assert open_study(connect(url), url, "s", pruner()).recovered == []


def test_a_live_workers_trial_is_left_running(tmp_path, short_heartbeat):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = connect(url)
    study = open_study(storage, url, "s", pruner()).study
    live = killed_trial(study, storage)
    beating = threading.Event()

    def beat():  # the other worker's heartbeat thread
        while not beating.wait(0.2):
            storage.record_heartbeat(study.get_trials()[live]._trial_id)

    thread = threading.Thread(target=beat)
    thread.start()
    said = []
    try:
        again = open_study(connect(url), url, "s", pruner(), said.append)
    finally:
        beating.set()
        thread.join()
    assert again.recovered == [] and "waiting 1 s to tell a killed one" in said[0]
    assert again.study.get_trials(deepcopy=False)[0].state == TrialState.RUNNING


_JOIN = """
import json, sys, time
from rocketc.experiments.tune import storage as storage_module
from rocketc.experiments.tune.storage import connect, open_study
import optuna
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
opened = open_study(connect(url), url, "s", optuna.pruners.MedianPruner())
print(json.dumps({"created": opened.created, "id": opened.study._study_id}))
"""


def test_processes_starting_together_on_a_new_study_join_it(tmp_path):
    for attempt in range(1):
        url = f"sqlite:///{tmp_path / f'study{attempt}.db'}"
        start = time.time() + 5  # after every interpreter has imported optuna
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _JOIN, url, str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for _ in range(3)
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        assert sum(r["created"] for r in results) == 1, results
        assert len({r["id"] for r in results}) == 1
        assert len(optuna.get_all_study_names(url)) == 1


def test_tune_resumes_a_killed_trial_and_counts_right(tmp_path, short_heartbeat):
    """End to end: a study whose second trial was killed runs that recipe again on restart."""
    compiled = compile_file(embedded_spec("quickstart"), ["train.epochs=1"])
    opts = {"seeds": 1, "verdict_seeds": 0, "overrides": ["train.epochs=1"]}
    tune(compiled, tmp_path, TuneOptions(trials=1, **opts), QUIET)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = connect(url)
    study = optuna.load_study(study_name="quickstart", storage=storage)
    first = study.get_trials()[0]
    name, dist = next(
        (k, d) for k, d in first.distributions.items() if isinstance(d, FloatDistribution)
    )
    params = dict(first.params)  # another recipe: one weight moved
    params[name] = (dist.low * dist.high) ** 0.5 if dist.log else (dist.low + dist.high) / 3
    killed = killed_trial(study, storage, params)
    time.sleep(1.5)
    lines = []
    console = Console(file=open("/dev/null", "w"), width=400)  # noqa: SIM115
    console.print = lambda *a, **k: lines.append(" ".join(str(x) for x in a))
    tune(compiled, tmp_path, TuneOptions(trials=2, **opts), console)
    assert any(
        f"1 finished trial(s) so far; trial(s) {killed} were killed mid-way" in line
        for line in lines
    ), lines
    trials = optuna.load_study(study_name="quickstart", storage=url).get_trials()
    states = [t.state for t in trials]
    assert states[killed] == TrialState.FAIL and TrialState.RUNNING not in states
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == 2 and done[1].params == params
