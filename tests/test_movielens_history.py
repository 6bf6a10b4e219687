"""MovieLens' behaviour sequence (`data.history: N`, issue 23): the user's last N liked movies
strictly before each rating, in item's id space, and served from a list in each request.

Every table here is hand-made in RecBole's format, so these tests need no recbole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.data.movielens import histories
from rocketc.errors import DataError, RocketcError
from tests.helpers.serving_runs import QUIET

# (user, item, rating, timestamp), in file order. Liked: rating >= 4.
RATINGS = [
    (1, 10, 5, 100),
    (2, 30, 5, 100),  # another user at the same time: never in user 1's history
    (1, 20, 3, 200),  # not liked
    (1, 30, 4, 300),  # two likes at one time: neither sees the other
    (1, 40, 5, 300),
    (1, 50, 4, 400),
    (2, 10, 2, 150),
    (1, 60, 5, 500),
    (2, 20, 4, 160),
]
# Each row's history with N = 2, newest first, by hand.
HISTORY_2 = [
    [],  # user 1 at 100: nothing before
    [],  # user 2 at 100
    [10],  # user 1 at 200
    [10],  # user 1 at 300: 20 was not liked, 40 is at the same time
    [10],
    [40, 30],  # user 1 at 400: the two likes at 300, in file order, newest first
    [30],  # user 2 at 150
    [50, 40],  # user 1 at 500: the last two likes only
    [30],  # user 2 at 160: 10 was rated 2
]


def _histories(n: int) -> list[list[int]]:
    users, items, ratings, times = (np.array(c) for c in zip(*RATINGS, strict=True))
    return histories(users, items, ratings >= 4, times.astype(float), n).tolist()


def test_history_is_the_last_likes_strictly_before_each_rating():
    assert _histories(2) == HISTORY_2
    # A row's own rating is never in its history, nor any at the same second.
    for (user, item, _, time), past in zip(RATINGS, _histories(10), strict=True):
        before = [i for u, i, r, t in RATINGS if u == user and t < time and r >= 4]
        assert item not in past or item in before
        assert sorted(past) == sorted(before)


def _write_movielens(directory: Path, ratings: list[tuple[int, int, int, int]]) -> Path:
    """ml-100k.inter/.user/.item in RecBole's format for `ratings`."""
    directory.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in ratings]
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    users += [f"{u}\t{20 + 7 * u}\t{'MF'[u % 2]}\tother\t{u}0000" for u in {r[0] for r in ratings}]
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [f"{i}\tFilm {i}\t{1950 + i}\tDrama" for i in sorted({r[1] for r in ratings})]
    for kind, lines in (("inter", inter), ("user", users), ("item", items)):
        (directory / f"ml-100k.{kind}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def _spec(path: Path, history: int = 2, max_len: int | None = None, epochs: int = 1) -> str:
    """A small DIN-like spec: light reads the mean-pooled history, booster attends over it."""
    return f"""\
version: 1
name: ml_history
task: binary
inputs:
  - {{name: user, kind: categorical, vocab: 16}}
  - {{name: item, kind: categorical, vocab: 64}}
  - {{name: age, kind: categorical, vocab: 8}}
  - {{name: gender, kind: categorical, vocab: 3}}
  - {{name: occupation, kind: categorical, vocab: 4}}
  - {{name: zipcode, kind: categorical, vocab: 12}}
  - {{name: decade, kind: categorical, vocab: 12}}
  - {{name: genre, kind: dense, shape: [19]}}
  - {{name: history, kind: categorical_list, vocab_from: item, max_len: {max_len or history}}}
layers:
  - id: fields
    op: field_embeddings
    in: [user, item, age, gender, occupation, zipcode, decade, history]
    dim: 4
    role: shared
  - {{id: features, op: concat, in: [fields, genre], role: shared}}
  - {{id: light_tower, op: mlp, in: features, units: [8], role: light}}
  - {{id: light_logit, op: linear, in: light_tower, out_features: 1, role: light}}
  - {{id: seq, op: embedding, in: history, dim: 4, table: fields, role: booster}}
  - {{id: candidate, op: embedding, in: item, dim: 4, table: fields, role: booster}}
  - {{id: interest, op: target_attention, in: [seq, candidate, history], units: [4], role: booster}}
  - {{id: booster_in, op: concat, in: [features, interest], role: booster}}
  - {{id: booster_logit, op: linear, in: booster_in, out_features: 1, role: booster}}
heads: {{light: light_logit, booster: booster_logit}}
train: {{epochs: {epochs}, batch_size: 16, optimizer: {{name: adam, lr: 0.01}}}}
data:
  {{source: movielens-100k, path: {path}, split: user_time, history: {history},
   val_fraction: 0.2, test_fraction: 0.2}}
"""


def test_loader_gives_each_row_its_history_in_items_id_space(tmp_path):
    path = _write_movielens(tmp_path / "ml", RATINGS)
    data = load_data(compile_text(_spec(path), "ml_history.yaml").spec)
    item_vocabulary = data.preprocess.features[1].vocabulary.tolist()
    # user_time: user 1's last two ratings (50, 60) are val and test, unseen in training
    assert item_vocabulary == [10, 20, 30, 40]
    by_row = {(u, t): h for (u, _, _, t), h in zip(RATINGS, HISTORY_2, strict=True)}
    seen = 0
    for split in (data.train, data.val, data.test):
        for r in range(len(split)):
            user, item = split.raw["user_id"][r], split.raw["item_id"][r]
            time = next(t for u, i, _, t in RATINGS if (u, i) == (user, item))
            want = by_row[user, time]
            assert split.raw["history"][r] == want
            ids = split.inputs["history"][r]
            # item's ids: the k-th movie of item's vocabulary is id k + 1; a movie unseen in
            # training is left out (50, in the test row's history); padding 0 at the end
            known = [item_vocabulary.index(i) + 1 for i in want if i in item_vocabulary]
            assert ids.tolist() == known + [0] * (2 - len(known))
            seen += 1
    assert seen == len(RATINGS)


def test_history_must_be_asked_for_and_declared_as_items_list(tmp_path):
    path = _write_movielens(tmp_path / "ml", RATINGS)
    no_history = _spec(path).replace(" history: 2,", "")
    with pytest.raises(DataError, match="set data.history: N"):
        load_data(compile_text(no_history, "ml_history.yaml").spec)
    with pytest.raises(DataError, match="vocab_from: item, max_len: 2"):
        load_data(compile_text(_spec(path, history=2, max_len=3), "ml_history.yaml").spec)
    own_ids = _spec(path).replace("vocab_from: item,", "vocab: 64,")
    with pytest.raises(DataError, match="declare it kind: categorical_list, vocab_from: item"):
        load_data(compile_text(own_ids, "ml_history.yaml").spec)
    with pytest.raises(RocketcError, match="history"):
        compile_text(_spec(path).replace("history: 2,", "history: 0,"), "ml_history.yaml")


def _ratings(users: int = 6, per_user: int = 14) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(0)
    out = []
    for u in range(1, users + 1):
        for k in range(per_user):
            item = int(rng.integers(1, 30))
            out.append((u, item, int(rng.integers(1, 6)), 1000 * k + u))
    return out


@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    from rocketc.train.run import train_run

    base = tmp_path_factory.mktemp("ml_history")
    path = _write_movielens(base / "ml", _ratings())
    compiled = compile_text(_spec(path, history=3), str(base / "ml_history.yaml"))
    train_run(compiled, base / "run", console=QUIET)
    return base / "run"


def test_serve_scores_a_request_carrying_the_users_recent_items(history_run):
    from rocketc.serve.app import create_app
    from rocketc.serve.bundle import load_bundle

    bundle = load_bundle(history_run)
    client = TestClient(create_app(bundle), raise_server_exceptions=False)
    user = {
        "user_id": 2,
        "age": 34,
        "gender": "F",
        "occupation": "other",
        "zip_code": "20000",
        "release_year": 1960,
        "class": "Drama",
    }
    histories_ = [[3, 7, 12], [12], [], ["3", "7", "12"], "3|7|12", [999, 3, 7, 12]]
    body = {"common": user, "rows": [{"item_id": 10, "history": h} for h in histories_]}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    assert len(scores) == len(histories_)
    assert scores[0] != scores[2]  # the history is read: with it and without, two scores
    # Text ids, delimited text and an unseen movie (left out of the list) score as the list.
    assert scores[3] == pytest.approx(scores[0], abs=1e-6)
    assert scores[4] == pytest.approx(scores[0], abs=1e-6)
    assert scores[5] == pytest.approx(scores[0], abs=1e-6)
    # The ids the bundle gives the history are item's: the light net scores them as such.
    encoded = bundle.preprocess.encode(
        {k: [v] for k, v in {**user, "item_id": 10, "history": [3, 7, 12]}.items()}
    )
    vocabulary = bundle.preprocess.features[1].vocabulary.tolist()
    ids = [vocabulary.index(i) + 1 for i in (3, 7, 12) if i in vocabulary]
    assert encoded.inputs["history"][0].tolist()[: len(ids)] == ids
    # A history that is not a list of values is a 422 naming the field.
    bad = client.post("/v1/score", json={"common": user, "rows": [{"item_id": 1, "history": {}}]})
    assert bad.status_code == 422 and "history" in bad.text

    # predict takes the same list from a file: text split at "|" in a CSV cell.
    import pandas as pd

    from rocketc.serve.predict import predict_file

    rows = pd.DataFrame([{**user, "item_id": 10, "history": h} for h in ("3|7|12", "12", "")])
    rows.to_csv(history_run.parent / "rows.csv", index=False)
    predict_file(
        history_run,
        history_run.parent / "rows.csv",
        history_run.parent / "scores.csv",
        console=QUIET,
    )
    predicted = pd.read_csv(history_run.parent / "scores.csv")["score"].tolist()
    assert predicted == pytest.approx(scores[:3], abs=1e-6)
