"""`rocketc shrink`: how much cheaper can the served light net be at unchanged quality?

From the spec, `rocketc.compiler.sizes` derives light nets of decreasing serving cost; each is
written out as an ordinary spec and trained, with the same paired seeds, as the light net alone,
with KD from the booster (trained once per seed, frozen) and with rocket (the spec's loss, or
`--recipe`'s). The answer (`answer.py`) compares each with the full-size light net trained
alone. Every finished training is stored as it ends (`store.py`): a killed shrink continues
where it stopped. The output directory is held with the run directory's lock for the whole run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from rocketc.compiler import Compiled
from rocketc.compiler.sizes import Size
from rocketc.data import load_data
from rocketc.data.metrics import headline
from rocketc.experiments.ablate import warm_up
from rocketc.experiments.shrink.answer import summarise
from rocketc.experiments.shrink.arms import ARMS, arms_of, booster_arm, train_arm, train_booster
from rocketc.experiments.shrink.report import (
    frontier_png,
    render_markdown,
    render_table,
    spec_text,
)
from rocketc.experiments.shrink.store import Store, fingerprint
from rocketc.experiments.variants import Variant
from rocketc.files import write_atomic
from rocketc.train.cost import serving_cost
from rocketc.train.report import macs
from rocketc.train.rundir import locked
from rocketc.train.tracking import open_tracker


@dataclass
class ShrinkOptions:
    seeds: int = 3
    epochs: int | None = None
    tolerance: float = 0.1  # points of the metric (×100)
    recipe: Variant | None = None
    recipe_file: str | None = None
    overrides: list[str] = field(default_factory=list)


def file_name(size: Size) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", size.name.replace(".", "_"))


def shrink(
    compiled: Compiled,
    sizes: list[Size],
    out_dir: Path,
    options: ShrinkOptions,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    with locked(out_dir):
        return _shrink(compiled, sizes, out_dir, options, console)


def _shrink(
    compiled: Compiled, sizes: list[Size], out_dir: Path, options: ShrinkOptions, console
) -> dict[str, Any]:
    data = load_data(compiled.spec, compiled.source)
    tracker = open_tracker(compiled, out_dir, "shrink")
    metric = headline(compiled.spec.task, data.test.group is not None)
    base_seed = compiled.spec.train.seed
    seeds = [base_seed + k for k in range(options.seeds)]
    store = Store(out_dir)
    code = out_dir / "code"
    booster = booster_arm(sizes[0], options.epochs, code)
    arms = {s.name: arms_of(s, options.epochs, options.recipe, code) for s in sizes}
    _write_specs(compiled, sizes, arms, out_dir)
    total = len(seeds) * (1 + len(sizes) * len(ARMS))
    done = store.count()
    console.print(
        f"[bold]shrink of {compiled.spec.name}[/]: {data.description}; {len(sizes)} sizes x "
        f"{len(ARMS)} arms x {len(seeds)} seeds + the booster per seed = {total} trainings"
        + (f" ({done} stored, not trained again)" if done else "")
    )
    cost = _costs(sizes, arms, data, out_dir, console)
    warm_up(booster.gen, data)

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {arm: [] for arm in ARMS} for s in sizes
    }
    boosters: list[dict[str, Any]] = []
    count = 0
    for seed in seeds:
        fp = fingerprint(booster.compiled, seed, booster.code)
        result, teacher = store.get(f"booster.seed{seed}", fp), store.teacher(seed, fp)
        count += 1
        if result is None or teacher is None:
            result, teacher = train_booster(booster, data, seed, console, tracker)
            store.put_teacher(seed, fp, teacher)
            store.put(f"booster.seed{seed}", fp, result)
            _said(console, count, total, f"booster seed {seed}", result, metric, "booster")
        boosters.append(result)
        for size in sizes:
            for arm_name in ARMS:
                arm = arms[size.name][arm_name]
                key = f"{arm.key}.seed{seed}"
                afp = fingerprint(arm.compiled, seed, arm.code) + fp  # KD: also its teacher
                count += 1
                result = store.get(key, afp)
                if result is None:
                    result = train_arm(arm, data, seed, console, teacher, booster.gen, tracker)
                    store.put(key, afp, result)
                    _said(console, count, total, key, result, metric, "light")
                runs[size.name][arm_name].append(result)

    summary = summarise(cost, runs, boosters, metric, options.tolerance)
    result = {
        "spec": compiled.spec.name,
        "file": compiled.file,
        "task": compiled.spec.task,
        "epochs": options.epochs or compiled.spec.train.epochs,
        "recipe": options.recipe_file,
        "overrides": options.overrides,
        **summary,
    }
    write_atomic(out_dir / "shrink.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    frontier_png(result, out_dir / "frontier.png")
    write_atomic(out_dir / "shrink.md", render_markdown(result))
    chosen = next(s for s in sizes if s.name == result["chosen"])
    write_atomic(out_dir / "shrunk.yaml", _shrunk_text(compiled, chosen, arms, result, out_dir))
    tracker.text("answer", "\n".join(result["answer"]))
    tracker.files(
        [out_dir / n for n in ("shrink.md", "shrink.json", "frontier.png", "shrunk.yaml")]
    )
    tracker.close()
    console.print(render_table(result))
    return result


def _said(console, count: int, total: int, what: str, result, metric: str, net: str) -> None:
    epochs = result["epochs"][net]
    console.print(
        f"  [{count}/{total}] {what}: {net} {result[net][metric]:.4f} "
        f"(epoch {epochs['selected']}/{epochs['trained']}; {result['seconds']:.1f}s)",
        highlight=False,
    )


def _costs(sizes, arms, data, out_dir: Path, console) -> list[dict[str, Any]]:
    """Each size's serving cost, measured once (kept in costs.json for a resumed shrink)."""
    path = out_dir / "costs.json"
    keys = {s.name: fingerprint(s.compiled, 0, arms[s.name]["rocket"].code) for s in sizes}
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        kept = {}
    out = []
    for s in sizes:
        entry = kept.get(s.name)
        if not isinstance(entry, dict) or entry.get("fingerprint") != keys[s.name]:
            gen = arms[s.name]["rocket"].gen
            model = gen.model.RocketNet()
            measured = serving_cost(model.light_net(), data.val)
            entry = {"fingerprint": keys[s.name], **measured}
            entry["booster_macs"] = macs(model.booster_net().eval(), data.val.head(1))
            kept[s.name] = entry
            write_atomic(path, json.dumps(kept, indent=2, sort_keys=True) + "\n")
            console.print(
                f"  {s.name}: {measured['macs']:,} MACs, {measured['params']:,} params, "
                f"{measured['latency_ms']['batch_100']:.3f} ms at 100 candidates",
                highlight=False,
            )
        out.append(
            {
                "name": s.name,
                "how": s.how,
                "factor": s.factor,
                "macs": entry["macs"],
                "params": entry["params"],
                "latency_ms": entry["latency_ms"],
                "booster_macs": entry["booster_macs"],
                "spec": f"specs/{file_name(s)}.yaml",
            }
        )
    return out


def _write_specs(compiled: Compiled, sizes, arms, out_dir: Path) -> None:
    """Each size as an ordinary spec with the rocket arm's loss: what `rocketc train` takes."""
    (out_dir / "specs").mkdir(parents=True, exist_ok=True)
    for s in sizes:
        data = dict(arms[s.name]["rocket"].compiled.source.data)
        data["name"] = f"{compiled.spec.name}_{file_name(s)}"
        header = [
            f"{file_name(s)}.yaml: {compiled.spec.name}'s light net, {s.how}, derived by "
            f"rocketc shrink from {compiled.file}; {s.macs:,} MACs per example served.",
        ]
        write_atomic(out_dir / "specs" / f"{file_name(s)}.yaml", spec_text(data, header))


def _shrunk_text(compiled: Compiled, size: Size, arms, result, out_dir: Path) -> str:
    data = dict(arms[size.name]["rocket"].compiled.source.data)
    data["name"] = f"{compiled.spec.name}_shrunk"
    header = [
        f"shrunk.yaml: {compiled.spec.name}'s light net at {size.name} ({size.how}), chosen by "
        f"rocketc shrink from {compiled.file}.",
        "",
        *result["answer"],
        "",
        f"Evidence: {out_dir / 'shrink.md'} ({result['seeds']} seed(s), "
        f"{result['epochs']} epochs, test {result['metric']}).",
        f"Train: rocketc train {out_dir / 'shrunk.yaml'}",
    ]
    return spec_text(data, header)
