"""bench/: the statistics and the harness, and a `--quick` smoke of every part so none can rot.

The benchmarks themselves never run here (their numbers need a quiet machine); the smoke runs
each part on tiny data into a temporary directory and checks what it writes.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import _harness, compiler, headroom, paper, peers, serving
from bench._stats import mean_interval, paired_interval, spread, verdict, welch_interval

ROOT = Path(__file__).resolve().parent.parent


# --- statistics ----------------------------------------------------------------------------
def test_paired_interval_matches_the_t_table():
    # Differences 2, 3, 4: mean 3, sd 1, t(0.975, df=2) = 4.3027 -> half-width 2.4841.
    got = paired_interval([12.0, 23.0, 34.0], [10.0, 20.0, 30.0])
    assert got["mean"] == pytest.approx(3.0)
    assert got["sd"] == pytest.approx(1.0)
    assert got["high"] - got["mean"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert verdict(got) == "better"
    assert verdict(paired_interval([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])) == (
        "no clear difference"  # differences 1, 2, 3: the interval reaches below 0
    )


def test_paired_interval_pairs_by_position_and_refuses_unpaired():
    with pytest.raises(ValueError, match="unpaired"):
        paired_interval([1.0, 2.0], [1.0])
    one = paired_interval([2.0], [1.0])
    assert one["mean"] == 1.0 and math.isinf(one["low"]) and verdict(one) == "no clear difference"


@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=2, max_size=12))
def test_interval_contains_its_mean_and_flips_with_the_pairs(pairs):
    treated, baseline = [p[0] for p in pairs], [p[1] for p in pairs]
    forward = paired_interval(treated, baseline)
    backward = paired_interval(baseline, treated)
    assert forward["low"] <= forward["mean"] <= forward["high"]
    assert backward["mean"] == pytest.approx(-forward["mean"], abs=1e-12)
    assert backward["low"] == pytest.approx(-forward["high"], abs=1e-9)


def test_spread_quartiles():
    s = spread([5, 1, 4, 2, 3])
    assert (s["min"], s["q1"], s["median"], s["q3"], s["max"], s["n"]) == (1, 2, 3, 4, 5, 5)


def test_mean_interval_and_welch_match_the_t_table():
    # 1, 2, 3: mean 2, sd 1, t(0.975, df=2) = 4.3027 -> half-width 2.4841.
    got = mean_interval([1.0, 2.0, 3.0])
    assert (got["low"], got["high"]) == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-4)
    assert math.isinf(mean_interval([5.0])["high"])
    # Equal variances and sizes: Welch's df is 2(n - 1) = 4, t(0.975, 4) = 2.7764,
    # se = sqrt(1/3 + 1/3) -> half-width 2.2669.
    diff = welch_interval([11.0, 12.0, 13.0], [1.0, 2.0, 3.0])
    assert diff["mean"] == pytest.approx(10.0) and diff["df"] == pytest.approx(4.0)
    assert diff["high"] - diff["mean"] == pytest.approx(2.2669, abs=1e-4)


# --- paper: pairing by seed ----------------------------------------------------------------
def _run(variant, seed, light):
    return {
        "variant": variant,
        "seed": seed,
        "seconds": 1.0,
        "trained_params": 10,
        "light": {"accuracy": light},
    }


def test_paper_pairs_each_variant_with_light_alone_of_the_same_seed():
    runs = [
        _run("light_alone", 0, 0.80),
        _run("light_alone", 1, 0.90),
        _run("light_alone", 2, 0.70),
        _run("rocket", 2, 0.72),  # the order of runs must not matter
        _run("rocket", 0, 0.82),
        _run("rocket", 1, 0.92),
    ]
    summary = paper.summarise(runs, "accuracy", ["light_alone", "rocket"])
    diff = summary["rocket"]["vs_light_alone"]
    assert diff["mean"] == pytest.approx(0.02)
    assert diff["sd"] == pytest.approx(0.0, abs=1e-12)  # +2 points for every seed: no doubt
    assert diff["verdict"] == "better"
    assert "vs_light_alone" not in summary["light_alone"]


def test_paper_cuda_mode_says_why_it_skips(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "GPU" in paper.run(quick=True, device="cuda")["skipped"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(paper, "ROOT", tmp_path)  # no data/cifar10.npz there
    assert "cifar10.npz" in paper.run(quick=True, device="cuda")["skipped"]


# --- compiler: reading -X importtime -------------------------------------------------------
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |       networkx.exception
import time:       300 |        400 |     networkx
import time:        50 |        450 |   rocketc.compiler.graph
import time:        10 |        460 | rocketc.compiler
import time:        20 |         20 |   typer.core
import time:        30 |         50 | typer
"""


def test_importtime_sums_per_package_and_names_the_importer():
    got = compiler.parse_importtime(IMPORTTIME)
    assert got["total_us"] == 510
    nx = got["packages"]["networkx"]
    assert (nx["self_us"], nx["modules"], nx["first_importer"]) == (
        400,
        2,
        "rocketc.compiler.graph",
    )
    assert got["packages"]["typer"]["first_importer"] == "(the command)"
    assert list(got["packages"])[0] == "networkx"  # heaviest first
    # rocketc's own modules are listed one by one, each with its importer
    assert got["packages"]["rocketc.compiler.graph"]["first_importer"] == "rocketc.compiler"


# --- harness -------------------------------------------------------------------------------
def _fake_part(name: str, run_result: dict, order: int = 1) -> _harness.Part:
    module = SimpleNamespace(
        TITLE=f"Fake {name}",
        ORDER=order,
        run=lambda quick: run_result,
        render=lambda results: f"value {results['value']}\n",
    )
    return _harness.Part(name, module)


def test_a_part_not_rerun_keeps_its_section(tmp_path):
    old, new = _fake_part("old", {"value": 1}), _fake_part("new", {"value": 2}, order=2)
    parts = {"old": old, "new": new}
    _harness.run_part(old, quick=False, device="cpu", results_dir=tmp_path)
    _harness.run_part(new, quick=False, device="cpu", results_dir=tmp_path)
    new.module.run = lambda quick: {"value": 3}
    _harness.run_part(new, quick=False, device="cpu", results_dir=tmp_path)
    doc = _harness.write_doc(tmp_path, tmp_path / "BENCHMARKS.md", parts).read_text()
    assert "value 1" in doc and "value 3" in doc and "value 2" not in doc
    assert doc.index("## Fake old") < doc.index("## Fake new")
    record = json.loads((tmp_path / "old.json").read_text())
    assert record["machine"]["torch_threads"] >= 1 and record["results"] == {"value": 1}


def test_rerunning_some_cases_keeps_the_others_with_their_own_stamp(tmp_path, monkeypatch):
    def run(quick, only=()):
        keys = only or ("a", "b", "c")
        return {"note": "new note", "cases": [{"key": k, "value": f"{k}{calls[0]}"} for k in keys]}

    calls = [1]
    module = SimpleNamespace(
        TITLE="Fake cases",
        CASES="cases",
        run=run,
        render=lambda r: "".join(
            f"{c['value']} {''.join(_harness.stamp_line(c))}\n" for c in r["cases"]
        ),
    )
    part = _harness.Part("cases", module)
    _harness.run_part(part, quick=False, device="cpu", results_dir=tmp_path)
    first = json.loads((tmp_path / "cases.json").read_text())["results"]["cases"]
    calls[0] = 2
    real = _harness.machine
    monkeypatch.setattr(_harness, "machine", lambda: {**real(), "date": "LATER"})
    _harness.run_part(part, quick=False, device="cpu", results_dir=tmp_path, only=["b"])
    record = json.loads((tmp_path / "cases.json").read_text())
    cases = record["results"]["cases"]
    assert [c["value"] for c in cases] == ["a1", "b2", "c1"]  # b replaced in place
    assert cases[0]["measured"] == first[0]["measured"] and cases[1]["measured"]["date"] == "LATER"
    assert record["only"] == ["b"]
    doc = _harness.write_doc(tmp_path, tmp_path / "BENCHMARKS.md", {"cases": part}).read_text()
    assert "That run measured only b" in doc and "_This case: measured LATER" in doc


def test_a_part_without_cases_refuses_a_subset(capsys):
    with pytest.raises(SystemExit):
        _harness.main(["cotrain:movielens", "--render-only"])
    assert "has no cases to pick from" in capsys.readouterr().err


def test_a_skipped_part_writes_nothing(tmp_path):
    part = _fake_part("gpu", {"skipped": "no GPU"})
    assert _harness.run_part(part, quick=False, device="cpu", results_dir=tmp_path) is None
    assert not list(tmp_path.glob("*.json"))


def test_serving_int8_rows_give_the_latency_ratio_and_the_metric_delta():
    """bench serving's INT8 rows on a small case: quickstart, 2 epochs, one round."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        row = serving.measure_int8("quickstart", serving.QUICK, quick=True)
    finally:
        torch.set_num_threads(threads)
    assert row["method"].startswith("static QDQ") and row["default"] in ("int8", "fp32")
    for key in ("batch_1", "batch_100"):
        want = row["latency_ms"]["int8"][key]["median"] / row["latency_ms"]["fp32"][key]["median"]
        assert row["ratio"][key] == pytest.approx(want)
    assert row["test"]["difference"] == pytest.approx(row["test"]["int8"] - row["test"]["fp32"])
    ctr = {**row, "spec": "ctr_movielens", "ratio": {"batch_1": 1.0, "batch_100": 0.5}}
    ctr["test"] = {**row["test"], "drop": 0.002}
    results = {"matmul": {"best_flops": 1e10}, "specs": [], "int8": [row, ctr]}
    text = "\n".join(serving._int8_lines(results["int8"]))
    assert "`quickstart` (train.epochs=2) | static QDQ |" in text
    (target,) = serving.targets(results)  # quickstart has no INT8 target; ctr_movielens does
    assert target["measured"].startswith("0.50×") and target["met"] is False  # the drop


# --- the smoke -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench-quick")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--threads", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _skipping() -> set[str]:
    """Parts that skip themselves here: peers without its peer library installed."""
    return set() if importlib.util.find_spec("deepctr_torch") else {"peers"}


def test_quick_smoke_runs_every_part_into_its_own_directory(quick_run):
    parts = {n: p for n, p in _harness.discover().items() if n not in _skipping()}
    written = {p.stem for p in (quick_run / "results").glob("*.json")}
    assert written == set(parts)
    doc = (quick_run / "BENCHMARKS.md").read_text()
    for part in parts.values():
        assert f"## {part.title}" in doc
        record = json.loads((quick_run / "results" / f"{part.name}.json").read_text())
        assert record["quick"] is True and record["machine"]["git_commit"]
    assert doc.count("Quick smoke run") == len(parts)
    assert not (ROOT / "bench" / "results" / "paper.json").exists() or (
        not json.loads((ROOT / "bench" / "results" / "paper.json").read_text())["quick"]
    )


def test_quick_paper_results_hold_every_seed(quick_run):
    results = json.loads((quick_run / "results" / "paper.json").read_text())["results"]
    for case in results["datasets"]:
        seeds = {r["seed"] for r in case["runs"] if r["variant"] == "light_alone"}
        assert len(seeds) == results["seeds"] >= 2
        assert "vs_light_alone" in case["summary"]["rocket"]


def test_quick_overhead_checked_both_sides_compute_the_same_loss(quick_run):
    results = json.loads((quick_run / "results" / "overhead.json").read_text())["results"]
    for spec in results["specs"]:
        assert spec["check"]["max_relative_gap"] <= 1e-5
        assert len(spec["generated_s"]) == len(spec["handwritten_s"]) > 0


def test_overhead_refuses_a_twin_that_computes_another_loss(tmp_path):
    import dataclasses

    from bench import overhead

    sides = overhead._Sides("quickstart", overhead._batches("quickstart", 1, 8), tmp_path)
    sides.check_same_losses()
    sides.recipe = dataclasses.replace(sides.recipe, hint_weight=sides.recipe.hint_weight + 0.5)
    with pytest.raises(RuntimeError, match="not the generated model"):
        sides.check_same_losses()


def test_a_recipe_in_bench_recipes_adds_a_paired_tuned_row(monkeypatch, tmp_path):
    recipe = (
        (ROOT / "specs" / "quickstart.yaml")
        .read_text()
        .replace("hint: {weight: 1.0", "hint: {weight: 0.3")
    )
    assert "weight: 0.3" in recipe
    (tmp_path / "quickstart.yaml").write_text(recipe)
    monkeypatch.setattr(paper, "RECIPES", tmp_path)
    case = paper.Case("digits", "quickstart", (), 1, 64, 64, "test")
    out = paper.run_case(case, 2, ("light_alone",))
    assert [v["name"] for v in out["variants"]] == ["light_alone", "tuned"]
    assert out["tuned"] == "bench/recipes/quickstart.yaml"
    assert "vs_light_alone" in out["summary"]["tuned"]
    assert "No tuned row" not in "\n".join(paper._case_table(out))


# --- bench/pairs: other boosters for the reference light net -------------------------------
def _light_path(data: dict) -> list[dict]:
    """The layers the served light net runs (walked back from its head), role and tie dropped."""
    layers = {layer["id"]: layer for layer in data["layers"]}
    path, todo = {}, [data["heads"]["light"]]
    while todo:
        layer = layers.get(todo.pop())
        if layer is None or layer["id"] in path:
            continue  # an input
        path[layer["id"]] = {k: v for k, v in layer.items() if k not in ("role", "tie")}
        todo += layer["in"] if isinstance(layer["in"], list) else [layer["in"]]
    return sorted(path.values(), key=lambda layer: layer["id"])


@pytest.mark.parametrize("pair", sorted((ROOT / "bench" / "pairs").glob("*.yaml")), ids=str)
def test_a_bench_pair_serves_the_reference_light_net_on_the_same_data(pair):
    """The pairs screen pairs each booster with fashion_mnist_small's light-alone runs: only
    valid if the pair's light net, data and training are that spec's (no_bn says it differs)."""
    from rocketc.compiler import compile_file

    base, other = compile_file(ROOT / "specs" / "fashion_mnist_small.yaml"), compile_file(pair)
    assert other.spec.data == base.spec.data
    assert other.spec.train == base.spec.train
    same = _light_path(other.source.data) == _light_path(base.source.data)
    assert same is (pair.stem != "fashion_no_bn")
    if same:
        assert other.param_counts()["light_net"] == base.param_counts()["light_net"]
        # a different booster, or the same one sharing differently (fashion_separate: nothing)
        mine, theirs = other.param_counts(), base.param_counts()
        assert (mine["booster_net"], mine["shared"]) != (theirs["booster_net"], theirs["shared"])


# --- screen: summaries and targets from raw runs --------------------------------------------
def _screen_runs(candidate: str, tests: list[float], booster: float | None = None) -> list[dict]:
    return [
        {
            "candidate": candidate,
            "seed": seed,
            "epochs": 4,
            "val": test,
            "val_per_epoch": [test],
            "best_epoch": 4,
            "test": test,
            "booster_test": booster,
            "seconds": 1.0,
        }
        for seed, test in enumerate(tests, start=1)
    ]


def test_screen_seed_lists_collapse_runs_of_consecutive_seeds():
    from bench.screen import _seed_list

    assert _seed_list(list(range(1, 21))) == "1-20"
    assert _seed_list([1, 3, 4, 5, 9, 10]) == "1,3-5,9-10"
    assert _seed_list([7]) == "7"


def test_screen_power_target_says_when_one_point_lies_above_the_interval():
    """The many-seed screen sizes the spec's gain: a small, steady gain is reported as such and
    misses the +1 point bar with 1 point outside its interval; a large one meets it."""
    from bench.screen import render, targets

    alone = [0.870, 0.875, 0.872, 0.868, 0.874, 0.871]

    def results(gains: list[float]) -> dict:
        hint = [a + g for a, g in zip(alone, gains, strict=True)]
        runs = _screen_runs("alone", alone) + _screen_runs("hint_0.3", hint, booster=0.89)
        screen = {
            "key": "fashion_power",
            "spec": "fashion_mnist_small",
            "sets": {},
            "metric": "accuracy",
            "description": "fashion-mnist: tiny",
            "runs": runs,
        }
        return {"screens": [screen]}

    small = results([0.001, 0.002, 0.0015, 0.001, 0.002, 0.0012])
    power = next(t for t in targets(small) if "many seeds" in t["target"])
    assert power["met"] is False
    assert power["measured"].endswith("over 6 seeds: 1 point lies above its interval")
    assert "| 1-6 |" in render(small) and "0.8900" in render(small)

    large = results([0.012, 0.011, 0.013, 0.012, 0.014, 0.011])
    power = next(t for t in targets(large) if "many seeds" in t["target"])
    assert power["met"] is True and "lies above" not in power["measured"]


# --- peers: rocketc next to DeepCTR-Torch ----------------------------------------------------
def _peer_run(library: str, seed: int, auc: float, rows_per_s: float) -> dict:
    return {
        "library": library,
        "seed": seed,
        "auc": auc,
        "gauc": auc - 0.05,
        "logloss": 0.6,
        "rows_per_s": rows_per_s,
        "selected_epoch": 2,
        "trained_params": 100,
    }


def test_peers_skips_naming_the_install_command_without_the_peer(monkeypatch):
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    assert peers.INSTALL in peers.run(quick=True)["skipped"]
    assert "deepctr-torch==0.3.0" in (ROOT / "bench" / "requirements-peers.txt").read_text()


def test_peers_targets_place_rocketc_against_the_peer_seed_interval():
    peer = [_peer_run(peers.PEER, s, a, 1000.0) for s, a in enumerate([0.78, 0.79, 0.80])]
    within = [_peer_run("rocketc", s, a, 1200.0) for s, a in enumerate([0.785, 0.79, 0.795])]
    below = [_peer_run("rocketc", s, a, 900.0) for s, a in enumerate([0.70, 0.71, 0.72])]
    # The diagnostic row (peer's embedding init) is reported, never a target.
    diagnostic = [_peer_run(peers.PEER_INIT, s, 0.5, 1.0) for s in range(3)]
    results = {
        "models": [
            {"key": "dcn_v2", "label": "DCN-v2", "runs": within + peer + diagnostic},
            {"key": "deepfm", "label": "DeepFM", "runs": below + peer},
        ]
    }
    auc, speed = peers.targets(results)
    assert auc["measured"] == "DCN-v2 within; DeepFM below" and auc["met"] is False
    assert speed["measured"] == "DCN-v2 1.20×; DeepFM 0.90×" and speed["met"] is False
    summary = peers.summarise(results["models"][0])
    assert summary["difference"]["auc"]["mean"] == pytest.approx(0.0)
    assert summary["rocketc"]["rows_per_s"]["median"] == 1200.0
    assert summary["diagnostic_difference"]["auc"]["mean"] == pytest.approx(-0.29)
    assert "diagnostic_difference" not in peers.summarise(results["models"][1])


def test_peers_deepfm_spec_swaps_only_the_booster_interaction():
    base, compiled = peers._compiled(epochs=1)
    layers = {layer["id"]: layer for layer in compiled["deepfm"].source.data["layers"]}
    assert layers["fields"]["stack"] is True and layers["booster_fm"]["op"] == "fm"
    assert layers["features"]["in"] == ["fields_flat", "genre_proj"]
    counts = {k: c.param_counts() for k, c in compiled.items()}
    assert counts["deepfm"]["light_net"] == counts["dcn_v2"]["light_net"]
    cross = 3 * (128 * 128 + 128)  # the DCN's cross layers; DeepFM's FM term has no weights
    # the logit reads the 128 crossed features where DeepFM gives it one FM value
    assert counts["dcn_v2"]["booster_net"] - counts["deepfm"]["booster_net"] == cross + 127


@pytest.mark.skipif(
    importlib.util.find_spec("deepctr_torch") is None,
    reason="DeepCTR-Torch not installed (pip install --no-deps -r bench/requirements-peers.txt)",
)
def test_peers_deepctr_models_differ_from_rocketc_only_where_the_section_says():
    """Parameter counts: the peer's towers read the 19 genre flags raw (131 features, not 128
    after rocketc's 19x16 projection); its logit has no bias of its own beside the prediction
    layer's; rocketc weighs the FM term. Nothing else differs in structure."""
    base, compiled = peers._compiled(epochs=1)
    setup = peers._setup(base)
    ours = {k: c.param_counts()["booster_net"] for k, c in compiled.items()}
    theirs = {
        k: sum(p.numel() for p in peers._peer_model(k, setup, seed=0).parameters())
        for k in compiled
    }
    genre_proj, first_layer = 19 * 16 + 16, 3 * 256  # rocketc's projection; 3 more inputs
    cross = 3 * ((131 * 131 + 131) - (128 * 128 + 128))
    assert theirs["dcn_v2"] - ours["dcn_v2"] == cross + first_layer + 3 - genre_proj
    assert theirs["deepfm"] - ours["deepfm"] == first_layer - 1 - genre_proj


def test_headroom_pairs_the_booster_with_the_light_net_of_the_same_seed():
    def run(seed, net, value):
        return {
            "seed": seed,
            "seconds": 1.0,
            net: {"gauc": value},
            "epochs": {net: {"selected": 2}},
        }

    ablation = {
        "metric": "gauc",
        "epochs": 5,
        "variants": [
            {
                "variant": "light_alone",
                "runs": [run(s, "light", 0.70 + 0.01 * s) for s in (0, 1, 2)],
            },
            {
                "variant": "booster_alone",
                "runs": [run(s, "booster", 0.72 + 0.01 * s + 0.001 * (s % 2)) for s in (2, 0, 1)],
            },
        ],
    }
    row = headroom.summarise(ablation)
    assert row["seeds"] == [0, 1, 2] and row["lead"]["mean"] == pytest.approx(0.02 + 0.001 / 3)
    assert row["lead"]["low"] > 0.01
    results = {
        "seeds": 3,
        "configs": [{"key": "k", "spec": "ctr_movielens_din", "sets": ["a=1"], "what": "w", **row}],
    }
    text = headroom.render(results)
    assert "| k | `ctr_movielens_din` | w: `a=1` | 0.7100 | 0.7303 | +2.03 [" in text
    assert "Rows whose booster leads beyond its interval: 1 of 1 (k)." in text
    assert headroom.targets(results)[0]["met"] is True
