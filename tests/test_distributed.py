"""Data-parallel training (issue 11) on CPU: gloo, 2 processes, the real launcher.

The slow parts are process starts (each imports torch), so one 2-process run of the quickstart
is shared by several tests, and one torchrun of tests/helpers/ddp_checks.py measures gathers and the
audit through DDP. Everything else (sharding, the batch split, unused parameters, usage errors)
is checked in this process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file, embedded_spec
from rocketc.data.base import Split
from rocketc.errors import TrainError
from rocketc.train import distributed
from rocketc.train.generated import load_generated
from rocketc.train.run import train_run

QUICKSTART = embedded_spec("quickstart")

ROOT = Path(__file__).resolve().parent.parent
QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (lives for the session)
EPOCHS = 10  # long enough that a rank can be killed mid-run
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
LIMIT_S = 240  # a run that takes longer than this is hung: the test fails instead of waiting


def rocketc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rocketc", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        **kwargs,
    )


def train_args(out: Path, *extra: str) -> list[str]:
    return ["train", "--nproc", "2", "--epochs", str(EPOCHS), "-o", str(out), *extra]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    done = rocketc(*train_args(out))
    assert done.returncode == 0, done.stderr
    return out, done


def summary(out: Path) -> dict:
    return json.loads((out / distributed.SUMMARY).read_text())


def last_val(out: Path) -> dict:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["val"]


# --- a 2-process run ---------------------------------------------------------------------------
def test_every_rank_ends_with_the_same_weights(two_process_run):
    out, _ = two_process_run
    s = summary(out)
    assert s["world_size"] == 2 and s["backend"] == "gloo"
    assert s["global_batch_size"] == 64 and s["batch_size_per_rank"] == 32
    digests = s["weights_sha256"]
    assert len(digests) == 2 and len(digests[0]) == 64
    assert digests[0] == digests[1]
    assert s["unused_parameters"] == []  # every weight gets a gradient: DDP need not search


def test_only_rank_0_logs_and_writes(two_process_run):
    out, done = two_process_run
    for epoch in range(1, EPOCHS + 1):
        assert done.stderr.count(f"epoch {epoch:>3}/{EPOCHS}") == 1, done.stderr
    assert done.stdout.count("run directory:") == 1
    assert "Traceback" not in done.stderr
    assert {"light.onnx", "report.json", "checkpoint.pt", "best.pt"} <= {
        p.name for p in out.iterdir()
    }
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, EPOCHS + 1))


def test_two_processes_reach_one_process_metrics_within_noise(two_process_run, tmp_path):
    """Same global batch (2 x 32 vs 64): the 2-process light and booster net land where single
    runs with different seeds land (the noise band), widened by 2 points."""
    out, _ = two_process_run
    ddp = last_val(out)
    single = {"light": [], "booster": []}
    for seed in range(3):
        sets = [f"train.epochs={EPOCHS}", f"train.seed={seed}"]
        run = train_run(
            compile_file(QUICKSTART, sets), tmp_path / str(seed), console=QUIET, launch=False
        )
        for net in single:
            single[net].append(run.history[-1]["val"][net]["accuracy"])
    for net, values in single.items():
        assert min(values) - 0.02 <= ddp[net]["accuracy"] <= max(values) + 0.02, (net, values)


def test_killed_rank_ends_the_job_then_resume_equals_the_unbroken_run(two_process_run, tmp_path):
    out = tmp_path / "killed"
    job = subprocess.Popen(
        [sys.executable, "-m", "rocketc", *train_args(out)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_first_epoch(out / "metrics.jsonl", job)
        os.kill(_worker_pid(job.pid, rank=1), signal.SIGKILL)
        _, stderr = job.communicate(timeout=LIMIT_S)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 1, stderr
    assert "rank 1 of 2" in stderr and "SIGKILL" in stderr, stderr
    assert "Traceback" not in stderr
    assert not (out / "light.onnx").exists()

    resumed = rocketc(*train_args(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    after = int(resumed.stderr.split("resuming quickstart after epoch ")[1].split("/")[0])
    assert 1 <= after < EPOCHS  # it did stop mid-run
    # Shards and dropout are seeded per epoch, the checkpoint carries the rest: bit for bit.
    unbroken, _ = two_process_run
    assert summary(out)["weights_sha256"] == summary(unbroken)["weights_sha256"]


def _wait_for_first_epoch(metrics: Path, job: subprocess.Popen) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not (metrics.exists() and metrics.read_text().strip()):
        assert job.poll() is None, job.communicate()[1]
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.02)


def _worker_pid(launcher: int, rank: int) -> int:
    """The pid of the launcher's child process that torchrun gave RANK=`rank`."""
    for task in Path(f"/proc/{launcher}/task").iterdir():
        for child in (task / "children").read_text().split():
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ:
                return int(child)
    raise AssertionError(f"no worker with RANK={rank} under pid {launcher}")


# --- inside a real process group (torchrun of tests/helpers/ddp_checks.py) -----------------
@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("checks") / "checks.json"
    script = str(ROOT / "tests" / "helpers" / "ddp_checks.py")
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = subprocess.run(
        [*run, script, str(out)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=LIMIT_S
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_torchrun_environment_makes_a_gloo_world(checks):
    assert checks["ranks"] == [[0, 2, "gloo"], [1, 2, "gloo"]]


def test_shards_gather_back_to_the_whole_split_in_order(checks):
    for n, rows in checks["gathers"].items():
        assert rows == np.arange(int(n) * 3).reshape(int(n), 3).tolist(), n


def test_mean_and_broadcast_across_ranks(checks):
    assert checks["mean"] == {"a": 0.5, "b": 1.5}
    assert checks["from_main"] == {"rank": 0}


@pytest.mark.parametrize(
    "name",
    ["quickstart", "quickstart_shared", "quickstart_none", "light_alone", "wrn16_1_interval"],
)
def test_audit_through_ddp_equals_the_one_process_audit(checks, name):
    """The all-reduce moves no gradient anywhere one process would not: same matrix, nothing
    flagged, for each gradient_block, a light net trained alone and tied weights."""
    audit = checks["audits"][name]
    assert audit["flagged"] == [] and audit["problems"] == []
    assert audit["ddp"] == audit["one_process"]


def test_audit_through_ddp_catches_a_missing_gradient_block(checks):
    assert checks["audits"]["broken"]["flagged"] == [["hint", "booster"]]


# --- in this process -----------------------------------------------------------------------------
def test_shard_loader_partitions_each_epoch_and_reseeds_per_epoch():
    rows = torch.arange(101)
    worlds = [distributed.World(rank, 2) for rank in (0, 1)]
    loaders = [distributed.shard_loader([rows], 8, w, seed=3) for w in worlds]

    def epoch(e: int) -> list[list[int]]:
        out = []
        for loader, sampler in loaders:
            sampler.set_epoch(e)
            batches = [b[0].tolist() for b in loader]
            assert all(len(b) == 4 for b in batches[:-1])  # the global batch of 8, halved
            out.append([i for b in batches for i in b])
        return out

    first, again, second = epoch(0), epoch(0), epoch(1)
    assert len(first[0]) == len(first[1]) == 51  # equal steps on every rank (one row padded)
    assert set(first[0]) | set(first[1]) == set(range(101))
    assert first == again and first != second


def test_global_batch_must_split_evenly():
    with pytest.raises(TrainError, match="batch_size=63"):
        distributed.check_batch_split(64, 3)
    distributed.check_batch_split(64, 4)


def test_shards_cover_the_split_once():
    split = Split({"x": np.arange(7)}, np.arange(7) * 10, None, weight=np.ones(7))
    shards = [distributed.World(r, 3).shard(split) for r in range(3)]
    assert [s.inputs["x"].tolist() for s in shards] == [[0, 1, 2], [3, 4, 5], [6]]
    assert shards[1].target.tolist() == [30, 40, 50] and len(shards[1].weight) == 3
    past_the_end = distributed.World(4, 5).shard(Split({"x": np.arange(3)}, np.arange(3), None))
    assert len(past_the_end) == 1  # predicts something; gather drops it


def test_unused_parameters(tmp_path):
    def unused(*sets: str) -> list[str]:
        compiled = compile_file(QUICKSTART, list(sets))
        gen = load_generated(compiled, tmp_path / str(len(list(tmp_path.iterdir()))))
        return distributed.unused_parameters(gen, compiled.spec.train.epochs)

    assert unused() == []
    alone = unused("loss.booster=0", "loss.hint.weight=0")
    assert alone and all(name.startswith("booster.") for name in alone)
    # A warm-up only scales the hint (0 in epoch 0): it still reaches the same weights.
    assert unused("loss.hint.warmup_epochs=2") == []


def test_weight_digest_sees_any_change():
    net = torch.nn.Linear(3, 2)
    before = distributed.digest(net)
    assert distributed.digest(net) == before
    with torch.no_grad():
        net.bias[0] += 1e-7
    assert distributed.digest(net) != before


# --- usage errors: clear, before any process starts -------------------------------------------
def test_bad_nproc_is_a_usage_error():
    result = CliRunner().invoke(app, ["train", "--nproc", "0"])
    assert result.exit_code == 2 and "--nproc" in result.output


def test_batch_that_does_not_split_is_refused_before_launch(tmp_path):
    result = CliRunner().invoke(app, ["train", "--nproc", "3", "-o", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "does not split evenly over 3 processes" in result.output
    assert not (tmp_path / "r").exists()


def test_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = ["train", "--nproc", "2", "--master-port", port, "-o", str(tmp_path / "r")]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert f"--master-port {port}: cannot listen there" in result.output


def test_master_port_needs_nproc():
    result = CliRunner().invoke(app, ["train", "--master-port", "29500"])
    assert result.exit_code == 2 and "--master-port" in result.output


def test_nproc_under_torchrun_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["train", "--nproc", "2"])
    assert result.exit_code == 2 and "torchrun started this process already" in result.output


def test_bad_timeout_is_a_train_error(monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(TrainError, match="ROCKETC_DIST_TIMEOUT='soon'"):
        distributed.timeout()


def test_nproc_starts_the_same_command_with_every_option(tmp_path, monkeypatch):
    """--nproc N starts N copies of the very command it was given, less --nproc and
    --master-port: an option added later cannot be dropped (issue 20: the argv was rebuilt
    by hand, option by option)."""
    import rocketc.train.launcher as launcher

    seen = {}
    monkeypatch.setattr(launcher, "launch", lambda nproc, argv, **kw: seen.update(argv=argv))
    spec = embedded_spec("quickstart")
    args = ["train", str(spec), "--nproc", "2", "--master-port", "29511", "--epochs", "2"]
    args += ["--threads", "1", "--set", "loss.hint.weight=0.5", "--set", "train.seed=4"]
    args += ["--overwrite", "-o", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["argv"] == [
        "train",
        str(spec),
        "--out",
        str(tmp_path / "r"),
        "--epochs",
        "2",
        "--overwrite",
        "--set",
        "loss.hint.weight=0.5",
        "--set",
        "train.seed=4",
        "--threads",
        "1",
    ]
