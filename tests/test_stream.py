"""Streamed tables: the same preprocessing and, with a buffer holding the whole train split, the
very batches of the in-memory path; a table larger than the buffer trains; `data.stream` is
checked where it is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rocketc.compiler import compile_text
from rocketc.data import load_data
from rocketc.data import stream as streaming
from rocketc.errors import DataError, SpecError
from rocketc.train.batches import batch_loader, eval_loader
from rocketc.train.streamload import shard_loader, stream_loader

SPEC = """\
version: 1
name: streamed
task: binary
inputs:
  - {name: user, kind: categorical, hash_buckets: 256}
  - {name: city, kind: categorical, vocab: 5}
  - {name: age, kind: categorical, vocab: 8}
  - {name: numeric, kind: dense, shape: [2]}
layers:
  - {id: fields, op: field_embeddings, in: [user, city, age], dim: 4, role: shared}
  - {id: features, op: concat, in: [fields, numeric], role: shared}
  - {id: light_logit, op: linear, in: features, out_features: 1, role: light}
  - {id: booster_tower, op: mlp, in: features, units: [8], role: booster}
  - {id: booster_logit, op: linear, in: booster_tower, out_features: 1, role: booster}
heads: {light: light_logit, booster: booster_logit}
train: {epochs: 1, batch_size: 32, seed: 3}
data:
  source: @SOURCE@
  path: @PATH@
  label: clicked
  group: user
  weight: w
  categorical: [user, city, age]
  dense: {numeric: [price, size]}
  stream: @STREAM@
"""


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": [f"user{k}" for k in rng.integers(0, 50, n)],
            "city": rng.choice(["paris", "lyon", "nice", None], n),
            "age": rng.integers(18, 25, n),
            "price": rng.normal(10, 2, n),
            "size": rng.exponential(3.0, n),
            "w": rng.choice([0.5, 1.0, 2.0], n),
            "clicked": rng.integers(0, 2, n),
        }
    )


def write(tmp_path, frame: pd.DataFrame, source: str):
    path = tmp_path / f"t.{source}"
    if source == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, row_group_size=100)  # several row groups
    return path


def spec_for(path, source: str, stream: str):
    text = SPEC.replace("@SOURCE@", source).replace("@PATH@", str(path))
    return compile_text(text.replace("@STREAM@", stream)).spec


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_a_whole_table_buffer_gives_the_in_memory_batches(tmp_path, source, monkeypatch):
    monkeypatch.setattr(streaming, "READ_ROWS", 64)  # many record batches for a small table
    path = write(tmp_path, table(500), source)
    memory = load_data(spec_for(path, source, "false"))
    streamed = load_data(spec_for(path, source, "true"))
    assert isinstance(streamed.train, streaming.StreamedSplit)
    assert len(streamed.train) == len(memory.train)
    mine, theirs = streamed.preprocess, memory.preprocess
    assert mine.to_dict()["inputs"][:3] == theirs.to_dict()["inputs"][:3]  # ids: identical
    (dense,), (expected_dense,) = mine.features[3:], theirs.features[3:]
    np.testing.assert_allclose(dense.mean, expected_dense.mean, rtol=1e-12)
    np.testing.assert_allclose(dense.std, expected_dense.std, rtol=1e-12)
    assert_same_batches(streamed, memory)


def assert_same_batches(streamed, memory) -> None:
    """The same val/test rows, and the same training batches for two seeds and two epochs."""
    for split in ("val", "test"):
        a, b = getattr(streamed, split), getattr(memory, split)
        assert isinstance(a, streaming.StreamedSplit) and len(a) == len(b)
        np.testing.assert_array_equal(a.target, b.target)
        np.testing.assert_array_equal(a.weight, b.weight)
        same_groups = pd.crosstab(a.group, b.group).astype(bool).sum(axis=1)
        assert (same_groups == 1).all() and len(np.unique(a.group)) == len(np.unique(b.group))
        assert_same(eval_loader(a, 50), eval_loader(b, 50))
        head = a.head(7)
        assert len(head) == 7 and list(head.inputs) == list(b.inputs)
        for name, column in head.inputs.items():
            np.testing.assert_allclose(column, b.inputs[name][:7], rtol=1e-6)

    for epoch_seed in (0, 7):
        g_memory = torch.Generator().manual_seed(epoch_seed)
        g_stream = torch.Generator().manual_seed(epoch_seed)
        expected = batch_loader(memory.train, 32, g_memory, weighted=True)
        got = stream_loader(streamed.train, 32, g_stream, weighted=True, buffer_rows=10_000)
        assert len(got) == len(expected)
        for _epoch in range(2):  # the generator moves on between epochs in both
            assert_same(got, expected)


def assert_same(got, expected) -> None:
    pairs = list(zip(got, expected, strict=True))
    assert len(pairs) == len(expected)
    for mine, theirs in pairs:
        for a, b in zip(mine, theirs, strict=True):
            if a.dtype == torch.int64:
                assert torch.equal(a, b)
            else:
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


LISTS = {  # categorical_list inputs: a vocabulary of genres, hashed tags
    "layers:\n": "  - {name: genres, kind: categorical_list, vocab: 6, max_len: 2}\n"
    "  - {name: tags, kind: categorical_list, hash_buckets: 64, max_len: 2}\nlayers:\n",
    "in: [user, city, age]": "in: [user, city, age, genres, tags]",
    "categorical: [user, city, age]": "categorical: [user, city, age, genres, tags]\n"
    '  list_delimiter: ";"',
}


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_list_columns_stream_to_the_in_memory_batches(tmp_path, source, monkeypatch):
    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    rng = np.random.default_rng(1)
    frame = table(500)
    genres = ["drama", "comedy", "horror", "scifi", "noir"]
    frame["genres"] = [
        list(rng.choice(genres, rng.integers(0, 4), replace=False)) for _ in frame.index
    ]
    frame["tags"] = [
        list(map(int, rng.integers(100, 140, rng.integers(0, 3)))) for _ in frame.index
    ]
    if source == "csv":  # text split at the delimiter
        for column in ("genres", "tags"):
            frame[column] = [";".join(map(str, items)) for items in frame[column]]
    path = write(tmp_path, frame, source)
    memory, streamed = (load_data(list_spec(path, source, stream)) for stream in ("false", "true"))
    assert streamed.preprocess.to_dict()["inputs"][4:] == memory.preprocess.to_dict()["inputs"][4:]
    assert "'genres' lists:" in streamed.description and "'tags' hashes" in streamed.description
    assert_same_batches(streamed, memory)


def test_a_list_vocabulary_past_the_spec_stops_the_streamed_fit(tmp_path):
    frame = table(300)
    frame["genres"] = [f"g{k % 40};g{k % 7}" for k in frame.index]
    frame["tags"] = "x"
    path = write(tmp_path, frame, "csv")
    words = r"input 'genres' needs vocab >= \d+ \(\d+ distinct values in the train split's first"
    with pytest.raises(DataError, match=words):
        load_data(list_spec(path, "csv", "true"))


def list_spec(path, source: str, stream: str):
    text = SPEC.replace("@SOURCE@", source).replace("@PATH@", str(path))
    for old, new in LISTS.items():
        text = text.replace(old, new)
    return compile_text(text.replace("@STREAM@", stream)).spec


def test_a_small_buffer_still_yields_every_train_row_once_per_epoch(tmp_path):
    path = write(tmp_path, table(700), "parquet")
    streamed = load_data(spec_for(path, "parquet", "true"))
    loader = stream_loader(streamed.train, 32, torch.Generator().manual_seed(1), buffer_rows=100)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-len(streamed.train) // 32)
    assert all(len(b[0]) == 32 for b in batches[:-1])
    plain = list(stream_loader(streamed.train, 32, None, buffer_rows=100))
    assert sorted_rows(batches) == sorted_rows(plain)  # the same rows, each once
    assert not torch.equal(batches[0][0], plain[0][0])  # but shuffled


def sorted_rows(batches) -> list[tuple[float, ...]]:
    """Every row of the batches (ids, dense values, target) as a tuple, sorted."""
    columns = [torch.cat([b[k] for b in batches]).double() for k in range(len(batches[0]))]
    table = torch.cat([c.reshape(len(c), -1) for c in columns], dim=1)
    return sorted(map(tuple, table.tolist()))


def test_a_table_larger_than_the_buffer_trains(tmp_path, monkeypatch):
    from rocketc.compiler import compile_file
    from rocketc.train.run import train_run

    monkeypatch.setattr(streaming, "READ_ROWS", 256)
    monkeypatch.setattr(streaming, "BUFFER_ROWS", 300)
    path = write(tmp_path, table(3000), "parquet")
    spec_path = tmp_path / "s.yaml"
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    spec_path.write_text(text.replace("@STREAM@", "true"))
    result = train_run(compile_file(spec_path), tmp_path / "run", launch=False)
    (record,) = result.history
    assert np.isfinite(record["train_loss"]["total"])
    assert 0.0 <= record["val"]["light"]["auc"] <= 1.0


def test_a_streamed_table_scores_val_and_test_as_the_in_memory_one(tmp_path, monkeypatch):
    from rocketc.compiler import compile_file
    from rocketc.train.run import train_run

    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    path = write(tmp_path, table(600), "parquet")
    results = {}
    for stream in ("false", "true"):
        spec_path = tmp_path / f"{stream}.yaml"
        text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
        spec_path.write_text(text.replace("@STREAM@", stream).replace("epochs: 1", "epochs: 2"))
        launch = stream == "true"  # export: a few val rows, read from the file
        results[stream] = train_run(compile_file(spec_path), tmp_path / stream, launch=launch)
    memory, streamed = results["false"], results["true"]
    assert streamed.report["macs_per_example"]["light"] > 0
    assert "gauc" in memory.test["light"]
    for mine, theirs in [
        *((a["val"], b["val"]) for a, b in zip(streamed.history, memory.history, strict=True)),
        (streamed.test, memory.test),
    ]:
        for net in ("light", "booster"):
            assert mine[net].keys() == theirs[net].keys()
            for metric, value in theirs[net].items():
                assert mine[net][metric] == pytest.approx(value, rel=1e-6, abs=1e-6), metric


def test_a_large_file_streams_unless_told_otherwise(tmp_path, monkeypatch):
    path = write(tmp_path, table(200), "parquet")
    monkeypatch.setattr(streaming, "STREAM_BYTES", 10)
    spec = compile_text(
        SPEC.replace("@SOURCE@", "parquet")
        .replace("@PATH@", str(path))
        .replace("  stream: @STREAM@\n", "")
    ).spec
    assert spec.data.stream is None and streaming.wanted(spec.data)
    assert not streaming.wanted(spec_for(path, "parquet", "false").data)


def test_bad_rows_in_a_streamed_table_name_the_column(tmp_path):
    frame = table(200)
    frame.loc[150, "price"] = np.nan
    path = write(tmp_path, frame, "parquet")
    with pytest.raises(DataError, match="'price' has 1 missing"):
        load_data(spec_for(path, "parquet", "true"))


def test_a_bad_value_far_into_the_file_is_named_by_its_file_row(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    frame = table(500)
    data = spec_for(tmp_path / "t.csv", "csv", "true").data
    member = streaming.split_members(len(frame), data, seed=3)
    row = int(np.flatnonzero(member == streaming.TRAIN)[-1])  # in the last record batch
    assert row >= 6 * 64
    frame.loc[row, "price"] = np.inf
    path = write(tmp_path, frame, "csv")
    with pytest.raises(DataError, match=rf"t\.csv, row {row + 1}: price: is not a finite"):
        load_data(spec_for(path, "csv", "true"))


def test_a_vocabulary_past_the_spec_stops_the_fit_at_the_first_record_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    read = []
    frames = streaming._frames

    def counted(data, columns):
        for offset, frame in frames(data, columns):
            read.append(offset)
            yield offset, frame

    monkeypatch.setattr(streaming, "_frames", counted)
    frame = table(1000)
    frame["city"] = [f"city{k % 300}" for k in range(len(frame))]  # vocab 5 holds 4
    path = write(tmp_path, frame, "parquet")
    words = r"input 'city' needs vocab >= \d+ \(\d+ values in the train split"
    with pytest.raises(DataError, match=words + "'s first"):
        load_data(spec_for(path, "parquet", "true"))
    assert read == [0]  # refused before a second record batch was read
    with pytest.raises(DataError, match=words + r" \+ id 0"):  # the in-memory fit's words
        load_data(spec_for(path, "parquet", "false"))


def test_hashed_ids_keep_bucket_flags_and_a_fixed_sketch_not_their_values():
    from rocketc.data.hashing import BucketUse, collision_stats, hash_values

    values = np.random.default_rng(0).integers(0, 20_000, 60_000)
    use = BucketUse(1000)
    for block in np.array_split(values, 7):  # values repeat within and across blocks
        use.add(str(v) for v in np.unique(block))
    assert len(use.smallest) == BucketUse.SKETCH and use.used.shape == (1001,)
    distinct = np.unique(values)
    exact = collision_stats(len(distinct), hash_values(distinct, 1000), 1000)
    stats = use.stats()
    assert stats["buckets_used"] == exact["buckets_used"] and stats["values_estimated"]
    assert abs(stats["values"] - len(distinct)) < 0.05 * len(distinct)
    few = BucketUse(1000)
    few.add(str(v) for v in distinct[:300])
    assert few.stats() == collision_stats(300, hash_values(distinct[:300], 1000), 1000)


def test_stream_errors_point_at_the_line(tmp_path):
    path = tmp_path / "t.parquet"
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    line = text.splitlines().index("  stream: @STREAM@") + 1
    with pytest.raises(SpecError) as bad_value:
        compile_text(text.replace("@STREAM@", "sometimes"), "s.yaml")
    assert f"s.yaml:{line}:" in str(bad_value.value)
    with_split_by = text.replace("@STREAM@", "true\n  split_by: age")
    with pytest.raises(SpecError) as both:
        compile_text(with_split_by, "s.yaml")
    message = str(both.value)
    assert f"s.yaml:{line}:" in message and "split_by" in message


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_rank_shards_split_the_rows_and_take_equal_steps(tmp_path, source):
    path = write(tmp_path, table(401), source)  # Parquet: 5 row groups of up to 100 rows
    streamed = load_data(spec_for(path, source, "true"))
    train = streamed.train
    everything = list(stream_loader(train, 32, None, weighted=True))
    shards = [shard_loader(train, 32, rank, 2, seed=5, weighted=True) for rank in (0, 1)]
    groups = [train.table.shard_groups(rank, 2) for rank in (0, 1)]
    if source == "csv":  # every other train row
        n = len(train)
        assert groups == [None, None]
        assert [train.shard_rows(r, 2) for r in (0, 1)] == [(n + 1) // 2, n // 2]
    else:  # row groups 0, 2, 4 and 1, 3: rank 0 reads 3 of 5
        assert [g.tolist() for g in groups] == [[0, 2, 4], [1, 3]]
        assert train.shard_rows(0, 2) > train.shard_rows(1, 2)
    epochs = []
    for epoch in (0, 1):
        batches = []
        for shard in shards:
            shard.set_epoch(epoch)
            batches.append(list(shard))
            assert len(batches[-1]) == len(shard) == len(shards[0])
            assert all(len(b[0]) == 16 for b in batches[-1][:-1])
        epochs.append(batches)
        # each shard holds its own rows, the two every train row; the shorter one is padded
        # with repeats of its first rows to the longer one's
        mine = [set(sorted_rows(b)) for b in batches]
        assert [len(m) for m in mine] == [train.shard_rows(r, 2) for r in (0, 1)]
        assert not mine[0] & mine[1] and mine[0] | mine[1] == set(sorted_rows(everything))
        assert len(sorted_rows(batches[0] + batches[1])) == 2 * shards[0].rows()
    assert not torch.equal(epochs[0][0][0][0], epochs[1][0][0][0])  # reshuffled per epoch


def test_a_parquet_file_with_fewer_row_groups_than_ranks_shards_by_rows(tmp_path):
    path = tmp_path / "t.parquet"
    table(300).to_parquet(path, row_group_size=1000)  # one row group
    train = load_data(spec_for(path, "parquet", "true")).train
    assert train.table.shard_groups(0, 2) is None
    assert train.shard_rows(0, 2) + train.shard_rows(1, 2) == len(train)


def test_two_processes_train_a_streamed_table_to_the_same_weights(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from rocketc.train import distributed

    path = write(tmp_path, table(600), "parquet")
    spec_path = tmp_path / "s.yaml"
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    spec_path.write_text(text.replace("@STREAM@", "true"))
    out = tmp_path / "run"
    args = ["train", str(spec_path), "--nproc", "2", "--epochs", "2", "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "rocketc", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    digests = json.loads((out / distributed.SUMMARY).read_text())["weights_sha256"]
    assert len(digests) == 2 and len(set(digests)) == 1


def test_the_bench_streams_a_synthetic_table_and_counts_every_train_row():
    from bench import scale

    record = scale.streaming(20_000)
    assert record["rows"] == 20_000 - 2 * 200  # 1% val and 1% test stay in memory
    assert record["val_rows"] == 200 and record["peak_rss_mb"] > 0


@pytest.mark.parametrize("n", [10, 997, 20_000])
def test_split_members_are_the_in_memory_random_split(n, tmp_path):
    from rocketc.data.encode import random_split

    data = spec_for(tmp_path / "t.parquet", "parquet", "true").data
    member = streaming.split_members(n, data, seed=11)
    parts = random_split(n, data.val_fraction, data.test_fraction, 11)
    for split, rows in enumerate(parts):
        np.testing.assert_array_equal(np.flatnonzero(member == split), rows)


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_a_bad_label_in_a_streamed_table_is_named_by_its_file_row(tmp_path, source, monkeypatch):
    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    frame = table(500)
    frame.loc[450, "clicked"] = 2  # a val, test or train row: every row is checked as read
    path = write(tmp_path, frame, source)
    with pytest.raises(DataError, match=rf"t\.{source}, row 451: clicked: binary labels must be"):
        load_data(spec_for(path, source, "true"))


def test_ablate_and_tune_train_on_a_streamed_table(tmp_path, monkeypatch):
    """Both read the train split through the same loader as `rocketc train`: a table too large
    for memory can be ablated and tuned, not only trained."""
    from rich.console import Console

    from rocketc.compiler import compile_file
    from rocketc.experiments.ablate import ablate
    from rocketc.experiments.tune import TuneOptions, tune

    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    path = write(tmp_path, table(400), "parquet")
    spec_path = tmp_path / "streamed.yaml"
    text = SPEC.replace("@SOURCE@", "parquet").replace("@PATH@", str(path))
    spec_path.write_text(text.replace("@STREAM@", "true"))
    compiled = compile_file(spec_path)
    quiet = Console(file=open(tmp_path / "log.txt", "w"))  # noqa: SIM115
    result = ablate(compiled, 1, None, tmp_path / "ablate", ["light_alone", "rocket"], quiet)
    assert [row["variant"] for row in result["variants"]] == ["light_alone", "rocket"]
    options = TuneOptions(trials=1, seeds=1, verdict_seeds=2)
    tuned = tune(compiled, tmp_path / "tune", options, quiet)
    assert (tuned.out_dir / "best.yaml").is_file()
    assert len(tuned.verdict.alone) == 2


# --- loader workers (data.workers) -----------------------------------------------------------
def worker_spec(path, source: str, workers: int, extra: str = ""):
    text = SPEC.replace("@SOURCE@", source).replace("@PATH@", str(path))
    return text.replace("@STREAM@", f"true\n  workers: {workers}{extra}")


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_loader_workers_read_every_train_row_once_and_reshuffle_per_epoch(
    tmp_path, source, monkeypatch
):
    from rocketc.train import streamload

    monkeypatch.setattr(streamload, "CHUNK_ROWS", 64)  # 2 chunks of 2 batches per buffer
    path = write(tmp_path, table(700), source)  # Parquet: 7 row groups, shared by 2 workers
    streamed = load_data(compile_text(worker_spec(path, source, 2)).spec)
    train = streamed.train
    assert train.workers == 2 and "2 loader workers" in streamed.description
    alone = sorted_rows(list(stream_loader(train, 32, None, weighted=True)))
    loader = stream_loader(
        train, 32, torch.Generator().manual_seed(1), True, 300, workers=train.workers
    )
    sizes = train.shard_sizes(2)
    assert sizes.sum() == len(train) and sizes.min() > 0
    assert len(loader) == sum(-(-n // 32) for n in sizes)  # each worker ends on a partial batch
    epochs = [list(loader) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == len(loader)
        assert sorted_rows(batches) == alone  # every train row once: no padding in one process
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])  # the run's generator moved on
    again = stream_loader(train, 32, torch.Generator().manual_seed(1), True, 300, workers=2)
    assert_same(list(again), epochs[0])  # the order is the seed's, not the workers' timing


# 3 workers on a 2-core machine: torch's advice against more workers than cores is not the point
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize(("source", "workers"), [("csv", 2), ("parquet", 2), ("parquet", 3)])
def test_ranks_with_loader_workers_take_equal_steps(tmp_path, source, workers):
    path = write(tmp_path, table(501), source)  # Parquet: 6 row groups, the last one short
    train = load_data(compile_text(worker_spec(path, source, workers)).spec).train
    shards = [shard_loader(train, 32, r, 2, seed=5, weighted=True, workers=workers) for r in (0, 1)]
    sizes = train.shard_sizes(2 * workers)  # shard r + 2w is rank r's worker w
    assert sizes.sum() == len(train)
    own = [int(sizes[r::2].sum()) for r in (0, 1)]
    if source == "parquet" and workers == 3:  # 6 row groups for 6 shards: uneven
        assert train.table.shard_groups(0, 6).tolist() == [0]
    ranks = []
    for rank, shard in enumerate(shards):
        shard.set_epoch(0)
        batches = list(shard)
        assert len(batches) == len(shard) == len(shards[0])  # equal steps, as DDP needs
        rows = sorted_rows(batches)
        assert len(set(rows)) == own[rank]  # its own rows, padded with repeats of them
        ranks.append(set(rows))
    everything = set(sorted_rows(list(stream_loader(train, 32, None, weighted=True))))
    assert not ranks[0] & ranks[1] and ranks[0] | ranks[1] == everything


def test_extra_batches_even_out_the_ranks_steps():
    from rocketc.train.streamload import extra_batches

    class Split:  # shard rows of 2 ranks x 2 workers (shard r + 2w): rank 0 has 5 batches of 10
        def shard_sizes(self, shards):
            return np.array([25, 3, 20, 0])  # rank 0: 25 + 20 rows; rank 1: 3 (worker 1: none)

    assert extra_batches(Split(), 10, 0, 2, 2) == [0, 0]  # 3 + 2 batches, the busiest
    assert extra_batches(Split(), 10, 1, 2, 2) == [4, 0]  # 1 batch + 4 of its first rows


def test_a_streamed_table_trains_with_loader_workers(tmp_path, monkeypatch):
    from rocketc.compiler import compile_file
    from rocketc.train.run import train_run

    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    path = write(tmp_path, table(600), "parquet")
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(worker_spec(path, "parquet", 2))
    result = train_run(compile_file(spec_path), tmp_path / "run", launch=False)
    (record,) = result.history
    assert np.isfinite(record["train_loss"]["total"])
    assert 0.0 <= record["val"]["light"]["auc"] <= 1.0


def test_a_bad_row_read_by_a_worker_is_the_same_data_error(tmp_path):
    path = write(tmp_path, table(300), "parquet")
    train = load_data(compile_text(worker_spec(path, "parquet", 2)).spec).train
    changed = table(300)
    row = int(np.flatnonzero(train.table.member == streaming.TRAIN)[-1])
    changed.loc[row, "price"] = np.nan  # the file changed since the fit pass
    write(tmp_path, changed, "parquet")
    with pytest.raises(DataError) as alone:
        list(stream_loader(train, 32))
    with pytest.raises(DataError) as in_worker:
        list(stream_loader(train, 32, workers=2))
    assert str(in_worker.value) == str(alone.value)
    assert f"row {row + 1}" in str(in_worker.value) and "Traceback" not in str(in_worker.value)


def test_workers_are_checked_where_they_are_written(tmp_path):
    text = worker_spec(tmp_path / "t.parquet", "parquet", 2)
    line = text.splitlines().index("  workers: 2") + 1
    assert compile_text(text).spec.data.workers == 2
    assert compile_text(text.replace("  stream: true\n", "")).spec.data.workers == 2  # if large
    for bad, words in [
        ("workers: -1", "greater than or equal to 0"),
        ("workers: 65", "less than or equal to 64"),
        ("workers: lots", "valid integer"),
    ]:
        with pytest.raises(SpecError, match=words) as refused:
            compile_text(text.replace("workers: 2", bad), "s.yaml")
        assert f"s.yaml:{line}:" in str(refused.value)
    in_memory = {  # never streamed: refused at the workers line
        "stream: false": text.replace("stream: true", "stream: false"),
        "split_by": text.replace("  stream: true\n", "  split_by: age\n"),
    }
    for why, spec_text in in_memory.items():
        with pytest.raises(SpecError, match=f"{why} keeps this one in memory") as refused:
            compile_text(spec_text, "s.yaml")
        assert f"s.yaml:{line}:" in str(refused.value)


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_a_list_with_vocab_from_takes_its_inputs_ids_in_memory_and_streamed(
    tmp_path, source, monkeypatch
):
    """`vocab_from: age` on a list: a value is the id age gives it (one table for both), not an
    id of the list's own vocabulary; a value age never had in training is left out."""
    monkeypatch.setattr(streaming, "READ_ROWS", 64)
    rng = np.random.default_rng(2)
    frame = table(300)
    frame["ages"] = [list(map(int, rng.integers(16, 25, rng.integers(0, 3)))) for _ in frame.index]
    if source == "csv":
        frame["ages"] = [";".join(map(str, items)) for items in frame["ages"]]
    path = write(tmp_path, frame, source)
    edits = {
        "layers:\n": "  - {name: ages, kind: categorical_list, vocab_from: age, max_len: 2}\n"
        "layers:\n",
        "in: [user, city, age]": "in: [user, city, age, ages]",
        "categorical: [user, city, age]": 'categorical: [user, city, age]\n  list_delimiter: ";"',
    }
    specs = []
    for stream in ("false", "true"):
        text = SPEC.replace("@SOURCE@", source).replace("@PATH@", str(path))
        for old, new in edits.items():
            text = text.replace(old, new)
        specs.append(compile_text(text.replace("@STREAM@", stream)).spec)
    memory, streamed = (load_data(spec) for spec in specs)
    fitted = {f["input"]: f for f in memory.preprocess.to_dict()["inputs"]}
    assert fitted["age"]["vocabulary"] == list(range(18, 25))  # age's ids: 18 -> 1, ..., 24 -> 7
    assert fitted["ages"]["vocabulary"] == [str(a) for a in range(18, 25)]
    assert fitted["ages"]["shared_from"] == "age"
    assert streamed.preprocess.to_dict()["inputs"][4] == fitted["ages"]
    for split in (memory.train, memory.test):
        for values, ids in zip(split.raw["ages"], split.inputs["ages"], strict=True):
            items = (
                values.split(";")
                if isinstance(values, str)
                else list(values if values is not None else ())
            )
            known = [int(v) - 17 for v in items if v != "" and 18 <= int(v) <= 24]
            assert ids.tolist() == (known + [0, 0])[:2]
    assert_same_batches(streamed, memory)
