"""What `rocketc tune` leaves in its directory: trials.csv, report.md, plots, tune.json, and
best.yaml (written by best.py: what the verdict says to train)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import optuna

from rocketc.experiments.tune.best import light_alone_verdict, write_best
from rocketc.experiments.tune.space import UNSET
from rocketc.experiments.tune.study import (
    State,
    StudyRun,
    TuneResult,
    brief,
    counts,
    plural,
    recipe_of,
    short,
    states,
)
from rocketc.files import figure_bytes, write_atomic


def write_all(tuner: StudyRun, result: TuneResult) -> list[Path]:
    out = result.out_dir
    files = [_write_trials_csv(tuner, result, out / "trials.csv")]
    files += write_best(tuner, result)
    plots = _plots(tuner, result)
    files += plots
    files.append(out / "report.md")
    write_atomic(out / "report.md", _report_md(tuner, result, plots))
    files.append(out / "tune.json")
    write_atomic(
        out / "tune.json", json.dumps(_summary(tuner, result), indent=2, sort_keys=True) + "\n"
    )
    return files


# --- trials.csv ----------------------------------------------------------------------------
def _write_trials_csv(tuner: StudyRun, result: TuneResult, path: Path) -> Path:

    trials = result.study.get_trials(deepcopy=False)
    order = [d.path for d in tuner.space]
    paths = list(dict.fromkeys(order + [p for t in trials for p in t.user_attrs.get("recipe", {})]))
    seeds = list(dict.fromkeys(s for t in trials for s in t.user_attrs.get("seeds", [])))
    columns = ["trial", "state", "value", *paths, *(f"seed_{s}" for s in seeds)]
    columns += ["best_epochs", "seconds", "note"]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    for t in trials:
        recipe = recipe_of(t)
        per_seed = dict(
            zip(t.user_attrs.get("seeds", []), t.user_attrs.get("values", []), strict=True)
        )
        note = t.user_attrs.get("error") or t.user_attrs.get("pruned_at") or ""
        writer.writerow(
            [t.number, t.state.name.lower(), _num(t.value)]
            + [_cell(recipe.get(p)) for p in paths]
            + [_num(per_seed.get(s)) for s in seeds]
            + [" ".join(str(e) for e in t.user_attrs.get("best_epochs", []))]
            + [f"{t.duration.total_seconds():.1f}" if t.duration else ""]
            + [" ".join(note.split())]
        )
    write_atomic(path, text.getvalue())
    return path


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))  # lossless: the CSV is the record


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is UNSET:
        return "unset"
    return _num(value) if isinstance(value, float) else str(value)


# --- plots ---------------------------------------------------------------------------------
def _plots(tuner: StudyRun, result: TuneResult) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rocketc.experiments.tune.space import spec_value

    files = []
    complete = result.study.get_trials(deepcopy=False, states=(State.COMPLETE,))
    if complete:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        default = spec_value(tuner.spec, "loss.hint.weight") or 0.0
        by_block: dict[str, list[tuple[float, float]]] = {}
        for t in complete:
            recipe = recipe_of(t)
            x = recipe.get("loss.hint.weight", default)
            block = str(recipe.get("loss.gradient_block", tuner.spec.loss.gradient_block))
            by_block.setdefault(block, []).append((x, t.value))
        for block, points in sorted(by_block.items()):
            ax.scatter(*zip(*points, strict=True), label=f"gradient_block: {block}", alpha=0.8)
        if result.best is not None:
            x = recipe_of(result.best).get("loss.hint.weight", default)
            ax.scatter([x], [result.best.value], marker="*", s=250, c="gold", ec="k", zorder=3)
        ax.axhline(result.baseline["mean"], ls="--", c="grey", label="light alone")
        ax.set_xscale("symlog", linthresh=0.01)
        highs = [d.high for d in tuner.space if d.path == "loss.hint.weight" and d.high]
        xs = [x for points in by_block.values() for x, _ in points]
        ax.set_xlim(-0.004, 1.3 * max(highs + xs + [0.01]))  # 0 (no hint) stays in view
        ax.set(
            xlabel="hint weight λ (0 = no hint)",
            ylabel=f"validation {result.metric} (mean over seeds)",
            title=f"{tuner.spec.name}: objective vs hint weight ({len(complete)} complete trials)",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
        files.append(result.out_dir / "objective_vs_hint.png")
        write_atomic(files[-1], figure_bytes(fig, dpi=110))
        plt.close(fig)
    importances = param_importances(result.study)
    if importances:
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(importances) + 1.2))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set(xlabel="importance (fANOVA, normalised)", title="parameter importances")
        fig.tight_layout()
        files.append(result.out_dir / "importances.png")
        write_atomic(files[-1], figure_bytes(fig, dpi=110))
        plt.close(fig)
    return files


def param_importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances once two complete trials vary some parameter; else empty."""

    complete = study.get_trials(deepcopy=False, states=(State.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):  # no parameter common to all trials, or none varies
        return {}


# --- report.md and tune.json ---------------------------------------------------------------
def _report_md(tuner: StudyRun, result: TuneResult, plots: list[Path]) -> str:

    metric, base = result.metric, result.baseline
    lines = [
        f"# rocketc tune: {tuner.spec.name}",
        "",
        f"Study `{tuner.study_name}` in `{result.storage}`: {states(result.study)}. "
        f"Objective: the light net's validation {metric} at its best epoch, mean over seeds "
        f"{tuner.seeds}, {plural(tuner.epochs, 'epoch')} per run; median pruning per epoch.",
        "",
        f"Light alone (labels only, same seeds): validation {metric} {base['mean']:.4f} "
        f"(per seed {', '.join(f'{v:.4f}' for v in base['values'])}).",
        "",
        "## Verdict on the test split",
        "",
    ]
    verdict = result.verdict
    if verdict is None:
        why = "no trial completed." if result.best is None else "--verdict-seeds 0."
        lines.append(f"No verdict: {why}")
    else:
        lines += [f"**{verdict.text}**", ""]
        lines += [
            "| seed | light alone | best recipe | difference | its booster "
            "| best epochs (alone / recipe) |",
            "|---:|---:|---:|---:|---:|---|",
        ]
        for i, seed in enumerate(verdict.seeds):
            booster = f"{verdict.booster[i]:.4f}" if verdict.booster else "-"  # older verdicts
            lines.append(
                f"| {seed} | {verdict.alone[i]:.4f} | {verdict.rocket[i]:.4f} | "
                f"{verdict.diffs[i]:+.4f} | {booster} | {verdict.alone_epochs[i]} / "
                f"{verdict.rocket_epochs[i]} |"
            )
        mean, low, high = verdict.interval
        lines += [
            "",
            f"Mean paired difference {mean:+.4f}, 95% t-interval [{low:+.4f}, {high:+.4f}].",
        ]
        if light_alone_verdict(result):
            lines += [
                "",
                "`best.yaml` trains the light net alone on its labels, as the verdict says; the "
                "searched recipe below is in `best_recipe.yaml`.",
            ]
    budget = result.budget
    if budget is not None and budget.short:
        lines += ["", f"**Warning: {budget.text}**"]
    if result.best is not None:
        best = result.best
        lines += [
            "",
            f"## Best recipe: trial {best.number}",
            "",
            f"Validation {metric} {best.value:.4f} ({best.value - base['mean']:+.4f} against "
            f"light alone); per seed "
            f"{', '.join(f'{v:.4f}' for v in best.user_attrs.get('values', []))}; best epochs "
            f"{best.user_attrs.get('best_epochs')}. Written to `best_recipe.yaml`"
            f"{'' if light_alone_verdict(result) else ' and `best.yaml`'}.",
            "",
            "| setting | value |",
            "|---|---|",
        ]
        lines += [f"| `{p}` | {short(v)} |" for p, v in recipe_of(best).items()]
    lines += ["", "## Search space", "", "| path | searched |", "|---|---|"]
    lines += [f"| `{d.path}` | {d.describe()} |" for d in tuner.space]
    complete = sorted(
        result.study.get_trials(deepcopy=False, states=(State.COMPLETE,)),
        key=lambda t: (-t.value, t.number),
    )
    lines += ["", f"## Trials (top {min(10, len(complete))} of {len(complete)} complete)", ""]
    lines += [f"| trial | validation {metric} | recipe |", "|---:|---:|---|"]
    lines += [f"| {t.number} | {t.value:.4f} | {brief(recipe_of(t))} |" for t in complete[:10]]
    lines += ["", "Every trial, with its per-seed values: `trials.csv`.", ""]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.name})", ""]
    importances = param_importances(result.study)
    if importances:
        lines += ["| parameter | importance |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in importances.items()]
        lines.append("")
    return "\n".join(lines)


def _summary(tuner: StudyRun, result: TuneResult) -> dict[str, Any]:

    best = result.best
    return {
        "spec": tuner.spec.name,
        "study": tuner.study_name,
        "storage": result.storage,
        "metric": result.metric,
        "epochs": tuner.epochs,
        "seeds": tuner.seeds,
        "trials": counts(result.study),
        "light_alone": result.baseline,
        "best": None
        if best is None
        else {
            "trial": best.number,
            "value": best.value,
            "recipe": {k: _json(v) for k, v in recipe_of(best).items()},
            "values": best.user_attrs.get("values"),
            "best_epochs": best.user_attrs.get("best_epochs"),
        },
        "verdict": None if result.verdict is None else _finite(result.verdict.to_json()),
        "budget": None if result.budget is None else result.budget.to_json(),
    }


def _json(value: Any) -> Any:
    return None if value is UNSET else value


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
