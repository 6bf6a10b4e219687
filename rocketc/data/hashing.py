"""Hashed ids: a category value -> an id in 1..buckets by a stable hash, with no vocabulary pass.

For id spaces too big or too open to enumerate (users, items, devices): `hash_buckets: N` on a
categorical input. The hash is BLAKE2b (8-byte digest) of the value's text, so a value gets the
same id in every process, machine and run (Python's `hash` of a str is salted per process). The
text of a value is the same whether it came from CSV, Parquet or JSON: text as it is, a whole
number without a decimal point (the int 7 and the float 7.0 are both "7"), any other number as
Python's `repr`. Id 0 stays the missing value, as in every categorical input.

Collisions are the price: two values in one bucket share an embedding. `Hashed.fit` counts them
on the train split (distinct values, buckets used, values sharing a bucket, and what a uniform
hash would give by chance), and the run's data description and preprocess.json report them.
A streamed table counts them block by block with `BucketUse`, which keeps nothing per value: past
4,096 distinct values their count is an estimate, marked "values_estimated".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rocketc.data.features import RowProblem, register_feature
from rocketc.data.fields import Field, parse

DIGEST_BYTES = 8


def canonical_text(value: Any) -> str:
    """The text a value is hashed (and, in lists, looked up) as: 7 and 7.0 both give "7"."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def digest_of(text: str) -> int:
    """One value's text as a 64-bit number: its BLAKE2b digest read as a little-endian integer."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST_BYTES).digest()
    return int.from_bytes(digest, "little")


def bucket_of(text: str, buckets: int) -> int:
    """The id of one value's text: 1 + its digest mod buckets."""
    return 1 + digest_of(text) % buckets


def hash_values(values: np.ndarray, buckets: int) -> np.ndarray:
    """Ids in 1..buckets of an array of values (each distinct value is hashed once)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    distinct, inverse = np.unique(values, return_inverse=True)
    ids = np.fromiter(
        (bucket_of(canonical_text(v), buckets) for v in distinct.tolist()),
        dtype=np.int64,
        count=len(distinct),
    )
    return ids[inverse.reshape(-1)]


def collision_stats(distinct_values: int, ids: np.ndarray, buckets: int) -> dict[str, Any]:
    """Bucket use of `distinct_values` values hashed to `ids` (one id per distinct value)."""
    used = int(len(np.unique(ids)))
    # A uniform hash puts n values in N * (1 - (1 - 1/N)^n) buckets on average.
    expected_used = buckets * -np.expm1(distinct_values * np.log1p(-1.0 / buckets))
    return {
        "values": int(distinct_values),
        "buckets": int(buckets),
        "buckets_used": used,
        "colliding_values": int(distinct_values - used),
        "colliding_values_by_chance": round(float(distinct_values - expected_used), 1),
    }


class BucketUse:
    """Bucket use counted block by block (a streamed table's fit) in memory set by the buckets,
    never by the values: one flag per bucket, and the SKETCH smallest distinct digests, which
    count the distinct values exactly up to SKETCH and estimate them beyond (k minimum values:
    (k - 1) / the k-th smallest digest as a fraction of 2**64; standard error ~1/sqrt(k), 1.6%)."""

    SKETCH = 4096

    def __init__(self, buckets: int):
        self.buckets = buckets
        self.used = np.zeros(buckets + 1, dtype=bool)
        self.smallest = np.zeros(0, dtype=np.uint64)

    def add(self, texts) -> None:
        """Fold in values' texts (repeats allowed, within and across calls)."""
        digests = np.fromiter((digest_of(t) for t in texts), dtype=np.uint64)
        self.used[1 + digests % np.uint64(self.buckets)] = True
        self.smallest = np.union1d(self.smallest, digests)[: self.SKETCH]

    def stats(self) -> dict[str, Any]:
        """`collision_stats` of the values seen; "values_estimated" when past the sketch."""
        distinct = len(self.smallest)
        estimated = distinct == self.SKETCH
        if estimated:
            distinct = round((self.SKETCH - 1) / (float(self.smallest[-1]) / 2**64))
        used = np.flatnonzero(self.used)
        stats = collision_stats(max(distinct, len(used)), used, self.buckets)
        return {**stats, "values_estimated": True} if estimated else stats


def describe_stats(input_name: str, stats: dict[str, Any], what: str = "values") -> str:
    """One line for the run's data description."""
    about = "~" if stats.get("values_estimated") else ""
    return (
        f"'{input_name}' hashes {about}{stats['values']:,} train {what} into "
        f"{stats['buckets_used']:,} of {stats['buckets']:,} buckets "
        f"({stats['colliding_values']:,} share a bucket; "
        f"~{stats['colliding_values_by_chance']:,.0f} expected by chance)"
    )


@register_feature
@dataclass
class Hashed:
    """One raw field -> a stable hash of its value -> an id in 1..buckets; missing -> 0."""

    kind: ClassVar[str] = "hashed"
    input: str
    buckets: int  # the spec's hash_buckets; its vocab is buckets + 1
    column: str  # the raw field it reads
    type: str  # the raw field's type: int | number | str
    stats: dict[str, Any] | None = None  # bucket use on the train split (fit)

    def fields(self) -> list[Field]:
        return [Field(self.column, self.type)]

    def values(self, frame: Mapping[str, np.ndarray]):
        """(values, missing mask, wrong-typed rows) of this feature's raw field."""
        parsed = parse(self.fields()[0], frame[self.column])
        missing = parsed.missing.copy()
        if parsed.wrong:
            missing[list(parsed.wrong)] = True  # filler; the row is reported as bad
        return parsed.values, missing, parsed.wrong

    def fit(self, frame: Mapping[str, np.ndarray]) -> Hashed:
        """Nothing to learn; counts how the train split's values fill the buckets."""
        values, missing, _ = self.values(frame)
        distinct = np.unique(values[~missing])
        self.stats = collision_stats(
            len(distinct), hash_values(distinct, self.buckets), self.buckets
        )
        return self

    def encode(self, frame: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[RowProblem]]:
        values, missing, wrong = self.values(frame)
        ids = np.zeros(len(values), dtype=np.int64)
        ids[~missing] = hash_values(values[~missing], self.buckets)
        return ids, [RowProblem(r, self.column, m) for r, m in wrong.items()]

    def summary(self) -> str | None:
        return describe_stats(self.input, self.stats) if self.stats else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": self.input,
            "kind": self.kind,
            "buckets": self.buckets,
            "column": self.column,
            "type": self.type,
            "hash": f"1 + BLAKE2b-{8 * DIGEST_BYTES} of the value's text (little-endian) mod "
            f"{self.buckets}; whole numbers written without a decimal point",
            "missing": "id 0 (null, NaN)",
        }
        if self.stats is not None:
            out["train_split"] = self.stats
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hashed:
        return cls(
            data["input"], data["buckets"], data["column"], data["type"], data.get("train_split")
        )
