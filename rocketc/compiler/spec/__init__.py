"""Stage 2: the spec schema (format version 1), validated with pydantic.

`parse_spec` turns loaded YAML into a `Spec`, or raises one SpecError listing every problem with
its YAML position. Graph-level rules (references, roles, shapes) are checked later by the passes.
The sections of a spec live in their own modules: `inputs`, `loss` (heads and loss terms'
settings), `train`, `export`, `data`; this one holds the spec itself and its error messages.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from rocketc.compiler.load import Source
from rocketc.compiler.ops import Layer, on_new_op
from rocketc.compiler.ops.base import IDENT
from rocketc.compiler.spec.base import SpecModel
from rocketc.compiler.spec.data import (
    CategoricalColumn,
    Data,
    DenseColumn,
    DigitsData,
    IdxData,
    MovielensData,
    NpzData,
    TabularData,
)
from rocketc.compiler.spec.export import Export, Int8
from rocketc.compiler.spec.inputs import CategoricalInput, CategoricalListInput, DenseInput, Input
from rocketc.compiler.spec.loss import KD, FeatureHint, Heads, Hint, Loss
from rocketc.compiler.spec.train import (
    SELECT_METRICS,
    ConstantSchedule,
    CosineSchedule,
    Optimizer,
    Select,
    StepSchedule,
    Train,
)

__all__ = [
    "KD",
    "SELECT_METRICS",
    "CategoricalColumn",
    "CategoricalInput",
    "CategoricalListInput",
    "ConstantSchedule",
    "CosineSchedule",
    "Data",
    "DenseColumn",
    "DenseInput",
    "DigitsData",
    "Export",
    "FeatureHint",
    "Heads",
    "Hint",
    "IdxData",
    "Input",
    "Int8",
    "Loss",
    "MovielensData",
    "NpzData",
    "Optimizer",
    "Select",
    "Spec",
    "StepSchedule",
    "TabularData",
    "Train",
    "json_schema",
    "parse_spec",
]
from rocketc.errors import Diagnostic, SpecError


class Spec(SpecModel):
    """A Rocket Launching model: inputs, a DAG of layers with roles, two heads, losses."""

    version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=IDENT, description="Identifier; default output generated/<name>/.")
    description: str = ""
    task: Literal["multiclass", "binary"]
    num_classes: int | None = Field(default=None, ge=2, description="multiclass only.")
    inputs: list[Input] = Field(min_length=1)
    layers: list[Layer] = Field(min_length=1)
    heads: Heads
    loss: Loss = Loss()
    train: Train = Train()
    export: Export = Export()
    data: Data | None = None

    @model_validator(mode="before")
    @classmethod
    def _vocab_from_source(cls, data: Any) -> Any:
        """An input with `vocab_from: item` and no size of its own takes item's vocab and
        hash_buckets, so every reader of the spec sees the size of the one id space."""
        inputs = data.get("inputs") if isinstance(data, dict) else None
        if not isinstance(inputs, list):
            return data
        # Only well-formed names: a name that is a list or a mapping is refused by the field
        # validators below, at its position; here it must not crash the lookup.
        named = {
            i["name"]: i for i in inputs if isinstance(i, dict) and isinstance(i.get("name"), str)
        }
        filled = []
        for item in inputs:
            source = item.get("vocab_from") if isinstance(item, dict) else None
            source = named.get(source) if isinstance(source, str) else None
            if source is not None and "vocab" not in item and "hash_buckets" not in item:
                size = {k: source[k] for k in ("vocab", "hash_buckets") if _count(source.get(k))}
                item = {**item, **size}
            filled.append(item)
        return {**data, "inputs": filled}

    @model_validator(mode="after")
    def _vocab_from_categorical(self) -> Spec:
        named = {i.name: i for i in self.inputs}
        for index, item in enumerate(self.inputs):
            name = getattr(item, "vocab_from", None)
            if name is None:
                continue
            source = named.get(name)
            problem = None
            if source is None:
                problem = f"no input is named '{name}'"
            elif source is item:
                problem = "an input cannot take its ids from itself"
            elif source.kind != "categorical":
                problem = f"'{name}' is a {source.kind} input"
            elif source.vocab_from is not None:
                problem = f"'{name}' takes its ids from '{source.vocab_from}'; name that one"
            elif (item.vocab, item.hash_buckets) != (source.vocab, source.hash_buckets):
                problem = f"its size is the size of '{name}': leave vocab and hash_buckets out"
            if problem is not None:
                raise PydanticCustomError(
                    "vocab_from",
                    "{problem}; vocab_from names a categorical input whose vocabulary these ids "
                    "share",
                    {"problem": problem, "at": ("inputs", index, "vocab_from")},
                )
        return self

    @model_validator(mode="after")
    def _table_feeds_inputs(self) -> Spec:
        """A table's bucketized column feeds a categorical input sized for its bands, and a
        dense input that no data.dense entry lists reads one column, so is of shape [1]."""
        data = self.data
        if not isinstance(data, TabularData):
            return self
        named = {i.name: i for i in self.inputs}
        for k, entry in enumerate(data.categorical):
            item = named.get(entry.column)
            if entry.buckets is None or item is None:  # the loader names a missing input
                continue
            problem = None
            if item.kind != "categorical" or item.hash_buckets or item.vocab_from:
                problem = (
                    f"input '{item.name}' takes bucket ids: declare it {{kind: categorical, "
                    f"vocab: {entry.buckets + 1}}} (no hash_buckets or vocab_from)"
                )
            elif item.vocab is not None and item.vocab < entry.buckets + 1:
                problem = (
                    f"{entry.buckets} buckets give ids 1..{entry.buckets} (0: missing), and "
                    f"input '{item.name}' declares vocab {item.vocab}; give it vocab: "
                    f"{entry.buckets + 1}"
                )
            if problem is not None:
                raise PydanticCustomError(
                    "table_buckets",
                    "{problem}",
                    {"problem": problem, "at": ("data", "categorical", k)},
                )
        for k, item in enumerate(self.inputs):
            if item.kind == "dense" and item.name not in data.dense and item.shape != [1]:
                raise PydanticCustomError(
                    "table_dense",
                    "dense input '{name}' of shape {shape} gathers several columns: list them "
                    "under data.dense.{name} (an input of shape [1] reads the column of its name)",
                    {"name": item.name, "shape": item.shape, "at": ("inputs", k, "shape")},
                )
        return self

    @property
    def sample_weighted(self) -> bool:
        """Whether the data has per-row sample weights (`data.weight`): the generated loss then
        takes them, and the training batches carry them after the target."""
        return getattr(self.data, "weight", None) is not None

    @model_validator(mode="after")
    def _classes_fit_task(self) -> Spec:
        # `at` names the field the diagnostic points at (a model-level error has no location).
        if self.task == "multiclass" and self.num_classes is None:
            raise PydanticCustomError(
                "task_classes", "'multiclass' needs num_classes", {"at": "task"}
            )
        if self.task == "binary" and self.num_classes not in (None, 2):
            raise PydanticCustomError(
                "task_classes",
                "task 'binary' has one logit; leave num_classes out",
                {"at": "num_classes"},
            )
        metric = self.train.select.metric
        if metric is not None and metric not in SELECT_METRICS[self.task]:
            raise PydanticCustomError(
                "select_metric",
                "'{metric}' is not a {task} metric; choose from {choices}",
                {
                    "metric": metric,
                    "task": self.task,
                    "choices": ", ".join(SELECT_METRICS[self.task]),
                    "at": ("train", "select", "metric"),
                },
            )
        return self

    @model_validator(mode="after")
    def _hint_fits_task(self) -> Spec:
        if self.task == "binary" and self.loss.hint.normalize == "zscore":
            raise PydanticCustomError(
                "hint_normalize",
                "zscore standardises each example's logits across the classes, and a binary "
                "task has one logit: nothing to standardise by; use normalize: none",
                {"at": ("loss", "hint", "normalize")},
            )
        return self

    @property
    def out_features(self) -> int:
        """Width of each head's logits."""
        return self.num_classes if self.task == "multiclass" else 1  # type: ignore[return-value]


def _count(value: Any) -> bool:
    """Whether `value` is a size pydantic will take (a positive int): only those are copied."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# An op registered after this module was imported (one defined in a plugin or a test module)
# joins the union of `layers:` once Spec's schema is rebuilt.
on_new_op(lambda: Spec.model_rebuild(force=True))


def parse_spec(source: Source) -> Spec:
    """Validate loaded YAML as a Spec; every pydantic error becomes a positioned diagnostic."""
    if not isinstance(source.data, dict):
        raise SpecError(
            [
                Diagnostic(
                    "a spec is a YAML mapping (name:, inputs:, layers:, ...)",
                    source.file,
                    source.source_map.pos(()),
                )
            ]
        )
    try:
        return Spec.model_validate(source.data)
    except ValidationError as exc:
        raise SpecError([_diagnostic(err, source) for err in exc.errors()]) from None


def _diagnostic(err: Any, source: Source) -> Diagnostic:
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if "at" in ctx:
        at = ctx["at"]
        loc += tuple(at) if isinstance(at, (tuple, list)) else (at,)
    elif err["type"] == "union_tag_invalid":
        loc += (str(ctx.get("discriminator", "")).strip("'"),)  # point at the bad `op:` value
    path = _data_path(loc, source.data)
    where = _dotted(path)
    message = _message(err)
    text = f"{where}: {message}" if where else message
    file, pos = source.source_map.where(path)  # the file, or the --set that wrote the value
    if err["type"] == "extra_forbidden" and pos is not None:
        pos = source.source_map.key_positions.get(path) or pos
    return Diagnostic(text, file, pos)


def _data_path(loc: tuple, data: Any) -> tuple:
    """Drop the union tags pydantic puts in error locations ('linear', 'dense', ...).

    A tag comes right after the path of the union member and equals its discriminator value;
    anything else is a real key, even one spelled like some value (`{id: units, op: mlp}`).
    """
    path: list = []
    node = data
    entered = True  # `node` was just reached, so a union tag may come next
    for part in loc:
        if (
            entered
            and isinstance(node, dict)
            and part not in node
            and any(node.get(key) == part for key in _TAG_FIELDS)
        ):
            entered = False
            continue  # a discriminator tag such as 'linear'
        entered = True
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        else:
            path.append(part)  # a missing field: still worth naming
            node = None
    return tuple(path)


# The discriminator fields of the spec's unions (layers, inputs, data, schedule).
_TAG_FIELDS = ("op", "kind", "source", "name")


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return (
            f"unknown {ctx.get('discriminator', 'tag').strip(chr(39))} "
            f"{ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        )
    if kind == "union_tag_not_found":
        ctx = err.get("ctx", {})
        return f"has no {ctx.get('discriminator', 'tag').strip(chr(39))!r} field"
    if kind == "string_pattern_mismatch":
        return f"{err['input']!r} is not a Python identifier"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec file (by alias, so `in:` reads as users write it)."""
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rocketc spec (format version 1)"
    return schema
