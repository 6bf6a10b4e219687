"""What a shrink writes: shrink.md (the answer in words, then the table), frontier.png (quality
against serving cost), the derived specs, and shrunk.yaml (the chosen spec, its header carrying
the evidence)."""

from __future__ import annotations

import io
import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

from rich.table import Table
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from scipy import stats

from rocketc.experiments.shrink.answer import ARM_WORDS, delta_text
from rocketc.files import figure_bytes, write_atomic

COLUMNS = (
    "size",
    "how",
    "served MACs",
    "params",
    "ms @1",
    "ms @100",
    "arm",
    "test",
    "Δ vs full light alone [95% CI]",
    "holds",
    "Δ vs booster",
    "epoch",
)


def _cells(result: dict[str, Any], row: dict[str, Any]) -> list[str]:
    size = next(s for s in result["sizes"] if s["name"] == row["size"])
    lat = size["latency_ms"]
    return [
        row["size"],
        size["how"],
        f"{size['macs']:,}",
        f"{size['params']:,}",
        f"{lat['batch_1']:.3f}",
        f"{lat['batch_100']:.3f}",
        ARM_WORDS[row["arm"]],
        f"{row['mean']:.4f}",
        delta_text(row["vs_full_alone"]),
        "yes" if row["holds"] else "no",
        delta_text(row["vs_booster"]),
        f"{row['epoch']:g}",
    ]


def _caption(result: dict[str, Any]) -> str:
    return (
        f"test {result['metric']}, mean over {result['seeds']} seed(s), each net at its best "
        f"validation epoch; Δ in points (×100), paired by seed; holds: Δ's interval above "
        f"-{result['tolerance_points']:g} point; latency: onnxruntime, one thread, median ms"
    )


# The terminal's table: what decides (shrink.md has every column).
BRIEF = ("size", "served MACs", "ms @100", "arm", "test", "Δ vs full light alone [95% CI]", "holds")


def render_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['spec']}: {_caption(result)}")
    keep = [COLUMNS.index(c) for c in BRIEF]
    for col in BRIEF:
        table.add_column(col, justify="left" if col in ("size", "arm", "holds") else "right")
    for row in result["rows"]:
        cells = _cells(result, row)
        table.add_row(*(cells[i] for i in keep))
    return table


def render_markdown(result: dict[str, Any]) -> str:
    booster = result["booster"]
    lines = [f"# Shrink: {result['spec']}", "", *result["answer"], ""]
    lines += [
        f"{_caption(result)[0].upper()}{_caption(result)[1:]}. Booster alone: "
        f"{booster['mean']:.4f} at {booster['macs']:,} MACs per example. Sizes are derived from "
        f"{result['file']}; each is written under `specs/`.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|"
        + "|".join("---" if c in ("size", "how", "arm", "holds") else "---:" for c in COLUMNS)
        + "|",
    ]
    lines += ["| " + " | ".join(_cells(result, row)) + " |" for row in result["rows"]]
    lines += ["", "![quality against serving cost](frontier.png)", ""]
    return "\n".join(lines)


def _interval(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    t = float(stats.t.ppf(0.975, len(values) - 1))
    return t * statistics.stdev(values) / math.sqrt(len(values))


def frontier_png(result: dict[str, Any], path: Path) -> None:
    """Test metric against served MACs (log scale): each arm with its 95% intervals, the
    booster as a reference line with its own cost marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    macs = {s["name"]: s["macs"] for s in result["sizes"]}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"rocket": ("C0", "o"), "kd": ("C1", "s"), "light_alone": ("C2", "^")}
    for arm, (color, marker) in styles.items():
        rows = sorted((r for r in result["rows"] if r["arm"] == arm), key=lambda r: macs[r["size"]])
        if not rows:
            continue
        ax.errorbar(
            [macs[r["size"]] for r in rows],
            [r["mean"] for r in rows],
            yerr=[_interval(r["values"]) for r in rows],
            color=color,
            marker=marker,
            capsize=3,
            label=ARM_WORDS[arm],
        )
    booster = result["booster"]
    ax.axhline(booster["mean"], color="C3", linestyle="--", label="booster alone")
    if booster.get("macs"):
        ax.plot([booster["macs"]], [booster["mean"]], marker="*", color="C3", markersize=12)
    full_alone = next(
        r["mean"]
        for r in result["rows"]
        if r["size"] == result["sizes"][0]["name"] and r["arm"] == "light_alone"
    )
    ax.axhline(
        full_alone - result["tolerance_points"] / 100,
        color="grey",
        linestyle=":",
        label=f"full-size light alone − {result['tolerance_points']:g} pt",
    )
    ax.set_xscale("log")
    ax.set_xlabel("served MACs per example (log)")
    ax.set_ylabel(f"test {result['metric']}")
    ax.set_title(f"{result['spec']}: quality against serving cost")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, figure_bytes(fig, dpi=110))
    plt.close(fig)


# --- spec files ------------------------------------------------------------------------------
def _commented(value: Any, flow: bool = False) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v, flow=True)
        if flow and all(not isinstance(v, dict) for v in value.values()):
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq([_commented(v, flow=True) for v in value])
        if all(not isinstance(v, (dict, list)) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def spec_text(data: dict[str, Any], header: list[str]) -> str:
    """A spec as a file: `header` as comment lines, then the sections, one line per layer."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    doc = CommentedMap()
    for key, value in data.items():
        doc[key] = _commented(value, flow=key == "heads")
    stream = io.StringIO()
    yaml.dump(doc, stream)
    comments = []
    for line in header:
        wrapped = textwrap.wrap(line, 94, break_on_hyphens=False) or [""]
        comments += [f"# {w}".rstrip() for w in wrapped]
    return "\n".join(comments) + "\n" + stream.getvalue()
