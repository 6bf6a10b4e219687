"""tune: `rocketc tune` at the reference budget: the best recipe it finds vs light alone, on test.

Issue 8's question, answered the way a user would: run a study on the spec's own data (the
search space in `bench/tune_spaces/<spec>.yaml`), then the verdict on the test split with paired
seeds the search never saw. The raw study (every trial, per-seed values, the verdict's per-seed
scores) is kept; the rendered section is the verdict, the trials and the best recipe.

Full run: `specs/fashion_mnist_small.yaml` (20,000 train rows, 4 epochs: the reference budget),
8 trials x 1 seed, verdict over 5 paired seeds; `specs/quickstart.yaml` (digits, 30 epochs),
16 trials x 2 seeds in rocketc's default space; `specs/ctr_movielens.yaml` with
`data.split=user_time` (issue 8's MovieLens setting), 10 trials x 1 seed;
`specs/ctr_synthetic.yaml`, 12 trials x 2 seeds; `specs/fashion_mnist_cnn.yaml` on 10,000 rows
for 3 epochs (its full budget takes hours here), 6 trials x 1 seed, in the fashion_mnist_small
space; `specs/fashion_mnist_small.yaml` with scarce data (2,000 rows, 30 epochs), 8 trials x 1
seed in rocketc's default space (KD included); the same on its 20,000 rows for 20 epochs (light
alone has flattened by then), 6 trials x 1 seed; and at 4 epochs with batches of 32, 8 trials x
1 seed, its verdict over 15 seeds. Every other verdict: 5 paired seeds. About 165 minutes on 2
quiet CPU cores.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import stamp_line

TITLE = "Tune: the best recipe against light alone"
CASES = "studies"  # `python -m bench tune:KEY,KEY` reruns only those
ORDER = 15
EXPECTED = "about 165 min"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Study:
    key: str
    spec: str
    sets: tuple[str, ...]
    trials: int
    seeds: int
    verdict_seeds: int
    own_space: bool = True  # bench/tune_spaces/<spec>.yaml where there is one; else the default
    keep: str | None = None  # a full run keeps the study's directory as bench/results/<keep>/


FULL = (
    Study("fashion_mnist", "fashion_mnist_small", (), 8, 1, 5),
    Study("digits", "quickstart", (), 16, 2, 5),
    Study(
        "movielens", "ctr_movielens", ("data.split=user_time",), 10, 1, 5, keep="tune_ctr_movielens"
    ),
    Study("ctr_synthetic", "ctr_synthetic", (), 12, 2, 5),
    Study(
        "fashion_mnist_cnn", "fashion_mnist_cnn", ("data.limit=10000", "train.epochs=3"), 6, 1, 5
    ),
    # Where data is scarce (the screen's fashion_scarce): the default space, KD included.
    Study(
        "fashion_scarce",
        "fashion_mnist_small",
        ("data.limit=2000", "train.epochs=30"),
        8,
        1,
        5,
        own_space=False,
    ),
    # The reference budget with batches of 32 (the screen's fashion_batch): 15 verdict seeds,
    # the number the 5-seed verdict asked for.
    Study(
        "fashion_b32",
        "fashion_mnist_small",
        ("train.batch_size=32",),
        8,
        1,
        15,
        own_space=False,
    ),
    # The reference rows trained until light alone has flattened (the screen's fashion_budget).
    Study(
        "fashion_converged",
        "fashion_mnist_small",
        ("train.epochs=20",),
        6,
        1,
        5,
        own_space=False,
    ),
)
QUICK = (Study("digits", "quickstart", ("train.epochs=1",), 2, 1, 2),)


def run(quick: bool, only: tuple[str, ...] = ()) -> dict[str, Any]:
    from rich.console import Console

    from rocketc.compiler import compile_file
    from rocketc.experiments.tune import TuneOptions, tune

    studies = []
    for study in QUICK if quick else FULL:
        if only and study.key not in only:  # `python -m bench tune:movielens`
            continue
        spec = ROOT / "specs" / f"{study.spec}.yaml"
        space = ROOT / "bench" / "tune_spaces" / f"{study.spec}.yaml"
        options = TuneOptions(
            trials=study.trials,
            seeds=study.seeds,
            verdict_seeds=study.verdict_seeds,
            space=space if study.own_space and space.is_file() else None,
            overrides=list(study.sets),
        )
        with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
            out = Path(tmp)
            if study.keep and not quick:  # best.yaml and the report stay with the results
                out = RESULTS / study.keep
                shutil.rmtree(out, ignore_errors=True)  # a fresh study, never a resumed one
            compiled = compile_file(spec, list(study.sets))
            tune(compiled, out, options, Console(stderr=True))
            studies.append(
                {
                    "key": study.key,
                    **summarise(out),
                    "space": _relative(options.space),
                    "sets": list(study.sets),
                }
            )
    return {"studies": studies}


def summarise(out: Path) -> dict[str, Any]:
    """The raw results of one finished study directory (`tune.json` and `trials.csv`)."""
    with open(out / "trials.csv", encoding="utf-8") as f:
        trials = list(csv.DictReader(f))
    return {"tune": json.loads((out / "tune.json").read_text()), "trials": trials}


def _relative(path: Path | None) -> str | None:
    return None if path is None else str(path.relative_to(ROOT))


def _short(value: Any) -> str:
    """A CSV or JSON value for a table: numbers to 4 significant digits, the rest as written."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}" if number == number else str(value)


def _boosters(verdict: dict[str, Any]) -> list[str]:
    """The booster's test score per verdict seed ('-' in verdicts from before it was kept)."""
    scores = verdict.get("booster") or [None] * len(verdict["seeds"])
    return ["-" if b is None else f"{b:.4f}" for b in scores]


def _verdict_text(verdict: dict[str, Any]) -> str:
    """The verdict as `rocketc tune` words it today, from the stored per-seed scores."""
    from rocketc.experiments.tune.verdict import Verdict

    return Verdict.from_json(verdict).text


def _points(x: float) -> str:
    return f"{x * 100:+.2f}"


def render(results: dict[str, Any]) -> str:
    lines: list[str] = [results["note"], ""] if results.get("note") else []
    for study in results["studies"]:
        t = study["tune"]
        verdict = t.get("verdict") or {}
        lines += [
            f"### {study['key']}: `specs/{t['spec']}.yaml`"
            + "".join(f" `--set {x}`" for x in study.get("sets", []))
            + f", {t['epochs']} epochs per run",
            "",
            *stamp_line(study),
            f"Study: {t['trials'].get('complete', 0)} complete and {t['trials'].get('pruned', 0)} "
            f"pruned trials, {len(t['seeds'])} seed(s) each; objective: validation "
            f"{t['metric']} at the best epoch. Search space: "
            + (f"`{study['space']}`." if study.get("space") else "rocketc's default."),
            f"Light alone on validation: {t['light_alone']['mean']:.4f}.",
            "",
        ]
        if verdict:
            low, high = verdict["ci95"]
            lines += [
                f"**Verdict on the test split** ({len(verdict['seeds'])} paired seeds the search "
                f"never used): {_verdict_text(verdict)}",
                "",
                "| seed | light alone | best recipe | difference | its booster |",
                "|---:|---:|---:|---:|---:|",
                *(
                    f"| {s} | {a:.4f} | {r:.4f} | {_points(r - a)} | {b} |"
                    for s, a, r, b in zip(
                        verdict["seeds"],
                        verdict["alone"],
                        verdict["rocket"],
                        _boosters(verdict),
                        strict=True,
                    )
                ),
                "",
                f"Mean paired difference {_points(verdict['mean_diff'])} points, 95% t-interval "
                f"[{_points(low)}, {_points(high)}].",
                "",
            ]
        lines += ["| trial | state | validation | recipe |", "|---:|---|---:|---|"]
        for row in study["trials"]:
            recipe = " ".join(
                f"{k.removeprefix('loss.')}={_short(v)}"
                for k, v in row.items()
                if k.startswith("loss.") and v not in ("", None)
            )
            lines.append(f"| {row['trial']} | {row['state']} | {_short(row['value'])} | {recipe} |")
        best = t.get("best")
        if best:
            recipe = ", ".join(f"`{k}: {_short(v)}`" for k, v in sorted(best["recipe"].items()))
            lines += ["", f"Best recipe (trial {best['trial']}): {recipe}.", ""]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 8: the tuned light net beats light alone on Fashion-MNIST by >= 1 point (test), and
    is nowhere worse than light alone beyond its interval (no study's interval wholly below 0)."""
    target = "tuned rocket ≥ light alone + 1 point on Fashion-MNIST (test, paired seeds)"
    out = [{"target": target, "measured": "no Fashion-MNIST study in this run", "met": None}]
    # The same bar with batches of 32, and where light alone has stopped learning (the
    # reference rows for 20 epochs).
    variants = {
        "fashion_b32": f"{target[:-1]}, 4 epochs with batches of 32)",
        "fashion_converged": f"{target[:-1]}, 20 epochs on the same rows)",
    }
    judged = []
    for study in results["studies"]:
        verdict = study["tune"].get("verdict")
        if not verdict:
            continue
        low, high = verdict["ci95"]
        judged.append((study["key"], verdict["mean_diff"], high))
        measured = (
            f"{_points(verdict['mean_diff'])} points [{_points(low)}, {_points(high)}] over "
            f"{len(verdict['seeds'])} seeds"
        )
        if study["key"] == "fashion_mnist":
            out[0] = {"target": target, "measured": measured, "met": verdict["mean_diff"] >= 0.01}
        elif study["key"] in variants:
            out.append(
                {
                    "target": variants[study["key"]],
                    "measured": measured,
                    "met": verdict["mean_diff"] >= 0.01,
                }
            )
    if judged:
        measured = ", ".join(
            f"{key} {_points(mean)} (upper {_points(high)})" for key, mean, high in judged
        )
        out.append(
            {
                "target": "tuned rocket nowhere worse than light alone beyond its interval",
                "measured": measured,
                "met": all(high >= 0 for _, _, high in judged),
            }
        )
    return out
