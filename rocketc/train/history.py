"""A run's per-epoch record: metrics.jsonl, metrics.csv, curves.png and the console lines.

One record per epoch: `{"epoch", "lr", "seconds", "train_loss": {term: mean}, "val": {net:
{metric: value}}}`. The JSONL file is the source of truth (a resumed run reads it back); the
CSV is the same records flattened for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from rocketc.data.metrics import headline
from rocketc.files import figure_bytes, write_atomic

NETS = ("light", "booster")


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    row = {"epoch": record["epoch"], "lr": record["lr"], "seconds": record["seconds"]}
    row.update({f"train_{k}": v for k, v in record["train_loss"].items()})
    for net, metrics in record["val"].items():
        row.update({f"val_{net}_{k}": v for k, v in metrics.items()})
    return row


def write_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl and metrics.csv, each replaced whole (never a torn line)."""
    write_atomic(
        out_dir / "metrics.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in history)
    )
    rows = [_flat(r) for r in history]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / "metrics.csv", text.getvalue())


def read_history(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def summary_line(task: str, record: dict[str, Any], epochs: int, best: bool) -> str:
    """One line per epoch: losses by term, both nets' validation metric, lr, time."""
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
        f"{extra}  lr {record['lr']:.2e}  {record['seconds']:.1f}s" + ("  best" if best else "")
    )


def final_table(test: dict[str, dict[str, float]], selected_epoch: int) -> Table:
    table = Table(title=f"test split, epoch {selected_epoch}'s weights")
    table.add_column("metric")
    for net in NETS:
        table.add_column(net, justify="right")
    for metric in test["light"]:
        table.add_row(metric, *(f"{test[net][metric]:.4f}" for net in NETS))
    return table


def plot(path: Path, task: str, history: list[dict[str, Any]], selected_epoch: int) -> None:
    """Validation metric of both nets and training loss by term, per epoch."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: a file, never a window
    import matplotlib.pyplot as plt

    fig = curves_figure(task, history, selected_epoch)
    write_atomic(path, figure_bytes(fig, dpi=110))
    plt.close(fig)


def curves_figure(task: str, history: list[dict[str, Any]], selected_epoch: int):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    metric = headline(task, grouped=bool(history) and "gauc" in history[0]["val"]["light"])
    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for net, style in (("light", "-o"), ("booster", "--s")):
        left.plot(epochs, [r["val"][net][metric] for r in history], style, label=net, ms=3)
    left.axvline(selected_epoch, color="grey", ls=":", label=f"shipped (epoch {selected_epoch})")
    left.set(xlabel="epoch", ylabel=f"val {metric}", title=f"validation {metric}")
    left.legend()
    for term in history[0]["train_loss"] if history else []:
        right.plot(epochs, [r["train_loss"][term] for r in history], label=term)
    right.set(xlabel="epoch", ylabel="train loss", title="training loss by term", yscale="log")
    right.legend()
    for ax in (left, right):  # epochs are whole numbers: no tick at epoch 1.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
