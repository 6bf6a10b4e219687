"""`rocketc train`: co-train the generated twins on the spec's data, then launch the light net.

The run directory holds everything needed to ship and to judge the light net: per-epoch metrics
(JSONL, CSV, curves.png), an atomic per-epoch checkpoint for `--resume`, the exported light net
(torch.export `light.pt`, verified `light.onnx`) and report.json/report.md.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rocketc.compiler import Compiled
from rocketc.errors import TrainError
from rocketc.runtime.data import Dataset, Split, load_data
from rocketc.runtime.generated import Generated, load_generated
from rocketc.runtime.metrics import evaluate, headline

NETS = ("light", "booster")


@dataclass
class RunResult:
    out_dir: Path
    history: list[dict[str, Any]]
    test: dict[str, dict[str, float]]
    seconds: float
    audit: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def train_run(
    compiled: Compiled,
    out_dir: str | Path,
    *,
    resume: bool = False,
    data: Dataset | None = None,
    console: Console | None = None,
    launch: bool = True,
    stop_after_epoch: int | None = None,
) -> RunResult:
    """Train, evaluate and (if `launch`) export + report. `stop_after_epoch` simulates a kill."""
    console = console or Console(stderr=True)
    spec = compiled.spec
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else load_data(spec)
    gen = load_generated(compiled, out_dir / "code")
    audit = _audit(compiled, out_dir)
    settings = gen.train.Settings()
    device = _device(gen, settings)
    seed = spec.train.seed

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = gen.model.RocketNet().to(device)
    optimizer = gen.train.build_optimizer(model, settings)
    scheduler = gen.train.build_scheduler(optimizer, settings)
    shuffle = torch.Generator().manual_seed(seed)
    train_loader = batch_loader(data.train, settings.batch_size, shuffle=shuffle)

    ckpt_path = out_dir / "checkpoint.pt"
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and ckpt_path.exists():
        start_epoch = _restore(ckpt_path, model, optimizer, scheduler, shuffle)
        history = [r for r in _read_jsonl(out_dir / "metrics.jsonl") if r["epoch"] <= start_epoch]
        console.print(f"resuming {spec.name} after epoch {start_epoch}/{settings.epochs}")
    elif not resume:
        for stale in ("metrics.jsonl", "metrics.csv", "checkpoint.pt"):
            (out_dir / stale).unlink(missing_ok=True)
    _write_history(out_dir, history)

    console.print(f"[bold]{spec.name}[/]: {data.description}; device {device}")
    started = time.perf_counter()
    epoch_started = [time.perf_counter()]
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("train", total=len(train_loader), epoch="", rate="")
    seen = [0]

    def on_step(step: int, n: int) -> None:
        seen[0] += n
        rate = seen[0] / max(time.perf_counter() - epoch_started[0], 1e-9)
        progress.update(task, completed=step + 1, rate=f"{rate:,.0f} ex/s")

    def on_epoch_end(epoch: int, train_losses: dict[str, float]) -> None:
        record = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_started[0], 3),
            "train_loss": train_losses,
            "val": evaluate_nets(spec.task, gen, model, data.val, settings.eval_batch_size, device),
        }
        history.append(record)
        _write_history(out_dir, history)
        _save(ckpt_path, model, optimizer, scheduler, shuffle, epoch + 1)
        console.print(_summary_line(spec.task, record, settings.epochs), soft_wrap=True)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            raise _Stop
        epoch_started[0] = time.perf_counter()
        seen[0] = 0
        progress.reset(task, total=len(train_loader), epoch=f"{epoch + 2}/{settings.epochs}")

    progress.update(task, epoch=f"{start_epoch + 1}/{settings.epochs}")
    try:
        with progress:
            gen.train.fit(
                model,
                train_loader,
                settings,
                optimizer=optimizer,
                scheduler=scheduler,
                start_epoch=start_epoch,
                on_epoch_end=on_epoch_end,
                on_step=on_step,
            )
    except _Stop:
        return RunResult(out_dir, history, {}, time.perf_counter() - started, audit)
    except FloatingPointError as exc:
        epoch = len(history) + 1
        kept = f"; last good checkpoint: {ckpt_path} (epoch {epoch - 1})" if history else ""
        raise TrainError(f"training stopped in epoch {epoch}: {exc}{kept}") from None
    seconds = time.perf_counter() - started

    test = evaluate_nets(spec.task, gen, model, data.test, settings.eval_batch_size, device)
    result = RunResult(out_dir, history, test, seconds, audit)
    _plot(out_dir / "curves.png", spec.task, history)
    console.print(_final_table(spec.task, test))
    if launch:
        from rocketc.runtime.report import launch_light_net

        result.report = launch_light_net(compiled, gen, model.cpu(), data, result, console)
    return result


def _audit(compiled: Compiled, out_dir: Path) -> dict[str, Any]:
    """Prove the gradient block on the generated model before spending time training it."""
    from rocketc.runtime.audit import audit_error, run_audit

    result = run_audit(compiled)
    if not result.ok:
        raise audit_error(result)
    summary = {"gradient_block": result.gradient_block, "ok": True, "matrix": result.matrix()}
    (out_dir / "audit.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


class _Stop(Exception):
    """Raised by the epoch hook to end a run early, as a kill would (tests of --resume)."""


def _device(gen: Generated, settings: Any) -> torch.device:
    device = gen.train.resolve_device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            "train.device is 'cuda' but no CUDA device is available; use --device cpu or auto"
        )
    if settings.precision == "bf16" and device.type != "cuda":
        raise TrainError("precision bf16 needs a CUDA device here; use fp32 on CPU")
    return device


def tensors(split: Split) -> list[torch.Tensor]:
    """A split's inputs in spec order, then the target."""
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in split.inputs.values()] + [
        torch.from_numpy(np.ascontiguousarray(split.target))
    ]


def batch_loader(split: Split, batch_size: int, shuffle: torch.Generator | None = None):
    """Batches sliced straight from the tensors (one indexing op per batch, not per example).

    Same sampler as DataLoader(shuffle=True, generator=...) uses internally, so the batches, and
    with them resumed runs, are those of a plain DataLoader.
    """
    data = torch.utils.data
    dataset = data.TensorDataset(*tensors(split))
    order = (
        data.RandomSampler(dataset, generator=shuffle)
        if shuffle is not None
        else data.SequentialSampler(dataset)
    )
    batches = data.BatchSampler(order, batch_size, drop_last=False)
    return data.DataLoader(dataset, sampler=batches, batch_size=None, generator=shuffle)


def predict_nets(
    gen: Generated, model: torch.nn.Module, split: Split, batch_size: int, device: torch.device
) -> dict[str, np.ndarray]:
    """Logits of each net on its own: the light net is evaluated without running the booster."""
    loader = batch_loader(split, batch_size)
    return {
        "light": gen.train.predict(model.light_net(), loader, device).numpy(),
        "booster": gen.train.predict(model.booster_net(), loader, device).numpy(),
    }


def evaluate_nets(
    task: str,
    gen: Generated,
    model: torch.nn.Module,
    split: Split,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    logits = predict_nets(gen, model, split, batch_size, device)
    return {net: evaluate(task, logits[net], split.target, split.group) for net in NETS}


# --- checkpoints ---------------------------------------------------------------------------
def _save(path: Path, model, optimizer, scheduler, shuffle: torch.Generator, epoch: int) -> None:
    """Write-then-rename, so a kill mid-write never leaves a torn checkpoint."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "shuffle_rng": shuffle.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _restore(path: Path, model, optimizer, scheduler, shuffle: torch.Generator) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise TrainError(f"cannot resume from {path}: {exc}") from None
    torch.set_rng_state(state["torch_rng"])
    shuffle.set_state(state["shuffle_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"])


# --- metrics files -------------------------------------------------------------------------
def _flat(record: dict[str, Any]) -> dict[str, Any]:
    row = {"epoch": record["epoch"], "lr": record["lr"], "seconds": record["seconds"]}
    row.update({f"train_{k}": v for k, v in record["train_loss"].items()})
    for net, metrics in record["val"].items():
        row.update({f"val_{net}_{k}": v for k, v in metrics.items()})
    return row


def _write_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    with open(out_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
        for record in history:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    rows = [_flat(r) for r in history]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out_dir / "metrics.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _summary_line(task: str, record: dict[str, Any], epochs: int) -> str:
    metric = headline(task, grouped=False)  # AUC first for CTR; GAUC follows when grouped
    losses = record["train_loss"]
    terms = " ".join(f"{k} {v:.3f}" for k, v in losses.items() if k != "total")
    val = record["val"]
    extra = ""
    if task == "binary" and "gauc" in val["light"]:
        extra = f" gauc {val['light']['gauc']:.4f}/{val['booster']['gauc']:.4f}"
    return (
        f"epoch {record['epoch']:>3}/{epochs}  loss {losses['total']:.4f} ({terms})  "
        f"val {metric} light {val['light'][metric]:.4f} booster {val['booster'][metric]:.4f}"
        f"{extra}  lr {record['lr']:.2e}  {record['seconds']:.1f}s"
    )


def _final_table(task: str, test: dict[str, dict[str, float]]) -> Table:
    table = Table(title="test split")
    table.add_column("metric")
    for net in NETS:
        table.add_column(net, justify="right")
    for metric in test["light"]:
        table.add_row(metric, *(f"{test[net][metric]:.4f}" for net in NETS))
    return table


def _plot(path: Path, task: str, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = headline(task, grouped=bool(history) and "gauc" in history[0]["val"]["light"])
    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for net, style in (("light", "-o"), ("booster", "--s")):
        left.plot(epochs, [r["val"][net][metric] for r in history], style, label=net, ms=3)
    left.set(xlabel="epoch", ylabel=f"val {metric}", title=f"validation {metric}")
    left.legend()
    for term in history[0]["train_loss"] if history else []:
        right.plot(epochs, [r["train_loss"][term] for r in history], label=term)
    right.set(xlabel="epoch", ylabel="train loss", title="training loss by term", yscale="log")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
