"""`rocketc ablate`: the paper's ablation (Tables 1-3) on the user's own spec and data.

Each variant is a real change to the compiled model, not a flag: single-net variants train only
that net's parameters, "no gradient block" recompiles with `gradient_block: none` (the hint then
reaches booster weights), "no sharing" rewrites the spec so each net owns a copy of the shared
layers (more trained parameters, no shared gradient). Every row records what it trained (the
parameter count) and whether the hint's gradient reaches a booster-only weight, measured.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from rocketc.compiler import Compiled, compile_source
from rocketc.compiler.load import Source
from rocketc.runtime.data import Dataset, load_data
from rocketc.runtime.generated import Generated, load_generated
from rocketc.runtime.metrics import evaluate, headline
from rocketc.runtime.train import batch_loader


@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    trains: str  # "light" | "booster" | "both" | "kd"
    edit: Callable[[dict[str, Any]], None]


def _loss(data: dict, **changes: Any) -> None:
    loss = data.setdefault("loss", {})
    for key, value in changes.items():
        if key in ("hint", "kd"):
            current = loss.get(key) if isinstance(loss.get(key), dict) else {}
            loss[key] = {**current, **value}
        else:
            loss[key] = value


def _hint_weight(data: dict) -> float:
    hint = (data.get("loss") or {}).get("hint") or {}
    return hint.get("weight", 1.0) or 1.0


def _kd_weight(data: dict) -> float:
    kd = (data.get("loss") or {}).get("kd") or {}
    return kd.get("weight", 0.0) or 1.0


def _unshare(data: dict) -> None:
    """Give each net its own copy of every shared layer (ids `<id>_light` / `<id>_booster`)."""
    layers = data["layers"]
    shared = {layer["id"] for layer in layers if layer.get("role") == "shared"}
    out = []
    for layer in layers:
        if layer.get("role") != "shared":
            ins = layer["in"] if isinstance(layer["in"], list) else [layer["in"]]
            suffix = "_light" if layer.get("role") == "light" else "_booster"
            layer = {**layer, "in": [f"{i}{suffix}" if i in shared else i for i in ins]}
            out.append(layer)
            continue
        for role in ("light", "booster"):
            ins = layer["in"] if isinstance(layer["in"], list) else [layer["in"]]
            out.append(
                {
                    **layer,
                    "id": f"{layer['id']}_{role}",
                    "role": role,
                    "in": [f"{i}_{role}" if i in shared else i for i in ins],
                }
            )
    data["layers"] = out


# The light net on its labels alone. Feature hints go too: they read both nets, and the
# single-net variants train one net through `_Pair`, which has no features to give.
_LABELS_ONLY = {
    "light": 1.0,
    "booster": 0.0,
    "hint": {"weight": 0.0},
    "kd": {"weight": 0.0},
    "feature_hints": [],
}

VARIANTS = (
    Variant(
        "light_alone",
        "light net, labels only",
        "light",
        lambda d: _loss(d, **_LABELS_ONLY),
    ),
    # Single-net variants compile the labels-only loss of the light slot and apply it to the
    # one net `_Pair` wraps (the spec validator rightly refuses a light net with no loss).
    Variant(
        "booster_alone",
        "booster net, labels only",
        "booster",
        lambda d: _loss(d, **_LABELS_ONLY),
    ),
    Variant(
        "kd",
        "booster first, then frozen teacher for a fresh light net",
        "kd",
        lambda d: _loss(d, **{**_LABELS_ONLY, "kd": {"weight": _kd_weight(d)}}),
    ),
    # The rocket rows use the paper's hint on logits; the last row swaps in probabilities.
    Variant(
        "rocket",
        "joint training, hint on logits, gradient block",
        "both",
        lambda d: _loss(
            d,
            hint={"weight": _hint_weight(d), "on": "logits"},
            kd={"weight": 0.0},
            gradient_block="booster",
        ),
    ),
    Variant(
        "rocket_no_block",
        "rocket without gradient block",
        "both",
        lambda d: _loss(
            d,
            hint={"weight": _hint_weight(d), "on": "logits"},
            kd={"weight": 0.0},
            gradient_block="none",
        ),
    ),
    Variant(
        "rocket_no_sharing",
        "rocket, each net its own bottom layers",
        "both",
        lambda d: (
            _unshare(d),
            _loss(
                d,
                hint={"weight": _hint_weight(d), "on": "logits"},
                kd={"weight": 0.0},
                gradient_block="booster",
            ),
        ),
    ),
    Variant(
        "rocket_kd",
        "rocket plus online KD from the booster",
        "both",
        lambda d: _loss(
            d,
            hint={"weight": _hint_weight(d), "on": "logits"},
            kd={"weight": _kd_weight(d)},
            gradient_block="booster",
        ),
    ),
    Variant(
        "rocket_hint_probs",
        "rocket, hint on probabilities (paper Table 3)",
        "both",
        lambda d: _loss(
            d,
            hint={"weight": _hint_weight(d), "on": "probs"},
            kd={"weight": 0.0},
            gradient_block="booster",
        ),
    ),
)


def variant_compiled(compiled: Compiled, variant: Variant, epochs: int | None) -> Compiled:
    data = copy.deepcopy(compiled.source.data)
    variant.edit(data)
    if epochs is not None:
        data.setdefault("train", {})["epochs"] = epochs
    return compile_source(Source(data, compiled.source.source_map))


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
    loader = batch_loader(data.train, settings.batch_size, torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = gen.train.build_optimizer(torch.nn.ParameterList(params), settings)
    gen.train.fit(module, loader, settings, optimizer=optimizer)
    return time.perf_counter() - start


def _evaluate(task: str, gen: Generated, net: torch.nn.Module, data: Dataset) -> dict[str, float]:
    loader = batch_loader(data.test, 1024)
    logits = gen.train.predict(net, loader, torch.device("cpu")).numpy()
    return evaluate(task, logits, data.test.target, data.test.group)


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
    return {"params": sum(p.numel() for p in light.parameters()), "macs": macs(light, data.val)}


def ablate(
    compiled: Compiled,
    seeds: int,
    epochs: int | None,
    out_dir: Path,
    variants: list[str] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    chosen = [v for v in VARIANTS if variants is None or v.name in variants]
    data = load_data(compiled.spec)
    console.print(
        f"[bold]ablation of {compiled.spec.name}[/]: {data.description}; "
        f"{len(chosen)} variants x {seeds} seeds"
    )
    base_seed = compiled.spec.train.seed
    # Each variant's code is compiled once and kept beside the results, for the record.
    needed = {v.name for v in chosen} | (
        {"booster_alone"} if any(v.trains == "kd" for v in chosen) else set()
    )
    gens = {
        v.name: load_generated(variant_compiled(compiled, v, epochs), out_dir / "code" / v.name)
        for v in VARIANTS
        if v.name in needed
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
        row = _summarise(metric, variant, runs)
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


def _warm_up(gen: Generated, data: Dataset) -> None:
    """One untimed step, so the first variant does not pay torch's one-off start-up costs."""
    model = gen.model.RocketNet()
    batch = next(iter(batch_loader(data.train, gen.compiled.spec.train.batch_size)))
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
    return "\n".join(lines) + "\n"
