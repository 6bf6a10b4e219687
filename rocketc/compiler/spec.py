"""Stage 2: the spec schema (format version 1), validated with pydantic.

`parse_spec` turns loaded YAML into a `Spec`, or raises one SpecError listing every problem with
its YAML position. Graph-level rules (references, roles, shapes) are checked later by the passes.
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rocketc.compiler.load import Source
from rocketc.compiler.ops import Layer, TensorType, on_new_op
from rocketc.compiler.ops.base import IDENT, RESERVED
from rocketc.errors import Diagnostic, SpecError


class _Model(BaseModel):
    # No inf/nan: every number is printed into generated Python, where `inf` is a NameError.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- inputs --------------------------------------------------------------------------------
class _InputBase(_Model):
    name: str = Field(pattern=IDENT, description="Python identifier; the forward() argument.")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if keyword.iskeyword(value) or value in RESERVED or not _bindable(value):
            raise ValueError(f"'{value}' is reserved in generated Python; pick another name")
        return value


def _bindable(name: str) -> bool:
    """Whether Python takes `name` (an identifier) as a parameter: `__debug__` it does not."""
    try:
        compile(f"def _f({name}): pass", "<name>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


class DenseInput(_InputBase):
    """Float features of a fixed per-example shape, e.g. [1, 28, 28] or [19]."""

    kind: Literal["dense"]
    shape: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)

    def tensor_type(self) -> TensorType:
        return TensorType(tuple(self.shape))


class _IdsInput(_InputBase):
    """Category ids from a vocabulary the loader builds, or from a stable hash of each value."""

    vocab: int | None = Field(
        default=None,
        ge=1,
        description="Number of distinct ids, including id 0 (unseen or missing values). "
        "Filled in as hash_buckets + 1 when hash_buckets is given.",
    )
    hash_buckets: int | None = Field(
        default=None,
        ge=1,
        description="Hash each value (BLAKE2b of its text, the same in every process) to an id "
        "in 1..hash_buckets instead of building a vocabulary; 0 stays the missing value. For id "
        "spaces too big or too open to enumerate (users, items).",
    )
    vocab_from: str | None = Field(
        default=None,
        pattern=IDENT,
        description="A categorical input whose ids these are (a history of items: vocab_from: "
        "item): its vocab and hash_buckets, filled in (leave both out), and in field_embeddings "
        "one embedding table for both. Other layers share a table with `table:`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _vocab_from_buckets(cls, data: Any) -> Any:
        buckets = data.get("hash_buckets") if isinstance(data, dict) else None
        if isinstance(buckets, int) and not isinstance(buckets, bool) and buckets >= 1:
            if data.get("vocab") is None:
                return {**data, "vocab": buckets + 1}
        return data

    @model_validator(mode="after")
    def _sized(self) -> _IdsInput:
        if self.vocab is None and self.vocab_from is None:  # else: Spec names what is wrong
            raise PydanticCustomError(
                "input_vocab",
                "give vocab (the number of distinct ids, id 0 for unseen values included) or "
                "hash_buckets (ids hashed into 1..N)",
                {"at": "kind"},
            )
        if self.hash_buckets is not None and self.vocab != self.hash_buckets + 1:
            raise PydanticCustomError(
                "input_vocab",
                "with hash_buckets {buckets} the ids are 0 (missing) and 1..{buckets}, so vocab "
                "is {want}; leave vocab out",
                {"buckets": self.hash_buckets, "want": self.hash_buckets + 1, "at": "vocab"},
            )
        return self

    def tensor_type(self) -> TensorType:
        """One id per example: (B,) int64."""
        return TensorType((), "index", self.vocab or 0, self.vocab_from or self.name)


class CategoricalInput(_IdsInput):
    """One category id per example, in [0, vocab). Id 0 is kept for unseen values by loaders."""

    kind: Literal["categorical"]


class CategoricalListInput(_IdsInput):
    """Several category ids per example (tags, genres, clicked items): a (B, max_len) id tensor.

    A list keeps its first max_len ids and is padded with id 0, which pooling ops leave out (as
    they do unseen and missing values, also id 0).
    """

    kind: Literal["categorical_list"]
    max_len: int = Field(ge=1, le=4096, description="Ids kept per example; shorter lists pad.")

    def tensor_type(self) -> TensorType:
        return TensorType((self.max_len,), "index", self.vocab or 0, self.vocab_from or self.name)


Input = Annotated[DenseInput | CategoricalInput | CategoricalListInput, Field(discriminator="kind")]


# --- heads and losses ----------------------------------------------------------------------
class Heads(_Model):
    light: str = Field(description="Layer giving the light net's logits (the served output).")
    booster: str = Field(description="Layer giving the booster net's logits.")


class Hint(_Model):
    """The paper's hint loss: squared error between the light and the booster outputs.

    rocketc's default compares probabilities, not the paper's logits. In BENCHMARKS.md's
    ablations (test split, paired seeds) the probability hint is level with the light net alone
    on digits, Fashion-MNIST and MovieLens (+0.07, -0.05, -0.00 points), while the paper's logit
    hint is below it on all three (-10.5 and -1.2 points, worse; -0.6, within noise).
    Probabilities are bounded, so the term cannot outgrow the label loss when the booster's
    logits grow large. `on: logits` with the other defaults is the paper's recipe (and `rocketc
    ablate`'s `rocket` row).
    """

    weight: float = Field(default=1.0, ge=0.0, description="lambda in the paper.")
    on: Literal["logits", "probs"] = Field(
        default="probs",
        description="probs: softmax (sigmoid) outputs, the paper's Table 3 (rocketc's default: "
        "level with the light net alone wherever measured). logits: the paper's recipe.",
    )
    reduction: Literal["mean", "sum"] = Field(
        default="mean",
        description="mean: average over batch and classes (F.mse_loss). "
        "sum: sum over classes, average over batch (the paper's ||l(x) - z(x)||^2).",
    )
    normalize: Literal["none", "zscore"] = Field(
        default="none",
        description="zscore: standardise each example's logits on both sides first (Sun et al., "
        "CVPR 2024), so the light net learns the booster's ranking of classes, not its scale. "
        "Multiclass only.",
    )
    temperature: float = Field(
        default=1.0, gt=0.0, description="on: probs only: softmax (sigmoid) of logits / T."
    )
    warmup_epochs: int = Field(
        default=0,
        ge=0,
        description="The weight ramps linearly from 0: epoch e (0-based) trains at "
        "weight * min(1, e / warmup_epochs).",
    )

    @model_validator(mode="after")
    def _temperature_needs_probs(self) -> Hint:
        if self.on == "logits" and self.temperature != 1.0:
            raise PydanticCustomError(
                "hint_temperature",
                "a temperature scales the logits before softmax/sigmoid; it needs on: probs "
                "(a logit hint at T would only rescale the weight by 1/T^2)",
                {"at": "temperature"},
            )
        return self


class KD(_Model):
    """Online knowledge distillation from the booster: KL at temperature T, scaled by T^2."""

    weight: float = Field(default=0.0, ge=0.0)
    temperature: float = Field(default=4.0, gt=0.0)
    warmup_epochs: int = Field(
        default=0, ge=0, description="As hint.warmup_epochs: the weight ramps linearly from 0."
    )


class FeatureHint(_Model):
    """Match an intermediate light layer to a booster layer (FitNets; attention transfer)."""

    light: str = Field(description="A light layer (the student side).")
    booster: str = Field(description="A booster layer at the same spatial size (the teacher).")
    weight: float = Field(default=1.0, ge=0.0, description="0 switches the term off.")
    kind: Literal["mse", "attention"] = Field(
        default="mse",
        description="mse: squared error, through a training-only 1x1 conv / linear adapter when "
        "widths differ. attention: attention transfer (Zagoruyko & Komodakis, ICLR 2017) on "
        "feature maps: per-example mean over channels of squared activations, L2-normalised.",
    )
    warmup_epochs: int = Field(
        default=0, ge=0, description="As hint.warmup_epochs: the weight ramps linearly from 0."
    )


class Loss(_Model):
    light: float = Field(default=1.0, ge=0.0, description="Weight of the light net's label loss.")
    booster: float = Field(default=1.0, ge=0.0, description="Weight of the booster's label loss.")
    hint: Hint = Hint()
    kd: KD = KD()
    feature_hints: list[FeatureHint] = Field(
        default_factory=list,
        description="Hints between intermediate layers, named feature_hint_<i> by position.",
    )
    gradient_block: Literal["booster", "shared", "none"] = Field(
        default="booster",
        description="booster: hint/KD/feature hints never update booster-only weights (the "
        "paper). shared: also the light branch reads the shared output detached (EasyRec "
        "style), so only the booster trains the shared layers. none: no stop-gradient "
        "(ablation).",
    )

    @model_validator(mode="after")
    def _light_learns(self) -> Loss:
        # Without one of these the served net never trains (and with all weights 0 the
        # generated compute_loss would have nothing to sum).
        if not (self.light or self.hint.weight or self.kd.weight):
            raise ValueError(
                "the light net would learn nothing: give light, hint.weight or "
                "kd.weight a weight above 0"
            )
        return self


# --- training ------------------------------------------------------------------------------
class Optimizer(_Model):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD only.")
    nesterov: bool = Field(default=False, description="SGD only.")
    weight_decay: float = Field(default=0.0, ge=0.0)
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam/AdamW only.")


class StepSchedule(_Model):
    name: Literal["step"]
    milestones: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    gamma: float = Field(default=0.2, gt=0.0, description="The paper: x0.2 at 60/120/160.")


class CosineSchedule(_Model):
    name: Literal["cosine"]
    min_lr: float = Field(default=0.0, ge=0.0)


class ConstantSchedule(_Model):
    name: Literal["constant"]


Schedule = Annotated[StepSchedule | CosineSchedule | ConstantSchedule, Field(discriminator="name")]


# Validation metrics of the light net, by task; `select.metric` picks one of them.
SELECT_METRICS = {"multiclass": ("accuracy", "error", "ce"), "binary": ("gauc", "auc", "logloss")}


class Select(_Model):
    """Which epoch's weights the run ships: the best on the light net's validation metric."""

    metric: Literal["accuracy", "error", "ce", "gauc", "auc", "logloss"] | None = Field(
        default=None,
        description="Light net's validation metric to select on (error, ce and logloss: lower "
        "is better). Default: the task's headline, accuracy, or for binary GAUC when the data "
        "has groups, else AUC.",
    )
    patience: int | None = Field(
        default=None,
        ge=1,
        description="Stop after this many epochs without improvement; null: train every epoch.",
    )


class Train(_Model):
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=128, ge=1)
    eval_batch_size: int = Field(default=1024, ge=1)
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = ConstantSchedule(name="constant")
    clip_grad_norm: float | None = Field(default=None, gt=0.0)
    seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="Seeds the weights, the batch order and the data split (0 .. 2**63-1).",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: CUDA autocast.")
    select: Select = Select()


# --- data ----------------------------------------------------------------------------------
class DenseColumn(_Model):
    """One numeric column of a dense input, and how its numbers are prepared before the train
    split's standardisation. In the spec either its name alone or this mapping."""

    column: str
    transform: Literal["log1p"] | None = Field(
        default=None,
        description="log1p: sign(x) * log(1 + |x|), for long-tailed amounts that are mostly small "
        "(money, counts): the few huge values no longer squash the rest after standardising.",
    )
    fill: Literal["mean", "median", "zero"] | float | None = Field(
        default=None,
        description="The number a missing value takes: the mean or median of the column's train "
        "values (before the transform), zero, or a number. Unset: a missing value is an error.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if not isinstance(data, dict):
            raise ValueError(
                f"expected a column name or {{column: NAME, transform: log1p, fill: median}}, "
                f"got {data!r}"
            )
        return data

    @field_validator("fill", mode="before")
    @classmethod
    def _fill_rule(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("mean", "median", "zero"):
            raise ValueError(f"fill is mean, median, zero or a number; got {value!r}")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"anyOf": [{"type": "string"}, handler(core_schema)]}


class _Split(_Model):
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)


class DigitsData(_Split):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes). Needs no download."""

    source: Literal["digits"]
    input: str = Field(default="image", description="Spec input fed with the pixels (/16).")


class IdxData(_Model):
    """IDX files (Fashion-MNIST, MNIST): train-images-idx3-ubyte[.gz] and friends."""

    source: Literal["fashion-mnist", "idx"]
    path: str | None = Field(
        default=None,
        description="Directory of IDX files; fashion-mnist defaults to Debian's "
        "/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist).",
    )
    input: str = "image"
    val_size: int = Field(default=5000, ge=1, description="Held out from the train files.")
    limit: int | None = Field(default=None, ge=1, description="Use only the first N train rows.")


class MovielensData(_Model):
    """MovieLens-100k as CTR: label rating >= 4, split by time, GAUC grouped by user."""

    source: Literal["movielens-100k"]
    path: str | None = Field(
        default=None, description="Directory holding ml-100k.inter/.user/.item (RecBole format)."
    )
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    split: Literal["time", "user_time"] = Field(
        default="time",
        description="time: oldest ratings train, newest test (most test users are then new). "
        "user_time: each user's newest ratings go to val/test (every user is seen in train).",
    )


class TabularData(_Split):
    """CSV or Parquet rows; categorical columns get a vocabulary from the train split."""

    source: Literal["csv", "parquet"]
    path: str
    label: str
    group: str | None = Field(default=None, description="Column for GAUC (e.g. user id).")
    categorical: list[str] = Field(
        default_factory=list,
        description="Each column feeds the input of its name: categorical (one value per row) "
        "or categorical_list (a Parquet list column, or text split at list_delimiter).",
    )
    dense: dict[str, list[DenseColumn]] = Field(
        default_factory=dict,
        description="Dense input name -> its numeric columns (standardised), each a column name "
        "or {column: NAME, transform: log1p, fill: median}.",
    )
    split_by: str | None = Field(default=None, description="Sort by this column before splitting.")
    weight: str | None = Field(
        default=None,
        description="Column of per-row sample weights (finite, >= 0): every loss term and every "
        "metric (AUC, GAUC, logloss, accuracy, CE) weighs each row by it.",
    )
    list_delimiter: str = Field(
        default="|",
        min_length=1,
        description="Separator of the values of a categorical_list input held as text "
        "(CSV cells like 'drama|comedy'); surrounding spaces are dropped.",
    )
    stream: bool | None = Field(
        default=None,
        description="Read the train split in record batches (bounded memory) instead of into "
        "memory; unset: streamed when the file is larger than 256 MiB.",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Background processes that read and encode a streamed table's record "
        "batches while the main process trains (each its share of the row groups); 0 reads in "
        "the training process. Only for a streamed table: an in-memory one is encoded once.",
    )

    def dense_columns(self) -> list[str]:
        """Every column that feeds a dense input, in order."""
        return [c.column for columns in self.dense.values() for c in columns]

    @model_validator(mode="after")
    def _stream_without_split_by(self) -> TabularData:
        if self.stream and self.split_by:
            raise PydanticCustomError(
                "stream_split_by",
                "split_by sorts the whole table in memory, which a streamed table never holds; "
                "drop split_by (a seeded random split) or set stream: false",
                {"at": "stream"},
            )
        return self

    @model_validator(mode="after")
    def _workers_read_a_stream(self) -> TabularData:
        """Workers read a streamed table; with `stream: false` or split_by it never is. (With
        stream unset a small file is read into memory, and its workers simply have no use.)"""
        if self.workers and (self.stream is False or self.split_by):
            why = "stream: false" if self.stream is False else "split_by"
            raise PydanticCustomError(
                "workers_need_stream",
                "workers read a streamed table, and {why} keeps this one in memory; "
                "drop workers, or stream the table",
                {"why": why, "at": "workers"},
            )
        return self


class NpzData(_Split):
    """A .npz archive: one array per spec input (by name) plus the label array."""

    source: Literal["npz"]
    path: str
    label: str = "label"
    group: str | None = None
    weight: str | None = Field(
        default=None, description="Array of per-row sample weights (finite, >= 0)."
    )


Data = Annotated[
    DigitsData | IdxData | MovielensData | TabularData | NpzData,
    Field(discriminator="source"),
]


# --- the spec ------------------------------------------------------------------------------
class Spec(_Model):
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
    data: Data | None = None

    @model_validator(mode="before")
    @classmethod
    def _vocab_from_source(cls, data: Any) -> Any:
        """An input with `vocab_from: item` and no size of its own takes item's vocab and
        hash_buckets, so every reader of the spec sees the size of the one id space."""
        inputs = data.get("inputs") if isinstance(data, dict) else None
        if not isinstance(inputs, list):
            return data
        named = {i.get("name"): i for i in inputs if isinstance(i, dict)}
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
