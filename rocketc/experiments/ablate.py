"""`rocketc ablate`: the paper's ablation (Tables 1-3) on the user's own spec and data.

Each variant (`variants.py`) is a real change to the compiled model, not a flag: single-net
variants train only that net's parameters, "no gradient block" recompiles with
`gradient_block: none` (the hint then reaches booster weights), "no sharing" rewrites the spec so
each net owns a copy of the shared layers (more trained parameters, no shared gradient). Every
row records the spec keys it set, any `--set` of the user's it replaced, what it trained (the
parameter count) and whether the hint's gradient reaches a booster-only weight, measured.
`--recipe FILE` adds a `tuned` row: the loss section of another spec, e.g. `rocketc tune`'s
best.yaml.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from rocketc.compiler import Compiled
from rocketc.data import Dataset, load_data
from rocketc.data.metrics import headline
from rocketc.experiments.stats import paired_interval, verdict
from rocketc.experiments.variants import (
    VARIANTS,
    Variant,
    overridden_sets,
    tuned_variant,
    variant_compiled,
)
from rocketc.files import write_atomic
from rocketc.train.batches import train_loader
from rocketc.train.generated import Generated, load_generated
from rocketc.train.recipe import Part, Recipe, whole
from rocketc.train.tracking import NONE, Tracker, open_tracker

__all__ = [
    "VARIANTS",
    "Variant",
    "ablate",
    "booster_only",
    "light_only",
    "run_variant",
    "selected_epochs",
    "serving_cost",
    "student_of",
    "train_part",
    "variant_compiled",
    "warm_up",
]


class _Pair(torch.nn.Module):
    """Adapts one or two nets to the (light_logits, booster_logits) contract of `fit`.

    With one net, both slots carry its logits; the variant's loss only reads the light slot.
    A frozen teacher runs in eval mode without gradients (the `kd` row's student phase).
    """

    def __init__(
        self,
        light: torch.nn.Module | None,
        booster: torch.nn.Module | None,
        frozen_teacher: bool = False,
    ):
        super().__init__()
        self.light_part, self.booster_part = light, booster
        self.frozen_teacher = frozen_teacher

    def forward(self, *inputs):
        light = self.light_part(*inputs) if self.light_part is not None else None
        if self.frozen_teacher:
            with torch.no_grad():
                booster = self.booster_part.eval()(*inputs)
        else:
            booster = self.booster_part(*inputs) if self.booster_part is not None else None
        return (light if light is not None else booster), (
            booster if booster is not None else light
        )


def light_only(model: torch.nn.Module) -> Part:
    light = model.light_net()
    return Part(_Pair(light, None), {"light": light})


def booster_only(model: torch.nn.Module) -> Part:
    booster = model.booster_net()
    return Part(_Pair(None, booster), {"booster": booster}, select="booster")


def student_of(teacher: torch.nn.Module):
    """A fresh light net beside `teacher`, frozen: the `kd` row's second phase."""

    def part(model: torch.nn.Module) -> Part:
        student = model.light_net()
        pair = _Pair(student, teacher, frozen_teacher=True)
        return Part(pair, {"light": student, "booster": teacher})

    return part


PARTS = {"light": light_only, "booster": booster_only, "both": whole}


def train_part(
    gen: Generated,
    data: Dataset,
    seed: int,
    part,
    label: str,
    console,
    tracker: Tracker = NONE,
) -> Recipe:
    """One run as `rocketc train` makes it: best validation epoch, scored on test. With a
    `tracker` (a nested run of the experiment's), its epochs and result are logged there."""
    child = tracker.child(label, {"seed": seed})
    recipe = Recipe(gen, data, seed=seed, part=part, console=console, label=label, tracker=child)
    try:
        recipe.result = recipe.run()
    except BaseException:
        child.close(ok=False)
        raise
    child.close()
    return recipe


def hint_reaches_booster(gen: Generated) -> bool | None:
    """Measured: does the hint's gradient reach any booster-only parameter?"""
    if "hint" not in gen.model.LOSS_WEIGHTS:
        return None
    torch.manual_seed(0)
    model = gen.model.RocketNet()
    outputs = model(*gen.model.example_inputs(8))  # the logits, then any feature-hint features
    losses = gen.model.compute_loss(*outputs, gen.model.example_targets(8))
    losses["hint"].backward()
    roles = model.param_roles()
    return any(
        p.grad is not None and bool(p.grad.abs().sum() > 0)
        for name, p in model.named_parameters()
        if roles[name] == "booster"
    )


def run_variant(
    gens: dict[str, Generated],
    variant: Variant,
    data: Dataset,
    seed: int,
    console: Console | None = None,
    tracker: Tracker = NONE,
) -> dict[str, Any]:
    """Train one variant from scratch with `seed`; `gens` holds the compiled code per variant.

    Every net is scored on test at the epoch `train.select` picks on validation (the one
    `rocketc train` would ship), with the spec's eval batch: `Recipe`.
    """
    gen = gens[variant.name]
    counts = gen.compiled.param_counts()
    console = console or _QUIET
    label = f"{variant.name} seed {seed}"
    out: dict[str, Any] = {"seed": seed, "hint_reaches_booster": None}
    if variant.trains == "kd":
        first = train_part(
            gens["booster_alone"], data, seed, booster_only, f"{label} teacher", console, tracker
        )
        teacher = first.part.module.booster_part
        for p in teacher.parameters():
            p.requires_grad_(False)
        student = student_of(teacher)
        second = train_part(gen, data, seed, student, f"{label} student", console, tracker)
        out["seconds"] = first.result.seconds + second.result.seconds
        out["trained_params"] = counts["booster_net"] + counts["light_net"]
        out["epochs"] = {"booster": selected_epochs(first), "light": selected_epochs(second)}
        out.update(second.result.test)
        return out
    recipe = train_part(gen, data, seed, PARTS[variant.trains], label, console, tracker)
    out["seconds"] = recipe.result.seconds
    out["trained_params"] = counts[
        {"light": "light_net", "booster": "booster_net"}.get(variant.trains, "total")
    ]
    out["epochs"] = {recipe.part.select: selected_epochs(recipe)}
    if variant.trains == "both":
        out["hint_reaches_booster"] = hint_reaches_booster(gen)
    out.update(recipe.result.test)
    return out


def selected_epochs(recipe: Recipe) -> dict[str, int]:
    """Which epoch was scored, of how many trained."""
    summary = recipe.result.selection
    return {"selected": summary["selected_epoch"], "trained": summary["epochs_trained"]}


def serving_cost(gen: Generated, data: Dataset) -> dict[str, int]:
    """What the served light net costs: parameters and multiply-accumulates per example."""
    from rocketc.train.report import macs

    light = gen.model.RocketNet().light_net().eval()
    return {
        "params": sum(p.numel() for p in light.parameters()),
        "macs": macs(light, data.val.head(1)),
    }


def ablate(
    compiled: Compiled,
    seeds: int,
    epochs: int | None,
    out_dir: Path,
    variants: list[str] | None = None,
    console: Console | None = None,
    recipe: str | Path | None = None,
) -> dict[str, Any]:
    """Train every chosen variant (plus `tuned` from `recipe`) with `seeds` seeds; write
    ablation.json/md to `out_dir` and return what they hold."""
    console = console or Console(stderr=True)
    chosen = [v for v in VARIANTS if variants is None or v.name in variants]
    if recipe is not None:
        chosen.append(tuned_variant(recipe))
    if chosen and chosen[0].name != "light_alone" and any(v.trains != "booster" for v in chosen):
        chosen.insert(0, VARIANTS[0])  # the baseline every Δ is measured against
    data = load_data(compiled.spec, compiled.source)
    tracker = open_tracker(compiled, out_dir, "ablate")
    console.print(
        f"[bold]ablation of {compiled.spec.name}[/]: {data.description}; "
        f"{len(chosen)} variants x {seeds} seeds"
    )
    changes = {v.name: _changes(compiled, v) for v in chosen}
    for name, change in changes.items():
        _print_changes(console, name, change)
    base_seed = compiled.spec.train.seed
    # Each variant's code is compiled once and kept beside the results, for the record.
    needed = list(chosen)
    if any(v.trains == "kd" for v in chosen) and "booster_alone" not in changes:
        needed += [v for v in VARIANTS if v.name == "booster_alone"]  # the KD row's teacher
    gens = {
        v.name: load_generated(variant_compiled(compiled, v, epochs), out_dir / "code" / v.name)
        for v in needed
    }
    warm_up(gens[chosen[0].name], data)
    metric = headline(compiled.spec.task, data.test.group is not None)
    rows: list[dict[str, Any]] = []
    for variant in chosen:
        runs = []
        for k in range(seeds):
            run = run_variant(gens, variant, data, base_seed + k, console, tracker)
            runs.append(run)
            console.print(f"  {variant.name} seed {base_seed + k}: " + _brief(metric, run))
        baseline = rows[0]["runs"] if rows and rows[0]["variant"] == "light_alone" else runs
        row = {**_summarise(metric, variant, runs, baseline), **changes[variant.name]}
        if "light" in runs[0]:
            row["serving"] = serving_cost(gens[variant.name], data)
        rows.append(row)
    result = {
        "spec": compiled.spec.name,
        "task": compiled.spec.task,
        "seeds": seeds,
        "epochs": epochs or compiled.spec.train.epochs,
        "metric": metric,
        "variants": rows,
    }
    lead = headroom(rows, metric)
    if lead is not None:
        result["headroom"] = lead
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "ablation.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    write_atomic(out_dir / "ablation.md", render_markdown(result))
    tracker.files([out_dir / "ablation.md", out_dir / "ablation.json"])
    tracker.close()
    console.print(render_table(result))
    if lead is not None:
        console.print(headroom_words(lead), highlight=False)
    return result


def headroom(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The booster alone's lead over the light net alone, paired by seed: what rocket can pass
    on at most. None unless both rows ran."""
    by = {r["variant"]: r for r in rows}
    if "light_alone" not in by or "booster_alone" not in by:
        return None
    light = {r["seed"]: r["light"][metric] for r in by["light_alone"]["runs"]}
    pairs = [
        (r["booster"][metric], light[r["seed"]])
        for r in by["booster_alone"]["runs"]
        if r["seed"] in light
    ]
    if not pairs:
        return None
    mean, low, high = paired_interval([b - a for b, a in pairs])
    return {"mean": mean, "low": low, "high": high, "n": len(pairs), "verdict": verdict(low, high)}


def headroom_words(lead: dict[str, Any]) -> str:
    """One sentence on the headroom, for the console and ablation.md."""
    text = (
        f"Headroom: the booster alone minus the light net alone, same seeds: "
        f"{_points(lead['mean'])} points [{_points(lead['low'])}, {_points(lead['high'])}]"
    )
    if lead["n"] < 2:
        return text + " (one seed: no interval; run --seeds 3 for a verdict)."
    if lead["low"] > 0:
        return (
            text
            + ": the booster knows more than the light net learns alone; rocket can pass it on."
        )
    if lead["mean"] > 0:
        return (
            text + f": a lead its {lead['n']} seeds cannot tell from noise; more seeds decide "
            "whether there is anything for rocket to pass on."
        )
    return (
        text + ": the booster does not lead, so there is little for rocket to pass on; a "
        "stronger booster (or more data, or longer training) comes first."
    )


# What each kind of row trains, said where its `sets` are printed. A single-net row runs its
# one net in the light slot of the loss, so a booster row's label loss is `loss.light` there:
# its sets are printed under the booster's names.
TRAINS = {
    "light": "trains the light net alone (its shared and light layers), on the labels",
    "booster": "trains the booster net alone (its shared and booster layers), on the labels",
    "kd": "trains booster_alone's net first, then freezes it as the teacher of a fresh light net",
    "both": "trains both nets jointly",
}
_AS_BOOSTER = {"loss.light": "loss.booster", "loss.booster": "loss.light"}


def _changes(compiled: Compiled, variant: Variant) -> dict[str, Any]:
    """What a row fixes in the user's spec, and which of the user's --set values it replaced."""
    sets = variant.values(compiled.source.data)
    if variant.trains == "booster":
        sets = {_AS_BOOSTER.get(key, key): value for key, value in sets.items()}
        sets = {key: sets[key] for key in sorted(sets, key=list(_AS_BOOSTER.values()).count)}
    return {
        "trains": variant.trains,
        "sets": sets,
        "overrides": overridden_sets(compiled, variant),
    }


def _print_changes(console: Console, name: str, change: dict[str, Any]) -> None:
    sets = " ".join(f"{key}={value}" for key, value in change["sets"].items())
    what = TRAINS[change["trains"]]
    console.print(f"  {name} {what}; sets {sets}", highlight=False, soft_wrap=True)
    for origin in change["overrides"]:
        console.print(
            f"  [yellow]warning[/]: {name} replaces your {origin} (the row trains its own value)",
            highlight=False,
            soft_wrap=True,
        )


_QUIET = Console(quiet=True)


def warm_up(gen: Generated, data: Dataset) -> None:
    """One untimed step, so the first variant does not pay torch's one-off start-up costs."""
    model = gen.model.RocketNet()
    batch = next(iter(train_loader(data.train, gen.compiled.spec.train.batch_size)))
    *inputs, target = batch
    gen.model.compute_loss(*model(*inputs), target)["total"].backward()


def _brief(metric: str, run: dict[str, Any]) -> str:
    parts = [f"{net} {run[net][metric]:.4f}" for net in ("light", "booster") if net in run]
    epochs = ", ".join(
        f"{n} epoch {e['selected']}/{e['trained']}" for n, e in run["epochs"].items()
    )
    return ", ".join(parts) + f" ({epochs}; {run['seconds']:.1f}s)"


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _summarise(
    metric: str, variant: Variant, runs: list[dict[str, Any]], baseline: list[dict[str, Any]]
) -> dict:
    """A row: each net's test metric over the seeds, and the light net's paired difference to
    light-alone trained with the same seeds."""
    row: dict[str, Any] = {
        "variant": variant.name,
        "what": variant.what,
        "trains": variant.trains,
        "runs": runs,
        "trained_params": runs[0]["trained_params"],
        "hint_reaches_booster": runs[0]["hint_reaches_booster"],
        "seconds": _stats([r["seconds"] for r in runs]),
    }
    for net in ("light", "booster"):
        if net in runs[0]:
            row[net] = _stats([r[net][metric] for r in runs])
    light_epochs = [r["epochs"]["light"]["selected"] for r in runs if "light" in r["epochs"]]
    if light_epochs:
        row["light_epoch"] = statistics.median(light_epochs)
    alone = {r["seed"]: r["light"][metric] for r in baseline}
    paired = [r for r in runs if "light" in r and r["seed"] in alone]
    if variant.name != "light_alone" and paired:
        diffs = [r["light"][metric] - alone[r["seed"]] for r in paired]
        mean, low, high = paired_interval(diffs)
        row["vs_light_alone"] = {
            "mean": mean,
            "low": low,
            "high": high,
            "n": len(diffs),
            "verdict": verdict(low, high),
        }
    return row


def _points(x: float) -> str:
    return "±inf" if math.isinf(x) else f"{x * 100:+.2f}"


def _delta(row: dict[str, Any]) -> str:
    d = row.get("vs_light_alone")
    if d is None:
        return "-"
    return f"{_points(d['mean'])} [{_points(d['low'])}, {_points(d['high'])}]"


def _cell(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "-"
    spread = (stats["max"] - stats["min"]) / 2
    return f"{stats['mean']:.4f}±{spread:.3f}"


COLUMNS = (
    "light",
    "Δ vs light alone [95% CI]",
    "verdict",
    "booster",
    "epoch",
    "train s",
    "trained params",
    "served MACs",
    "hint→booster",
)


def _cells(row: dict[str, Any]) -> list[str]:
    reach = row["hint_reaches_booster"]
    serving = row.get("serving")
    epoch = row.get("light_epoch")
    return [
        _cell(row.get("light")),
        _delta(row),
        row.get("vs_light_alone", {}).get("verdict", "-"),
        _cell(row.get("booster")),
        "-" if epoch is None else f"{epoch:g}",
        f"{row['seconds']['median']:.1f}",
        f"{row['trained_params']:,}",
        f"{serving['macs']:,}" if serving else "-",
        "-" if reach is None else ("yes" if reach else "no"),
    ]


def _caption(result: dict[str, Any]) -> str:
    return (
        f"test {result['metric']}, mean ± half-range over {result['seeds']} seed(s); Δ: the "
        f"light net minus light-alone's for the same seed, in points (×100), 95% t-interval; "
        f"each net scored at its best validation epoch of {result['epochs']} (as `train` ships)"
    )


def render_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['spec']}: {_caption(result)}")
    table.add_column("variant", no_wrap=True)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "verdict" else "right")
    for row in result["variants"]:
        table.add_row(row["variant"], *_cells(row))
    return table


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Ablation: {result['spec']}",
        "",
        f"{_caption(result)[0].upper()}{_caption(result)[1:]}. A verdict needs the interval to "
        "exclude 0. The light net served is the same architecture in every row (served params: "
        f"{_served_params(result)}); `epoch` is the median selected epoch of the light net; "
        "`hint→booster` is measured with autograd on the compiled model.",
        "",
        "| variant | what | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "|".join("---" if c == "verdict" else "---:" for c in COLUMNS) + "|",
    ]
    for row in result["variants"]:
        lines.append("| " + " | ".join([row["variant"], row["what"], *_cells(row)]) + " |")
    if result.get("headroom"):
        lines += ["", headroom_words(result["headroom"])]
    lines += ["", "## What each row trains and sets in the spec", ""]
    for row in result["variants"]:
        sets = ", ".join(f"`{key}={value}`" for key, value in row["sets"].items())
        lines.append(f"- `{row['variant']}` {TRAINS[row['trains']]}; sets {sets}")
        lines += [f"  - **replaces your `{origin}`**" for origin in row["overrides"]]
    return "\n".join(lines) + "\n"


def _served_params(result: dict[str, Any]) -> str:
    counts = {row["serving"]["params"] for row in result["variants"] if row.get("serving")}
    return ", ".join(f"{c:,}" for c in sorted(counts)) or "-"
