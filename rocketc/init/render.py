"""The spec `rocketc init` writes: the decided columns laid out as inputs, one shared field
group, a light tower and a booster in the proportions of the paper's Table 5, rocketc's default
loss and a data section, each decision a comment, through templates/init_spec.yaml.jinja2.

`--booster` picks what the booster adds beside its deep tower (BOOSTERS): nothing (`mlp`), or a
feature-interaction layer whose output joins the tower's in the booster's logit: DCN-v2's cross
layers over the shared features, DeepFM's factorization machine or AutoInt's self-attention over
the stacked field embeddings (the field group then stacks, and one shared `flatten` gives the
towers the same concatenation as before). The light tower is the same whichever booster."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np

from rocketc.backends.templating import environment
from rocketc.data.stream import STREAM_BYTES
from rocketc.init.columns import OVERRIDES, Column

# The paper's Table 5 towers (576 shared features -> 200 x 80 light, 720 x ... x 90 booster),
# scaled to the table's shared width.
PAPER_WIDTH = 576
LIGHT_UNITS = (200, 80)
BOOSTER_UNITS = (720, 360, 240, 180, 90)
# --booster: the interaction the booster adds beside its deep tower, in the header's words.
BOOSTERS = {
    "mlp": None,
    "dcn": "DCN-v2 (Wang et al., 2021): 3 cross layers over the shared features",
    "deepfm": "DeepFM (Guo et al., 2017): a factorization machine over the stacked fields",
    "autoint": "AutoInt (Song et al., 2019): 2 self-attention layers over the stacked fields",
}
STACKED = ("deepfm", "autoint")  # boosters that read the fields as (B, fields, dim)


def render(
    path, source, frame, total, columns, task, classes, named, name, out, dim, said, booster="mlp"
):
    features = [c for c in columns if c.feature]
    ids = [c for c in features if c.role != "dense"]
    dense = [c for c in features if c.role == "dense"]
    taken = {c.name for c in columns}
    layer_id = _Namer(taken)
    inputs: list[tuple[str, str]] = []
    for c in ids:
        if c.role == "hashed":
            size = f"hash_buckets: {_buckets(c.distinct)}"
        elif c.role == "bucket":
            size = f"vocab: {c.buckets + 1}"
        else:
            size = f"vocab: {c.distinct + 1}"
        kind = "categorical_list" if c.role == "list" else "categorical"
        extra = f", max_len: {c.max_len}" if c.role == "list" else ""
        inputs.append((f"{{name: {c.name}, kind: {kind}, {size}{extra}}}", _why(c)))
    numbers = layer_id("numbers") if dense else None
    if dense:
        prepared = [
            f"{sum(1 for c in dense if c.transform)} log1p"
            if any(c.transform for c in dense)
            else "",
            f"{sum(1 for c in dense if c.fill)} filled" if any(c.fill for c in dense) else "",
        ]
        steps = f" ({', '.join(p for p in prepared if p)} first)" if any(prepared) else ""
        why = f"{len(dense)} number column(s), standardised on the train split{steps}"
        inputs.append((f"{{name: {numbers}, kind: dense, shape: [{len(dense)}]}}", why))

    width = len(ids) * dim + len(dense)
    scale = width / PAPER_WIDTH
    light_units = [max(4, round(u * scale)) for u in LIGHT_UNITS]
    booster_units = [max(4, round(u * scale)) for u in BOOSTER_UNITS]
    out_features = classes or 1
    layers: list[tuple[str, str]] = []
    reads = []
    fields = None
    if ids:
        fields = layer_id("fields")
        names = _flow([c.name for c in ids], "    in: ")
        stacked = booster in STACKED
        layers.append(
            (
                f"shared: each categorical field embedded to {dim} (lists pooled by mean), "
                + (
                    f"stacked: (B, {len(ids)}, {dim})"
                    if stacked
                    else f"concatenated: (B, {len(ids) * dim})"
                ),
                f"id: {fields}\n    op: field_embeddings\n{names}\n    dim: {dim}\n"
                + ("    stack: true\n" if stacked else "")
                + "    role: shared",
            )
        )
        flat = fields
        if stacked:
            flat = layer_id("fields_flat")
            layers.append(
                (
                    f"shared: the stacked fields side by side, for the towers: "
                    f"(B, {len(ids) * dim})",
                    f"{{id: {flat}, op: flatten, in: {fields}, role: shared}}",
                )
            )
        reads.append(flat)
    if dense:
        reads.append(numbers)
    bottom = reads[0]
    if len(reads) > 1:
        bottom = layer_id("features")
        layers.append(
            (
                f"shared: the embeddings and the numbers side by side: (B, {width})",
                f"{{id: {bottom}, op: concat, in: [{', '.join(reads)}], role: shared}}",
            )
        )
    for role, units in (("light", light_units), ("booster", booster_units)):
        tower, logit = layer_id(f"{role}_tower"), layer_id(f"{role}_logit")
        shape = " x ".join(map(str, [width, *units]))
        layers.append(
            (
                f"{role} tower: {shape} -> {out_features}",
                f"{{id: {tower}, op: mlp, in: {bottom}, units: {list(units)}, role: {role}}}",
            )
        )
        head = tower
        if role == "booster" and booster != "mlp":
            head = _interaction(layers, layer_id, booster, bottom, fields, tower, dim)
        layers.append(
            (
                f"{role} logit{'s' if out_features > 1 else ''}",
                f"{{id: {logit}, op: linear, in: {head}, out_features: {out_features}, "
                f"role: {role}}}",
            )
        )
    ignored = [c for c in columns if c.role == "ignore"]
    pad = max((len(c.name) for c in ignored), default=0)
    rows = len(frame)
    view = {
        "name": name or _identifier(path.stem),
        "file": path.name,
        "command": _command(path, named, name, out, said, booster),
        "booster_note": BOOSTERS[booster],
        "rows_read": f"the first {rows:,} rows" if rows != total else f"all {rows:,} rows",
        "sizing": (
            "vocabularies counted over them"
            if rows == total
            else f"vocabularies counted over all {total:,} rows"
        ),
        "summary": _summary(features),
        "width": width,
        "light_text": " x ".join(map(str, [width, *light_units])),
        "booster_text": " x ".join(map(str, [width, *booster_units])),
        "out": str(out),
        "ignored": [f"{c.name.ljust(pad)}  {c.reason}" for c in ignored],
        "description": json.dumps(f"{path.name}: {_summary(features)}; written by rocketc init"),
        "task": task,
        "num_classes": classes,
        "inputs": _aligned(inputs),
        "layers": layers,
        "light_head": layer_id.made["light_logit"],
        "booster_head": layer_id.made["booster_logit"],
        "epochs": 5,
        "batch_size": 512 if total >= 20_000 else 128,
        "source": source,
        "path": json.dumps(str(path)),
        "label": named["label"],
        "group": named["group"],
        "weight": named["weight"],
        "categorical": _categorical(ids),
        "dense": _dense(numbers, dense, streamed=path.stat().st_size > STREAM_BYTES),
        "delimiter": json.dumps(_delimiter(columns)) if _delimiter(columns) else None,
    }
    return environment().get_template("init_spec.yaml.jinja2").render(**view)


def _interaction(layers, layer_id, booster, bottom, fields, tower, dim) -> str:
    """Add the booster's interaction layer beside its deep `tower` and the concatenation of
    both; return the id the booster's logit reads."""
    if booster == "dcn":
        what = layer_id("booster_cross")
        line = f"{{id: {what}, op: cross, in: {bottom}, layers: 3, role: booster}}"
        comment = "booster: DCN-v2's cross layers, x_(l+1) = x_0 * (W x_l + b) + x_l"
    elif booster == "deepfm":
        what = layer_id("booster_fm")
        line = f"{{id: {what}, op: fm, in: {fields}, role: booster}}"
        comment = "booster: the factorization machine's pairwise term over the fields: (B, 1)"
    else:  # autoint
        attention = layer_id("booster_attention")
        layers.append(
            (
                "booster: AutoInt's interacting layers, every field attending to every other",
                f"{{id: {attention}, op: self_attention, in: {fields}, heads: 2, dim: {dim}, "
                "layers: 2, role: booster}",
            )
        )
        what = layer_id("booster_attention_flat")
        line = f"{{id: {what}, op: flatten, in: {attention}, role: booster}}"
        comment = "booster: the attended fields side by side"
    layers.append((comment, line))
    both = layer_id("booster_both")
    layers.append(
        (
            "booster: the interaction beside the deep tower, into one logit",
            f"{{id: {both}, op: concat, in: [{what}, {tower}], role: booster}}",
        )
    )
    return both


class _Namer:
    """Layer and input ids that no column name takes (inputs and layers share one namespace)."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self.made: dict[str, str] = {}

    def __call__(self, want: str) -> str:
        got = want
        while got in self.taken:
            got += "_"
        self.taken.add(got)
        self.made[want] = got
        return got


def _dense(numbers: str | None, dense: list[Column], streamed: bool) -> str | None:
    """The data section's `dense:` value: a flow list of names, or one line per column when a
    column has a fill or a transform. A streamed table takes a number as its fill (its one pass
    cannot take a median first): the sample's median."""
    if not dense:
        return None
    if not any(c.fill or c.transform for c in dense):
        return f" {{{numbers}: [{', '.join(c.name for c in dense)}]}}"
    lines = [f"\n    {numbers}:"]
    for c in dense:
        settings = [f"column: {c.name}"]
        if c.transform:
            settings.append(f"transform: {c.transform}")
        if c.fill:
            settings.append(f"fill: {c.median:.6g}" if streamed else f"fill: {c.fill}")
        entry = f"{{{', '.join(settings)}}}" if len(settings) > 1 else c.name
        why = (
            "  # the sample's median: a streamed table fills with a number"
            if (c.fill and streamed)
            else ""
        )
        lines.append(f"\n      - {entry}{why}")
    return "".join(lines)


def _categorical(ids: list[Column]) -> str | None:
    """The data section's `categorical:` value: only the columns that need more than their name
    (bucketized numbers); every other id input reads the column of its name."""
    cut = [c for c in ids if c.role == "bucket"]
    if not cut:
        return None
    return "".join(f"\n    - {{column: {c.name}, buckets: {c.buckets}}}" for c in cut)


def _buckets(distinct: int) -> int:
    """Twice the distinct values, up to a power of two: about 1 value in 4 shares a bucket."""
    return int(min(max(1 << int(np.ceil(np.log2(max(2 * distinct, 2)))), 1024), 1 << 22))


def _why(c: Column) -> str:
    also = " (also the GAUC group)" if "group" in c.also else ""
    return f"{c.reason}{also}"


def _aligned(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pad = max((len(line) for line, _ in lines), default=0)
    return [(line.ljust(pad), why) for line, why in lines]


def _summary(features: list[Column]) -> str:
    counts = {}
    for c in features:
        counts[c.role] = counts.get(c.role, 0) + 1
    words = {
        "categorical": "categorical",
        "hashed": "hashed id",
        "list": "list",
        "dense": "number",
        "bucket": "bucketized number",
    }
    return ", ".join(
        f"{n} {words[role]}{'s' if n > 1 and role != 'categorical' else ''}"
        for role, n in counts.items()
    )


def _delimiter(columns: list[Column]) -> str | None:
    """The delimiter of the text lists among the features (one for the whole table)."""
    return next((c.delimiter for c in columns if c.role == "list" and c.delimiter), None)


def _command(
    path: Path, named: dict, name: str | None, out, said: dict[str, str], booster: str = "mlp"
) -> str:
    flags = " ".join(f"--{k} {v}" for k, v in {**named, "name": name}.items() if v is not None)
    by_role: dict[str, list[str]] = {}
    for column, role in said.items():
        by_role.setdefault(role, []).append(column)
    flags += "".join(
        f" --{role} {','.join(by_role[role])}" for role in OVERRIDES if role in by_role
    )
    if booster != "mlp":
        flags += f" --booster {booster}"
    words = f"rocketc init --data {path} {flags} -o {out}"
    return " \\\n#     ".join(textwrap.wrap(words, 90, break_on_hyphens=False))


def _flow(names: list[str], lead: str) -> str:
    """`lead` then a YAML flow list of `names`, wrapped under its bracket at 100 columns."""
    lines = textwrap.wrap(
        ", ".join(names),
        100 - len(lead) - 1,
        break_long_words=False,
        break_on_hyphens=False,
    )
    indent = "\n" + " " * (len(lead) + 1)
    return f"{lead}[{indent.join(lines)}]"


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"
