"""The verdict claim of a shared study (rocketc.experiments.tune.claim), on a local SQLite
storage: the races between two workers that the PostgreSQL test can only hit by chance."""

from __future__ import annotations

import optuna

from rocketc.experiments.tune import claim as claims


def _storage(tmp_path) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_a_claim_made_a_moment_ago_without_its_first_beat_is_not_taken_over(tmp_path):
    storage = _storage(tmp_path)
    # The other worker has created the marker but not yet set its heartbeat.
    optuna.create_study(study_name="s:verdict", storage=storage)
    second = claims.claim(storage, "s", "worker b")
    assert not second.won
    assert optuna.load_study(study_name="s:verdict", storage=storage)  # still the first's


def test_one_claim_wins_and_a_stale_one_is_taken_over(tmp_path, monkeypatch):
    storage = _storage(tmp_path)
    first = claims.claim(storage, "s", "worker a")
    assert first.won and not claims.claim(storage, "s", "worker b").won
    monkeypatch.setattr(claims, "STALE", -1.0)  # its heartbeat is now too old
    assert claims.claim(storage, "s", "worker b").won


def test_waiting_on_a_claim_that_never_beats_gives_up_after_stale(tmp_path, monkeypatch):
    storage = _storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    optuna.create_study(study_name="s:verdict", storage=storage)  # its claimer died at once
    monkeypatch.setattr(claims, "STALE", 0.05)
    monkeypatch.setattr(claims, "POLL", 0.02)
    said = []
    assert claims.wait_for(study, storage, lambda attrs: attrs.get("verdict"), said.append) is None
    assert said and "another worker" in said[0]


def test_waiting_returns_the_verdict_the_other_worker_stored(tmp_path):
    storage = _storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    other = claims.claim(storage, "s", "worker a")
    study.set_user_attr("verdict", {"mean": 0.01})
    other.release()
    found = claims.wait_for(study, storage, lambda attrs: attrs.get("verdict"), print)
    assert found == {"mean": 0.01}
