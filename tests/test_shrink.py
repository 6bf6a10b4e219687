"""`rocketc shrink`: sizes derived from every shipped spec, positioned refusals, the whole
command on the quickstart (files written, shrunk.yaml trains) and a resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rocketc.cli import app
from rocketc.compiler import compile_file, compile_text
from rocketc.compiler.load import load_text
from rocketc.compiler.sizes import REACH, by_depth, by_macs, reachable, stages, with_light
from rocketc.errors import RocketcError, SpecError
from rocketc.experiments.shrink.answer import summarise
from rocketc.train.generated import load_generated

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _layers(compiled, roles):
    return [dict(layer) for layer in compiled.source.data["layers"] if layer["role"] in roles]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_widths_derive_a_cheaper_light_net_on_every_shipped_spec(path):
    compiled = compile_file(path)
    full = compiled.macs()["light_net"]
    ok, skipped = reachable(compiled, [0.5, 0.25, 0.125, 0.0625])
    assert len(ok) + len(skipped) == 4
    head = compiled.spec.heads.light
    for factor in ok:
        size = by_macs(compiled, factor)
        derived = size.compiled
        # MACs shrink by about the factor; the booster net, shared layers and head are untouched
        assert 1 / REACH <= size.macs / (factor * full) <= REACH
        assert _layers(derived, ("shared", "booster")) == _layers(compiled, ("shared", "booster"))
        assert derived.macs()["booster_net"] == compiled.macs()["booster_net"]
        assert derived.graph.nodes[head]["type"] == compiled.graph.nodes[head]["type"]
        assert size.params < compiled.param_counts()["light_net"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_depths_drop_light_stages_from_the_top(path):
    compiled = compile_file(path)
    found = stages(compiled)
    for depth in range(len(found)):
        size = by_depth(compiled, depth)
        assert stages(size.compiled) == found[:depth]
        assert size.macs < compiled.macs()["light_net"]
        assert _layers(size.compiled, ("shared", "booster")) == _layers(
            compiled, ("shared", "booster")
        )


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_compiler_macs_are_what_torch_counts(path, tmp_path):
    from torch.utils.flop_counter import FlopCounterMode

    compiled = compile_file(path)
    gen = load_generated(compiled, tmp_path)
    model = gen.model.RocketNet().eval()
    for net, module in (("light_net", model.light_net()), ("booster_net", model.booster_net())):
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            module(*gen.model.example_inputs(1))
        assert compiled.macs()[net] == counter.get_total_flops() // 2


def test_a_factor_below_one_unit_is_refused_at_its_layer():
    compiled = compile_file(ROOT / "specs/ctr_movielens.yaml")
    with pytest.raises(SpecError) as err:
        by_macs(compiled, 0.001)
    text = str(err.value)
    assert "ctr_movielens.yaml:42:5" in text and "light_tower" in text and "below 1 unit" in text


def test_a_factor_the_shared_layers_put_out_of_reach_says_why():
    compiled = compile_file(ROOT / "specs/quickstart.yaml")
    with pytest.raises(SpecError) as err:
        by_macs(compiled, 0.25)
    text = str(err.value)
    assert "quickstart.yaml:23:5" in text and "shared layers alone cost 4,096" in text
    assert reachable(compiled, [1.0, 0.7, 0.25])[0] == [1.0, 0.7]


def test_a_depth_out_of_range_is_positioned():
    compiled = compile_file(ROOT / "specs/quickstart.yaml")
    with pytest.raises(SpecError, match=r"quickstart.yaml:\d+:\d+: depth 1 is not below"):
        by_depth(compiled, 1)


def test_a_light_fragment_replaces_the_light_layers(spec_text):
    compiled = compile_text(spec_text("quickstart"), "quickstart.yaml")
    fragment = load_text(
        "layers:\n"
        "  - {id: tiny, op: linear, in: embed_act, out_features: 4}\n"
        "  - {id: tiny_act, op: activation, fn: relu, in: tiny}\n"
        "  - {id: tiny_logits, op: linear, in: tiny_act, out_features: 10}\n"
        "head: tiny_logits\n",
        "tiny.yaml",
    )
    size = with_light(compiled, fragment, "tiny")
    assert size.name == "light_tiny"
    assert size.compiled.spec.heads.light == "tiny_logits"
    assert size.compiled.layers("light") == ["tiny", "tiny_act", "tiny_logits"]
    broken = load_text(
        "layers:\n  - {id: lost, op: linear, in: nowhere, out_features: 10}\n", "b.yaml"
    )
    with pytest.raises(RocketcError, match="nowhere"):
        with_light(compiled, broken, "b")


def _run(arm: str, seed: int, value: float) -> dict:
    key = "booster" if arm == "booster" else "light"
    return {"seed": seed, "seconds": 1.0, key: {"auc": value}, "epochs": {key: {"selected": 1}}}


def test_the_answer_picks_the_cheapest_size_whose_interval_holds():
    sizes = [
        {"name": n, "how": n, "macs": m, "params": m, "latency_ms": {"batch_1": 1, "batch_100": ms}}
        for n, m, ms in (("full", 1000, 4.0), ("x0.5", 500, 2.0), ("x0.25", 250, 1.0))
    ]
    sizes[0]["booster_macs"] = 8000
    alone = [0.700, 0.710, 0.705]
    runs = {
        "full": {
            "light_alone": [_run("light", k, v) for k, v in enumerate(alone)],
            "kd": [_run("light", k, v + 0.001) for k, v in enumerate(alone)],
            "rocket": [_run("light", k, v + 0.004) for k, v in enumerate(alone)],
        },
        "x0.5": {  # rocket holds (+0.2 ± small); alone and KD lose a point
            "light_alone": [_run("light", k, v - 0.01) for k, v in enumerate(alone)],
            "kd": [_run("light", k, v - 0.01 + 1e-3 * k) for k, v in enumerate(alone)],
            "rocket": [_run("light", k, v + 0.002 + 1e-4 * (k % 2)) for k, v in enumerate(alone)],
        },
        "x0.25": {  # nobody holds
            arm: [_run("light", k, v - 0.03 - 0.001 * k) for k, v in enumerate(alone)]
            for arm in ("light_alone", "kd", "rocket")
        },
    }
    booster = [_run("booster", k, v + 0.01) for k, v in enumerate(alone)]
    result = summarise(sizes, runs, booster, "auc", tolerance=0.1)
    assert result["chosen"] == "x0.5"
    assert result["cut"]["rocket"] == {"size": "x0.5", "macs_factor": 2.0, "latency_factor": 2.0}
    assert result["cut"]["light_alone"]["size"] == "full"
    assert result["answer"][0].startswith("The light net can be 2.0× cheaper (1,000 → 500 MACs")
    assert "no smaller size holds quality" in " ".join(result["answer"])
    one_seed = summarise(
        sizes,
        {s: {a: r[:1] for a, r in arms.items()} for s, arms in runs.items()},
        booster[:1],
        "auc",
        tolerance=0.1,
    )
    assert "ONE seed" in one_seed["answer"][0]
    assert "Within 0.1 point of the booster alone" not in " ".join(result["answer"])
    weak = [_run("booster", k, v - 0.002) for k, v in enumerate(alone)]
    behind = summarise(sizes, runs, weak, "auc", tolerance=0.1)
    assert "scores no better than the full-size light net alone" in behind["answer"][-1]
    assert not any("Dead nets" in line for line in result["answer"])
    runs["x0.25"]["kd"][1] = {**_run("light", 1, 0.5), "light": {"auc": 0.5}}
    dead = summarise(sizes, runs, booster, "auc", tolerance=0.1)
    assert "Dead nets, one constant score for every row (auc 0.500): x0.25 KD (seed 1)." in (
        " ".join(dead["answer"])
    )


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory):
    out = tmp_path_factory.mktemp("shrink")
    args = ["shrink", str(ROOT / "specs/quickstart.yaml"), "--factors", "1,0.7", "--seeds", "1"]
    args += ["--epochs", "1", "-o", str(out), "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_shrink_writes_its_files_and_answers_first(shrunk):
    out, output = shrunk
    for name in ("shrink.md", "shrink.json", "frontier.png", "shrunk.yaml", "specs/x0_7.yaml"):
        assert (out / name).is_file(), name
    result = json.loads((out / "shrink.json").read_text())
    assert [s["name"] for s in result["sizes"]] == ["full", "x0.7"]
    assert {(r["size"], r["arm"]) for r in result["rows"]} == {
        (s, a) for s in ("full", "x0.7") for a in ("light_alone", "kd", "rocket")
    }
    assert result["sizes"][1]["macs"] < result["sizes"][0]["macs"]
    md = (out / "shrink.md").read_text()
    assert md.splitlines()[2] == result["answer"][0]
    assert result["answer"][0] in output
    # 1 booster + 2 sizes x 3 arms, each stored as it finished
    assert len(list((out / "trainings").glob("*.json"))) == 7
    for spec in (out / "specs").glob("*.yaml"):
        compile_file(spec)


def test_shrunk_yaml_trains(shrunk, tmp_path):
    out, _ = shrunk
    header = (out / "shrunk.yaml").read_text().split("version:")[0]
    assert "chosen by rocketc shrink" in header and "Evidence:" in header
    args = ["train", str(out / "shrunk.yaml"), "--epochs", "1", "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "light.onnx").is_file()


def test_a_rerun_trains_nothing_again(shrunk):
    out, _ = shrunk
    before = {p.name: p.stat().st_mtime_ns for p in (out / "trainings").iterdir()}
    args = ["shrink", str(ROOT / "specs/quickstart.yaml"), "--factors", "1,0.7", "--seeds", "1"]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "7 stored, not trained again" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trainings").iterdir()} == before


def test_resume_after_a_kill(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rocketc", "shrink", str(ROOT / "specs/quickstart.yaml")]
    cmd += ["--factors", "1,0.7", "--seeds", "1", "--epochs", "1", "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "trainings").glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {p.name: p.read_bytes() for p in (out / "trainings").glob("*.json")}
    assert 2 <= len(kept) < 7
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(kept)} stored, not trained again" in done.stderr
    for name, raw in kept.items():
        assert (out / "trainings" / name).read_bytes() == raw
    assert len(list((out / "trainings").glob("*.json"))) == 7
    assert (out / "shrunk.yaml").is_file()


def test_impossible_factors_are_refused_before_anything_trains(tmp_path):
    args = ["shrink", str(ROOT / "specs/quickstart.yaml"), "--factors", "1,0.25"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "quickstart.yaml:23:5: size x0.25 is out of reach" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "trainings").exists()
    bad = CliRunner().invoke(app, ["shrink", str(ROOT / "specs/quickstart.yaml"), "--factors", "2"])
    assert bad.exit_code == 2


def test_default_factors_skip_the_unreachable_with_a_word(tmp_path):
    args = ["shrink", str(ROOT / "specs/quickstart.yaml"), "--seeds", "1", "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out")])
    # every default factor is out of reach on the quickstart: its shared layer costs 63%
    assert result.exit_code == 1
    assert result.output.count("skipped") == 4
    assert "no smaller light net to compare" in result.output
