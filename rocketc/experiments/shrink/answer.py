"""The answer of a shrink, in plain words first: how much cheaper the served light net can be at
unchanged quality.

Every light net is compared with the full-size light net trained alone with the same seed (the
net the user serves today); "unchanged quality" is a 95% paired interval that lies wholly above
-tolerance (in the metric's points, ×100). Per arm (rocket, KD, light alone) the answer is the
cheapest size that holds it; a size also "reaches the booster" when its interval against the
booster alone (same seed) lies above -tolerance. With one seed there is no interval: sizes are
then judged on the mean and the words say so.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from rocketc.experiments.stats import paired_interval

ARM_WORDS = {"rocket": "rocket", "kd": "KD", "light_alone": "trained alone"}
_SENTENCE = {"rocket": "Rocket", "kd": "KD", "light_alone": "Trained alone"}


def _paired(runs: list[dict], base: dict[int, float], metric: str) -> dict[str, Any] | None:
    diffs = [r["light"][metric] - base[r["seed"]] for r in runs if r["seed"] in base]
    if not diffs:
        return None
    mean, low, high = paired_interval(diffs)
    return {"mean": mean, "low": low, "high": high, "n": len(diffs)}


def _holds(delta: dict[str, Any] | None, eps: float) -> bool:
    """Above -eps: wholly (an interval), or on the mean when one seed gives no interval."""
    if delta is None or math.isnan(delta["mean"]):
        return False
    if delta["n"] < 2:
        return delta["mean"] >= -eps
    return delta["low"] >= -eps


def summarise(
    sizes: list[dict[str, Any]],
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    booster: list[dict[str, Any]],
    metric: str,
    tolerance: float,
) -> dict[str, Any]:
    """`sizes`: name, how, macs, params, latency_ms (the full size first); `runs[size][arm]`:
    the arm's trainings, one per seed; `booster`: the booster alone's. Returns the table's rows
    and the answer."""
    eps = tolerance / 100
    full = sizes[0]["name"]
    alone = {r["seed"]: r["light"][metric] for r in runs[full]["light_alone"]}
    boost = {r["seed"]: r["booster"][metric] for r in booster}
    rows = []
    for size in sizes:
        for arm, arm_runs in runs[size["name"]].items():
            values = [r["light"][metric] for r in arm_runs]
            vs_full = _paired(arm_runs, alone, metric)
            if size["name"] == full and arm == "light_alone":
                vs_full = {"mean": 0.0, "low": 0.0, "high": 0.0, "n": len(values)}
            vs_booster = _paired(arm_runs, boost, metric)
            epochs = [r["epochs"]["light"]["selected"] for r in arm_runs]
            rows.append(
                {
                    "size": size["name"],
                    "arm": arm,
                    "mean": statistics.fmean(values),
                    "values": values,
                    "vs_full_alone": vs_full,
                    "vs_booster": vs_booster,
                    "holds": _holds(vs_full, eps),
                    "reaches_booster": _holds(vs_booster, eps),
                    "dead_seeds": [r["seed"] for r in arm_runs if _dead(r["light"], metric)],
                    "epoch": statistics.median(epochs),
                    "seconds": statistics.median(r["seconds"] for r in arm_runs),
                }
            )
    seeds = len(booster)
    by_size = {s["name"]: s for s in sizes}
    cuts = {arm: _cheapest(rows, by_size, arm, "holds") for arm in ARM_WORDS}
    near_booster = {arm: _cheapest(rows, by_size, arm, "reaches_booster") for arm in ARM_WORDS}
    booster_values = [r["booster"][metric] for r in booster]
    result = {
        "metric": metric,
        "tolerance_points": tolerance,
        "seeds": seeds,
        "sizes": sizes,
        "rows": rows,
        "booster": {
            "mean": statistics.fmean(booster_values),
            "values": booster_values,
            "macs": sizes[0].get("booster_macs"),
        },
        "cut": {arm: _cut(cuts[arm], by_size, sizes[0]) for arm in ARM_WORDS},
        "near_booster": {arm: near_booster[arm] for arm in ARM_WORDS},
        "chosen": cuts["rocket"] or full,
    }
    result["answer"] = words(result)
    return result


def _dead(scores: dict[str, float], metric: str) -> bool:
    """A net that gives every row one score: its AUC (and each group's) is exactly 0.5."""
    return metric in ("auc", "gauc") and abs(scores.get("auc", scores[metric]) - 0.5) < 1e-9


def _cheapest(rows, by_size, arm: str, flag: str) -> str | None:
    held = [r["size"] for r in rows if r["arm"] == arm and r[flag]]
    return min(held, key=lambda s: by_size[s]["macs"]) if held else None


def _cut(size: str | None, by_size, full: dict[str, Any]) -> dict[str, Any] | None:
    if size is None:
        return None
    s = by_size[size]
    lat_full = full["latency_ms"]["batch_100"]
    lat = s["latency_ms"]["batch_100"]
    return {
        "size": size,
        "macs_factor": full["macs"] / max(s["macs"], 1),
        "latency_factor": lat_full / lat if lat > 0 else None,
    }


def points(x: float) -> str:
    return "±inf" if math.isinf(x) else f"{x * 100:+.2f}"


def delta_text(d: dict[str, Any] | None) -> str:
    if d is None:
        return "-"
    if d["n"] < 2:
        return f"{points(d['mean'])} (one seed)"
    return f"{points(d['mean'])} [{points(d['low'])}, {points(d['high'])}]"


def _row(result, size: str, arm: str) -> dict[str, Any]:
    return next(r for r in result["rows"] if r["size"] == size and r["arm"] == arm)


def words(result: dict[str, Any]) -> list[str]:
    """The answer, first in plain words, then what backs it."""
    sizes = {s["name"]: s for s in result["sizes"]}
    full = result["sizes"][0]
    tol = result["tolerance_points"]
    seeds = result["seeds"]
    lines: list[str] = []
    rocket = result["cut"]["rocket"]
    basis = (
        f"{seeds} paired seeds, 95% interval above -{tol:g} point"
        if seeds > 1
        else f"ONE seed: no interval, judged on the mean (-{tol:g} point); run --seeds 3 for a "
        "verdict"
    )
    if rocket is not None and rocket["size"] != full["name"]:
        s = sizes[rocket["size"]]
        lat = rocket["latency_factor"]
        lat_text = f"; onnxruntime latency {lat:.1f}× at 100 candidates" if lat else ""
        lines.append(
            f"The light net can be {rocket['macs_factor']:.1f}× cheaper ({full['macs']:,} → "
            f"{s['macs']:,} MACs per example{lat_text}) at unchanged quality: rocket at "
            f"{s['name']} ({s['how']}) scores "
            f"{delta_text(_row(result, s['name'], 'rocket')['vs_full_alone'])} points against "
            f"the full-size light net trained alone ({basis})."
        )
        for arm in ("light_alone", "kd"):
            other = _row(result, s["name"], arm)
            lines.append(
                f"At that size, {ARM_WORDS[arm]}: {delta_text(other['vs_full_alone'])} points."
            )
    else:
        lines.append(
            "No smaller light net holds the full-size light net's quality with rocket "
            f"({basis}); the table shows what each size costs and scores."
        )
    for arm in ("kd", "light_alone"):
        cut = result["cut"][arm]
        if cut is None or cut["size"] == full["name"]:
            lines.append(f"{_SENTENCE[arm]}: no smaller size holds quality.")
        else:
            lines.append(
                f"{_SENTENCE[arm]}: down to {cut['size']} ({cut['macs_factor']:.1f}× fewer MACs)."
            )
    dead = [
        f"{r['size']} {ARM_WORDS[r['arm']]} (seed {', '.join(map(str, r['dead_seeds']))})"
        for r in result["rows"]
        if r.get("dead_seeds")
    ]
    if dead:
        lines.append(
            f"Dead nets, one constant score for every row ({result['metric']} 0.500): "
            + "; ".join(dead)
            + ". A size that trains dead on some seeds is too small to train reliably; its "
            "mean and interval carry that."
        )
    near = result["near_booster"]["rocket"]
    boost = result["booster"]["mean"]
    alone = _row(result, full["name"], "light_alone")["mean"]
    if boost <= alone:
        lines.append(
            f"The booster alone ({boost:.4f}) scores no better than the full-size light net "
            f"alone ({alone:.4f}): it has nothing to pass on here; a stronger or better "
            "regularised booster, or more data, comes first."
        )
    elif near is not None:
        lines.append(
            f"Within {tol:g} point of the booster alone ({boost:.4f}): rocket at {near} "
            f"({full['macs'] / max(sizes[near]['macs'], 1):.1f}× cheaper than today's light net)."
        )
    else:
        best = max((r for r in result["rows"] if r["arm"] == "rocket"), key=lambda r: r["mean"])
        lines.append(
            f"No size comes within {tol:g} point of the booster alone ({boost:.4f}); the best "
            f"rocket light net is {best['size']} ({best['mean']:.4f})."
        )
    return lines
