"""The spec's `inputs:`: dense tensors, categorical ids, lists of ids."""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rocketc.compiler.ops import TensorType
from rocketc.compiler.ops.base import IDENT, RESERVED
from rocketc.compiler.spec.base import SpecModel


class _InputBase(SpecModel):
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
