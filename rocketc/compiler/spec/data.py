"""The spec's `data:`: where the rows come from, one model per source."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rocketc.compiler.spec.base import SpecModel


class DenseColumn(SpecModel):
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


class CategoricalColumn(SpecModel):
    """The column feeding a categorical input, and how its values become ids. In the spec either
    the column's name alone or this mapping; it feeds the input of the column's name."""

    column: str
    buckets: int | None = Field(
        default=None,
        ge=2,
        le=4096,
        description="Bucketize a number column: quantile edges fitted on the train split cut it "
        "into at most `buckets` bands of about equal counts, each band an id 1..buckets "
        "(missing: 0); the input is a categorical with vocab: buckets + 1.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if not isinstance(data, dict):
            raise ValueError(
                f"expected a column name or {{column: NAME, buckets: N}}, got {data!r}"
            )
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"anyOf": [{"type": "string"}, handler(core_schema)]}


class _Split(SpecModel):
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)


class DigitsData(_Split):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes). Needs no download."""

    source: Literal["digits"]
    input: str = Field(default="image", description="Spec input fed with the pixels (/16).")


class IdxData(SpecModel):
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


class MovielensData(SpecModel):
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
    history: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Add the list input `history`: the user's last N movies rated 4 or 5 "
        "strictly before the rating's timestamp, newest first (declare it {name: history, "
        "kind: categorical_list, vocab_from: item, max_len: N}).",
    )


class TabularData(_Split):
    """CSV or Parquet rows; categorical columns get a vocabulary from the train split."""

    source: Literal["csv", "parquet"]
    path: str
    label: str
    group: str | None = Field(default=None, description="Column for GAUC (e.g. user id).")
    categorical: list[CategoricalColumn] = Field(
        default_factory=list,
        description="Columns that need saying: each feeds the input of its name, a name or "
        "{column: NAME, buckets: N}. A categorical or categorical_list input not listed reads "
        "the column of its name (a Parquet list column, or text split at list_delimiter).",
    )
    dense: dict[str, list[DenseColumn]] = Field(
        default_factory=dict,
        description="Dense input name -> its numeric columns (standardised), each a column name "
        "or {column: NAME, transform: log1p, fill: median}. A dense input of shape [1] not "
        "listed reads the column of its name.",
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
        """Every column `dense` names, in order (a dense input not listed reads its own)."""
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
