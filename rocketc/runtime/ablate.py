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
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from rocketc.backends.codegen import sample_weighted
from rocketc.compiler import Compiled
from rocketc.runtime.data import Dataset, load_data
from rocketc.runtime.generated import Generated, load_generated
from rocketc.runtime.metrics import evaluate, headline
from rocketc.runtime.train import eval_loader, train_loader
from rocketc.runtime.variants import (
    VARIANTS,
    Variant,
    overridden_sets,
    tuned_variant,
    variant_compiled,
)

__all__ = ["VARIANTS", "Variant", "ablate", "run_variant", "variant_compiled"]


class _Pair(torch.nn.Module):
    """Adapts one or two nets to the (light_logits, booster_logits) contract of `fit`.

    With one net, both slots carry its logits; the variant's loss only reads the light slot.
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


def _train(gen: Generated, module: torch.nn.Module, data: Dataset, seed: int) -> float:
    settings = gen.train.Settings(seed=seed)
    shuffle = torch.Generator().manual_seed(seed)
    loader = train_loader(
        data.train, settings.batch_size, shuffle, sample_weighted(gen.compiled.spec)
    )
    start = time.perf_counter()
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = gen.train.build_optimizer(torch.nn.ParameterList(params), settings)
    gen.train.fit(module, loader, settings, optimizer=optimizer)
    return time.perf_counter() - start


def _evaluate(task: str, gen: Generated, net: torch.nn.Module, data: Dataset) -> dict[str, float]:
    """Test metrics of `net`, run where `fit` left it (the spec's device)."""
    device = next(net.parameters()).device
    logits = gen.train.predict(net, eval_loader(data.test, 1024), device).numpy()
    return evaluate(task, logits, data.test.target, data.test.group, data.test.weight)


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
    gens: dict[str, Generated], variant: Variant, data: Dataset, seed: int
) -> dict[str, Any]:
    """Train one variant from scratch with `seed`; `gens` holds the compiled code per variant."""
    gen = gens[variant.name]
    task = gen.compiled.spec.task
    counts = gen.compiled.param_counts()
    torch.manual_seed(seed)
    model = gen.model.RocketNet()
    out: dict[str, Any] = {"seed": seed, "hint_reaches_booster": None}
    if variant.trains == "light":
        out["seconds"] = _train(gen, _Pair(model.light_net(), None), data, seed)
        out["trained_params"] = counts["light_net"]
    elif variant.trains == "booster":
        out["seconds"] = _train(gen, _Pair(None, model.booster_net()), data, seed)
        out["trained_params"] = counts["booster_net"]
    elif variant.trains == "kd":
        teacher = model.booster_net()
        seconds = _train(gens["booster_alone"], _Pair(None, teacher), data, seed)
        for p in teacher.parameters():
            p.requires_grad_(False)
        student = gen.model.RocketNet().light_net()  # fresh: shares nothing with the teacher
        seconds += _train(gen, _Pair(student, teacher, frozen_teacher=True), data, seed)
        out["seconds"] = seconds
        out["trained_params"] = counts["booster_net"] + counts["light_net"]
        out["light"] = _evaluate(task, gen, student, data)
        out["booster"] = _evaluate(task, gen, teacher, data)
        return out
    else:
        out["seconds"] = _train(gen, model, data, seed)
        out["trained_params"] = counts["total"]
        out["hint_reaches_booster"] = hint_reaches_booster(gen)
    if variant.trains in ("light", "both"):
        out["light"] = _evaluate(task, gen, model.light_net(), data)
    if variant.trains in ("booster", "both"):
        out["booster"] = _evaluate(task, gen, model.booster_net(), data)
    return out


def _serving_cost(gen: Generated, data: Dataset) -> dict[str, int]:
    """What the served light net costs: parameters and multiply-accumulates per example."""
    from rocketc.runtime.report import macs

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
    data = load_data(compiled.spec)
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
    _warm_up(gens[chosen[0].name], data)
    metric = headline(compiled.spec.task, data.test.group is not None)
    rows = []
    for variant in chosen:
        runs = []
        for k in range(seeds):
            run = run_variant(gens, variant, data, base_seed + k)
            runs.append(run)
            console.print(f"  {variant.name} seed {base_seed + k}: " + _brief(metric, run))
        row = {**_summarise(metric, variant, runs), **changes[variant.name]}
        if "light" in runs[0]:
            row["serving"] = _serving_cost(gens[variant.name], data)
        rows.append(row)
    result = {
        "spec": compiled.spec.name,
        "task": compiled.spec.task,
        "seeds": seeds,
        "epochs": epochs or compiled.spec.train.epochs,
        "metric": metric,
        "variants": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ablation.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out_dir / "ablation.md").write_text(render_markdown(result))
    console.print(render_table(result))
    return result


def _changes(compiled: Compiled, variant: Variant) -> dict[str, Any]:
    """What a row fixes in the user's spec, and which of the user's --set values it replaced."""
    return {
        "sets": variant.values(compiled.source.data),
        "overrides": overridden_sets(compiled, variant),
    }


def _print_changes(console: Console, name: str, change: dict[str, Any]) -> None:
    sets = " ".join(f"{key}={value}" for key, value in change["sets"].items())
    console.print(f"  {name} sets {sets}", highlight=False, soft_wrap=True)
    for origin in change["overrides"]:
        console.print(
            f"  [yellow]warning[/]: {name} replaces your {origin} (the row trains its own value)",
            highlight=False,
            soft_wrap=True,
        )


def _warm_up(gen: Generated, data: Dataset) -> None:
    """One untimed step, so the first variant does not pay torch's one-off start-up costs."""
    model = gen.model.RocketNet()
    batch = next(iter(train_loader(data.train, gen.compiled.spec.train.batch_size)))
    *inputs, target = batch
    gen.model.compute_loss(*model(*inputs), target)["total"].backward()


def _brief(metric: str, run: dict[str, Any]) -> str:
    parts = [f"{net} {run[net][metric]:.4f}" for net in ("light", "booster") if net in run]
    return ", ".join(parts) + f" ({run['seconds']:.1f}s)"


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _summarise(metric: str, variant: Variant, runs: list[dict[str, Any]]) -> dict:
    row: dict[str, Any] = {
        "variant": variant.name,
        "what": variant.what,
        "runs": runs,
        "trained_params": runs[0]["trained_params"],
        "hint_reaches_booster": runs[0]["hint_reaches_booster"],
        "seconds": _stats([r["seconds"] for r in runs]),
    }
    for net in ("light", "booster"):
        if net in runs[0]:
            row[net] = _stats([r[net][metric] for r in runs])
    return row


def _cell(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "-"
    spread = (stats["max"] - stats["min"]) / 2
    return f"{stats['median']:.4f}±{spread:.3f}"


def _cells(row: dict[str, Any]) -> list[str]:
    """light, booster, train s, trained params, served params, served MACs, hint→booster."""
    reach = row["hint_reaches_booster"]
    serving = row.get("serving")
    return [
        _cell(row.get("light")),
        _cell(row.get("booster")),
        f"{row['seconds']['median']:.1f}",
        f"{row['trained_params']:,}",
        f"{serving['params']:,}" if serving else "-",
        f"{serving['macs']:,}" if serving else "-",
        "-" if reach is None else ("yes" if reach else "no"),
    ]


def render_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['spec']}: test {result['metric']}, median ± half-range over "
        f"{result['seeds']} seed(s), {result['epochs']} epochs"
    )
    for col in (
        "variant",
        "light",
        "booster",
        "train s",
        "trained params",
        "served params",
        "served MACs",
        "hint→booster",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    for row in result["variants"]:
        table.add_row(row["variant"], *_cells(row))
    return table


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Ablation: {result['spec']}",
        "",
        f"Test {result['metric']}, median ± half-range over {result['seeds']} seed(s), "
        f"{result['epochs']} epochs each. The light net served is the same architecture in "
        "every row; `hint→booster` is measured with autograd on the compiled model.",
        "",
        "| variant | what | light | booster | train s (median) | trained params "
        "| served params | served MACs | hint→booster |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["variants"]:
        lines.append("| " + " | ".join([row["variant"], row["what"], *_cells(row)]) + " |")
    lines += ["", "## What each row sets in the spec", ""]
    for row in result["variants"]:
        sets = ", ".join(f"`{key}={value}`" for key, value in row["sets"].items())
        lines.append(f"- `{row['variant']}`: {sets}")
        lines += [f"  - **replaces your `{origin}`**" for origin in row["overrides"]]
    return "\n".join(lines) + "\n"
