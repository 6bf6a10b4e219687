"""Two `rocketc tune` workers on one study in a real PostgreSQL server, started together.

`.ci/run` starts a throwaway server (`.ci/postgres`) and exports its URL as
ROCKETC_TEST_POSTGRES. Without one (a developer's laptop) the test is skipped and says how to
run it; it is never faked with SQLite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.tiny_runs import write_tiny

URL = os.environ.get("ROCKETC_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(
    not URL,
    reason='no PostgreSQL server: `eval "$(bash .ci/postgres start)"` (as .ci/run does) sets '
    "ROCKETC_TEST_POSTGRES to a throwaway one",
)
ROOT = Path(__file__).resolve().parents[1]
TRIALS = 6


def test_two_workers_share_one_study_and_the_verdict_runs_once(tmp_path):
    import optuna

    spec = write_tiny(tmp_path, rows=160)
    study = f"shared_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for worker in ("a", "b"):
        cmd = [sys.executable, "-m", "rocketc", "tune", str(spec), "--storage", URL]
        cmd += ["--study", study, "--trials", str(TRIALS), "--seeds", "1", "--epochs", "2"]
        cmd += ["--verdict-seeds", "2", "-o", str(tmp_path / worker), "--threads", "1"]
        procs.append(
            subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
        time.sleep(0.2)  # both start before either has created the study
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        outputs.append((out, err))

    loaded = optuna.load_study(study_name=study, storage=URL)
    trials = loaded.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    finished = [t for t in trials if t.state.is_finished()]
    # nothing lost: no trial left running; none duplicated: every number once, each finished
    # trial finished once; the study holds the asked-for count (a worker may start one trial
    # while the other finishes the last: at most one extra per extra worker)
    assert optuna.trial.TrialState.RUNNING not in states
    assert len({t.number for t in trials}) == len(trials)
    assert TRIALS <= len(finished) <= TRIALS + 1, states
    # each worker worked on the one study: it ran trials of it, or (started late on a loaded
    # machine) found the other's trials already there
    for _, err in outputs:
        ran = re.search(r"^trial \d+ (complete|pruned)", err, re.MULTILINE)
        assert ran or re.search(r"study holds \d+ finished trials", err), err[-2000:]
    # the queued recipes (the spec's own and the book's) ran once each
    queued = [t for t in trials if t.system_attrs.get("fixed_params")]
    assert len({repr(sorted(t.params.items())) for t in queued}) == len(queued)
    # the verdict ran once: one worker trained its seeds, the other read it
    ran_verdict = [err for _, err in outputs if "verdict: trial" in err]
    assert len(ran_verdict) == 1, [err[-2000:] for _, err in outputs]
    verdicts = [out.splitlines()[0] for out, _ in outputs]
    assert verdicts[0] == verdicts[1]
    assert loaded.user_attrs.get("verdict") is not None
    assert f"{study}:verdict" not in optuna.get_all_study_names(URL)  # the claim is released
