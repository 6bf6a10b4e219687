"""`rocketc train` end to end on digits: run directory, resume, export, report, errors.

These tests train real (small) models for a few epochs; the whole file takes well under a
minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file, embedded_spec
from rocketc.errors import TrainError
from rocketc.train.run import TrainRecipe, train_run

QUICKSTART = embedded_spec("quickstart")

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115 (lives for the session)


class Killed(Exception):
    """Stands in for a kill: nothing after the raise runs."""


class KilledAfterFirstEpoch(TrainRecipe):
    def end_epoch(self, epoch, train_losses):
        super().end_epoch(epoch, train_losses)
        raise Killed


def quickstart(*sets: str):
    return compile_file(QUICKSTART, ["train.epochs=3", *sets])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train_run(quickstart(), out, console=QUIET)


def test_run_directory_holds_everything_to_ship(run):
    names = {p.name for p in run.out_dir.iterdir()}
    assert {
        "metrics.jsonl",
        "metrics.csv",
        "curves.png",
        "checkpoint.pt",
        "light.pt2",
        "audit.json",
        "light.onnx",
        "light_state_dict.pt",
        "report.json",
        "report.md",
        "code",
    } <= names
    lines = (run.out_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    record = json.loads(lines[-1])
    assert set(record["val"]) == {"light", "booster"}
    assert {"accuracy", "error", "ce"} <= set(record["val"]["light"])
    assert {"light", "booster", "hint", "total"} <= set(record["train_loss"])
    assert (run.out_dir / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert (run.out_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_light_net_learns_well_beyond_chance(run):
    assert run.test["light"]["accuracy"] > 0.6  # chance is 0.1
    assert run.test["booster"]["accuracy"] > 0.6


def test_report_numbers(run):
    report = json.loads((run.out_dir / "report.json").read_text())
    params = report["params"]
    assert params["light_net"] == 6570 and params["booster_net"] == 171338
    macs = report["macs_per_example"]
    # Linear layers: 64x64 + 64x32 + 32x10 for the light net.
    assert macs["light"] == 64 * 64 + 64 * 32 + 32 * 10
    assert macs["booster"] > 10 * macs["light"]
    for runtime in ("pytorch", "onnxruntime"):
        for net in ("light", "booster"):
            for batch in ("batch_1", "batch_100"):
                assert report["latency_ms"][runtime][net][batch] > 0
    assert 0 <= report["onnx_max_abs_diff"] < 1e-4
    md = (run.out_dir / "report.md").read_text()
    assert "6,570" in md and "latency onnxruntime, batch 100" in md
    assert report["gradient_audit"]["matrix"]["hint"]["booster"] is False
    assert "hint → shared, light" in md


def test_exported_light_net_has_exactly_lightnet_parameters(run):
    program = torch.export.load(run.out_dir / "light.pt2")
    state = torch.load(run.out_dir / "light_state_dict.pt", weights_only=True)
    from rocketc.train.generated import load_generated

    gen = load_generated(quickstart(), run.out_dir / "reload")
    light = gen.model.LightNet()
    light.load_state_dict(state)
    expected = {name for name, _ in light.named_parameters()}
    exported = set(program.state_dict)
    assert exported == expected
    assert not any(name.startswith("booster") for name in exported)
    x = gen.model.example_inputs(5)
    light.eval()
    torch.testing.assert_close(program.module()(*x), light(*x))


def test_onnx_matches_pytorch_on_real_rows(run):
    from rocketc.data import load_data

    data = load_data(quickstart().spec)
    rows = data.val.inputs["image"][:200]
    session = ort.InferenceSession(str(run.out_dir / "light.onnx"))
    got = session.run(None, {"image": rows})[0]
    program = torch.export.load(run.out_dir / "light.pt2")
    want = program.module()(torch.from_numpy(rows)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not any("booster" in init.name for init in _onnx_initializers(run))


def _onnx_initializers(run):
    import onnx

    return onnx.load(str(run.out_dir / "light.onnx")).graph.initializer


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(tmp_path):
    full = train_run(quickstart(), tmp_path / "full", console=QUIET, launch=False)
    again = train_run(quickstart(), tmp_path / "again", console=QUIET, launch=False)
    assert [r["val"] for r in full.history] == [r["val"] for r in again.history]

    killed = KilledAfterFirstEpoch(quickstart(), tmp_path / "killed", console=QUIET)
    with pytest.raises(Killed):
        killed.run(launch=False)
    assert len(killed.history) == 1
    resumed = train_run(quickstart(), tmp_path / "killed", console=QUIET, launch=False, resume=True)
    assert [r["val"] for r in resumed.history] == [r["val"] for r in full.history]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_run_is_extended_with_resume_and_more_epochs(tmp_path):
    """`--resume --epochs 4` on a 2-epoch run trains epochs 3-4 (issue 19: it was refused), with
    the cosine schedule planned again over 4 epochs, said in the report; below 2 is refused."""
    out = tmp_path / "run"
    first = train_run(quickstart("train.epochs=2"), out, console=QUIET)
    longer = train_run(quickstart("train.epochs=4"), out, console=QUIET, resume=True)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3, 4]
    assert longer.history[:2] == first.history
    (change,) = longer.report["extensions"]
    assert (change["after_epoch"], change["epochs_from"], change["epochs_to"]) == (2, 2, 4)
    # As a 4-epoch cosine from the start: epoch 3 trains at lr/2 (it was 0 after epoch 2).
    assert change["lr_from"] == 0.0 and change["lr_to"] == pytest.approx(0.003 / 2)
    assert "Extended after epoch 2: 2 -> 4 epochs" in (out / "report.md").read_text()
    assert longer.seconds > first.seconds  # the report counts both processes' training
    with pytest.raises(TrainError, match="already trained 4 epochs; resume it with --epochs 4"):
        train_run(quickstart("train.epochs=3"), out, console=QUIET, resume=True)
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["fingerprint"]["spec"]["train.epochs"] == 4 and run_json["state"] == "complete"


def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
    compiled = quickstart(
        "train.optimizer={name: sgd, lr: 1.0e+12, momentum: 0.0}", "train.schedule={name: constant}"
    )
    with pytest.raises(TrainError, match=r"non-finite loss at step \d+"):
        train_run(compiled, tmp_path, console=QUIET, launch=False)


def test_cli_train_and_its_errors(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "--set", "loss.hint.weight=-1", "-o", str(tmp_path)])
    assert bad.exit_code == 1
    assert "loss.hint.weight" in bad.stderr and "Traceback" not in bad.output
    spec = tmp_path / "npz.yaml"
    text = open(quickstart().source.file).read()
    data_section = text[text.index("\ndata:") :]
    spec.write_text(text.replace(data_section, "\ndata:\n  source: npz\n  path: nowhere.npz\n"))
    missing = runner.invoke(app, ["train", str(spec), "-o", str(tmp_path / "r")])
    assert missing.exit_code == 1
    assert "nowhere.npz" in missing.stderr and "Traceback" not in missing.output
    usage = runner.invoke(app, ["train", "--epochs", "0"])
    assert usage.exit_code == 2


def test_gauc_on_a_hand_checked_example():
    from rocketc.data.metrics import binary_metrics, gauc

    y = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0])
    s = np.array([0.9, 0.1, 0.4, 0.6, 0.5, 0.7, 0.2, 0.3, 0.8])
    g = np.array([1, 1, 2, 2, 3, 3, 4, 4, 4])
    # user 1: AUC 1 (2 rows); user 2: AUC 0 (2 rows); user 3: one class only, skipped;
    # user 4: positive 0.3 vs negatives 0.2 and 0.8 -> AUC 0.5 (3 rows).
    assert gauc(y, s, g) == pytest.approx((2 * 1.0 + 2 * 0.0 + 3 * 0.5) / 7)
    metrics = binary_metrics(np.log(s / (1 - s)), y, g)
    assert metrics["gauc"] == pytest.approx(3.5 / 7)
    assert 0 < metrics["auc"] < 1 and math.isfinite(metrics["logloss"])
